"""Tokens shared with Python Keystone (keystone==30.0.0, the PyPI package).

No Python Keystone server runs: the tests import keystone.token.token_formatters,
point keystone.conf.CONF at keystone-rs's own Fernet key repository (same
[identity] default_domain_id and [auth] methods as the server's keystone.conf)
and check both directions:

(a) tokens keystone-rs issues (unscoped, project, domain by UUID, the default
    domain, system, and a rescoped one) decode with TokenFormatter.validate_token
    to the same user, scope, methods, audit ids, issued_at and expires_at as
    keystone-rs's own response says;
(b) tokens Keystone's formatter mints with create_token (for a keystone-rs user,
    project and domains, with various method lists and audit chains) validate in
    keystone-rs (GET /v3/auth/tokens as the admin) with the same user, scope,
    methods, issued_at, expires_at and audit ids; an expired one only with
    ?allow_expired=1.

(c) trust-scoped tokens (payload v3), both ways: keystone-rs's decode in Keystone's
    formatter to the trustee, the trust's project and the trust id; Keystone's
    TrustScopedPayload tokens validate in keystone-rs with the OS-TRUST:trust
    section and, for an impersonating trust, the trustor as the user.

(d) application-credential tokens (payload v9) in both directions: keystone-rs's
    decode with Keystone's formatter to the credential's id, user and project;
    Keystone's validate in keystone-rs with the `application_credential` section.

(e) OAuth1 tokens (payload v7) in both directions: keystone-rs's (from
    keystoneclient's OAuth plugin) decode with Keystone's formatter to the access
    token id, user and project; Keystone's OauthScopedPayload tokens validate in
    keystone-rs with the `OS-OAUTH1` section.

Not covered, because keystone-rs does not implement them: OAuth2 mTLS (v10) and
federated tokens (v4-v6). keystone-rs's payload codec round-trips all versions
byte for byte (tests/golden_vectors.rs), but it issues none of them, and
validating one answers 404 "Could not find token" (docs/compatibility.md), so
there is no behaviour to compare end to end. These are absent here on purpose,
not skipped.
"""

import datetime

import pytest
import requests

from conftest import AUTH_METHODS

PASSWORD = "interop-secret"


@pytest.fixture(scope="session")
def py_keystone_conf():
    """keystone.conf.CONF, configured once per session (options registered)."""
    import keystone.conf

    conf = keystone.conf.CONF
    keystone.conf.configure(conf)
    conf(args=[], project="keystone", default_config_files=[], default_config_dirs=[])
    conf.set_override("default_domain_id", "default", group="identity")
    conf.set_override("methods", AUTH_METHODS.split(","), group="auth")
    return conf


@pytest.fixture
def formatter(py_keystone_conf, keystone):
    """Keystone's TokenFormatter reading keystone-rs's key repository."""
    from keystone.token import token_formatters

    py_keystone_conf.set_override(
        "key_repository", str(keystone.key_repository), group="fernet_tokens"
    )
    yield token_formatters.TokenFormatter()
    py_keystone_conf.clear_override("key_repository", group="fernet_tokens")


class Ids:
    """A user with roles on a project, a UUID domain, the default domain and the system."""

    def __init__(self, ks):
        token = ks.admin_token()
        roles = {r["name"]: r["id"] for r in ks.api("GET", "/roles", token, 200).json()["roles"]}
        self.project_id = ks.api("POST", "/projects", token, 201, json={
            "project": {"name": "interop", "domain_id": "default"}}).json()["project"]["id"]
        self.domain_id = ks.api("POST", "/domains", token, 201, json={
            "domain": {"name": "interop-domain"}}).json()["domain"]["id"]
        self.user_id = ks.api("POST", "/users", token, 201, json={
            "user": {"name": "interop", "domain_id": "default", "password": PASSWORD}
        }).json()["user"]["id"]
        member, reader = roles["member"], roles["reader"]
        for path in (
            f"/projects/{self.project_id}/users/{self.user_id}/roles/{member}",
            f"/domains/{self.domain_id}/users/{self.user_id}/roles/{member}",
            f"/domains/default/users/{self.user_id}/roles/{member}",
            f"/system/users/{self.user_id}/roles/{reader}",
        ):
            ks.api("PUT", path, token, 204)


@pytest.fixture(scope="module")
def ids(keystone):
    return Ids(keystone)


def issue(ks, ids, scope):
    token, body = ks.issue_token(
        "interop", PASSWORD,
        project="interop" if scope == "project" else None,
        domain={"domain": ids.domain_id, "default_domain": "default"}.get(scope),
        system=scope == "system",
    )
    return token, body


def rescoped(ks, ids):
    """Unscoped password token, then the token method to the project."""
    first, _ = issue(ks, ids, "unscoped")
    auth = {
        "identity": {"methods": ["token"], "token": {"id": first}},
        "scope": {"project": {"id": ids.project_id}},
    }
    resp = requests.post(f"{ks.auth_url}/auth/tokens", json={"auth": auth}, timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.headers["X-Subject-Token"], resp.json()["token"]


# --- (a) keystone-rs issues, Python Keystone decodes ---------------------------------------


@pytest.mark.parametrize("scope", ["unscoped", "project", "domain", "default_domain", "system",
                                   "rescoped"])
def test_keystone_rs_tokens_decode_in_python_keystone(keystone, ids, formatter, scope):
    if scope == "rescoped":
        token, body = rescoped(keystone, ids)
    else:
        token, body = issue(keystone, ids, scope)

    (user_id, methods, audit_ids, system, domain_id, project_id, trust_id, federated_groups,
     idp_id, protocol_id, access_token_id, app_cred_id, thumbprint, issued_at,
     expires_at) = formatter.validate_token(token)

    assert user_id == body["user"]["id"] == ids.user_id
    assert sorted(methods) == sorted(body["methods"])
    assert audit_ids == body["audit_ids"]
    assert issued_at == body["issued_at"]
    assert expires_at == body["expires_at"]
    assert system == ("all" if "system" in body else None)
    assert domain_id == body.get("domain", {}).get("id")
    assert project_id == body.get("project", {}).get("id")
    assert (trust_id, federated_groups, idp_id, protocol_id, access_token_id, app_cred_id,
            thumbprint) == (None,) * 7

    expected_scope = {
        "unscoped": (None, None, None),
        "project": (None, None, ids.project_id),
        "rescoped": (None, None, ids.project_id),
        "domain": (None, ids.domain_id, None),
        "default_domain": (None, "default", None),
        "system": ("all", None, None),
    }[scope]
    assert (system, domain_id, project_id) == expected_scope
    if scope == "rescoped":
        assert sorted(methods) == ["password", "token"]
        assert len(audit_ids) == 2
    else:
        assert methods == ["password"]
        assert len(audit_ids) == 1


# --- (b) Python Keystone mints, keystone-rs validates ---------------------------------------


def mint(formatter, ids, scope, methods, expires_in=3600, parent_audit_id=None):
    from keystone.common import utils as ks_utils
    from keystone.token import provider, token_formatters as tf

    expires = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + (
        datetime.timedelta(seconds=expires_in)
    )
    expires_at = ks_utils.isotime(expires, subsecond=True)
    audit_ids = [provider.random_urlsafe_str()]
    if parent_audit_id:
        audit_ids.append(parent_audit_id)
    kwargs, payload = {
        "unscoped": ({}, tf.UnscopedPayload),
        "project": ({"project_id": ids.project_id}, tf.ProjectScopedPayload),
        "domain": ({"domain_id": ids.domain_id}, tf.DomainScopedPayload),
        "default_domain": ({"domain_id": "default"}, tf.DomainScopedPayload),
        "system": ({"system": "all"}, tf.SystemScopedPayload),
    }[scope]
    token = formatter.create_token(ids.user_id, expires_at, audit_ids, payload,
                                   methods=methods, **kwargs)
    return token, expires_at, audit_ids


@pytest.mark.parametrize("scope, methods, chained", [
    ("unscoped", ["password"], False),
    ("project", ["password"], False),
    ("project", ["password", "token"], True),
    ("domain", ["password"], False),
    ("default_domain", ["token", "password"], True),
    ("system", ["external"], False),
])
def test_python_keystone_tokens_validate_in_keystone_rs(keystone, ids, formatter, scope, methods,
                                                        chained):
    parent = "qWPvoiYqR3qM1kV0Hcyt5A" if chained else None
    token, expires_at, audit_ids = mint(formatter, ids, scope, methods, parent_audit_id=parent)
    decoded = formatter.validate_token(token)

    resp = keystone.api("GET", "/auth/tokens", headers={"X-Subject-Token": token})
    assert resp.status_code == 200, resp.text
    assert resp.headers["X-Subject-Token"] == token
    body = resp.json()["token"]

    assert body["user"]["id"] == ids.user_id
    assert body["user"]["name"] == "interop"
    # Same method list in the same (descending bit) order as Keystone decodes it.
    assert body["methods"] == decoded[1]
    assert sorted(body["methods"]) == sorted(methods)
    assert body["audit_ids"] == audit_ids == decoded[2]
    assert body["expires_at"] == expires_at == decoded[14]
    assert body["issued_at"] == decoded[13]
    if scope == "project":
        assert body["project"]["id"] == ids.project_id
        assert "domain" not in body and "system" not in body
        assert "member" in [r["name"] for r in body["roles"]]
    elif scope in ("domain", "default_domain"):
        want = ids.domain_id if scope == "domain" else "default"
        assert body["domain"]["id"] == want
        assert "project" not in body and "system" not in body
    elif scope == "system":
        assert body["system"] == {"all": True}
        assert "reader" in [r["name"] for r in body["roles"]]
    else:
        assert not {"project", "domain", "system", "roles"} & body.keys()


def test_expired_python_keystone_token_needs_allow_expired(keystone, ids, formatter):
    token, expires_at, audit_ids = mint(formatter, ids, "project", ["password"], expires_in=-60)
    resp = keystone.api("GET", "/auth/tokens", headers={"X-Subject-Token": token})
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "Failed to validate token"
    resp = keystone.api("GET", "/auth/tokens?allow_expired=1", headers={"X-Subject-Token": token})
    assert resp.status_code == 200, resp.text
    assert resp.json()["token"]["expires_at"] == expires_at
    assert resp.json()["token"]["audit_ids"] == audit_ids


def test_python_keystone_token_revoked_in_keystone_rs(keystone, ids, formatter):
    token, _, _ = mint(formatter, ids, "project", ["password"])
    keystone.api("DELETE", "/auth/tokens", expect=204, headers={"X-Subject-Token": token})
    resp = keystone.api("GET", "/auth/tokens", headers={"X-Subject-Token": token})
    assert resp.status_code == 404


# --- (c) trust-scoped tokens, both ways -------------------------------------------------------

TRUSTEE_PASSWORD = "interop-trustee-secret"


class TrustIds:
    """A trustee and two trusts from the interop user on its project (member):
    one impersonating, one not."""

    def __init__(self, ks, ids):
        admin = ks.admin_token()
        self.trustee_id = ks.api("POST", "/users", admin, 201, json={
            "user": {"name": "interop-trustee", "domain_id": "default",
                     "password": TRUSTEE_PASSWORD}}).json()["user"]["id"]
        trustor_token, _ = issue(ks, ids, "project")
        self.trusts = {}
        for impersonation in (True, False):
            body = {"trust": {
                "trustor_user_id": ids.user_id, "trustee_user_id": self.trustee_id,
                "project_id": ids.project_id, "impersonation": impersonation,
                "roles": [{"name": "member"}]}}
            self.trusts[impersonation] = ks.api(
                "POST", "/OS-TRUST/trusts", trustor_token, 201, json=body).json()["trust"]["id"]


@pytest.fixture(scope="module")
def trust_ids(keystone, ids):
    return TrustIds(keystone, ids)


@pytest.mark.parametrize("impersonation", [True, False])
def test_keystone_rs_trust_tokens_decode_in_python_keystone(keystone, ids, trust_ids, formatter,
                                                            impersonation):
    trust_id = trust_ids.trusts[impersonation]
    auth = {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": "interop-trustee", "domain": {"id": "default"},
            "password": TRUSTEE_PASSWORD}}},
        "scope": {"OS-TRUST:trust": {"id": trust_id}},
    }
    resp = requests.post(f"{keystone.auth_url}/auth/tokens", json={"auth": auth}, timeout=30)
    assert resp.status_code == 201, resp.text
    token, body = resp.headers["X-Subject-Token"], resp.json()["token"]
    assert body["OS-TRUST:trust"] == {
        "id": trust_id,
        "trustor_user": {"id": ids.user_id},
        "trustee_user": {"id": trust_ids.trustee_id},
        "impersonation": impersonation,
    }
    assert body["user"]["id"] == (ids.user_id if impersonation else trust_ids.trustee_id)

    (user_id, methods, audit_ids, system, domain_id, project_id, trust, federated_groups,
     idp_id, protocol_id, access_token_id, app_cred_id, thumbprint, issued_at,
     expires_at) = formatter.validate_token(token)
    # The payload carries the trustee (who authenticated); Keystone renders the trustor.
    assert user_id == trust_ids.trustee_id
    assert trust == trust_id
    assert project_id == ids.project_id == body["project"]["id"]
    assert methods == ["password"] == body["methods"]
    assert audit_ids == body["audit_ids"]
    assert (issued_at, expires_at) == (body["issued_at"], body["expires_at"])
    assert (system, domain_id, federated_groups, idp_id, protocol_id, access_token_id,
            app_cred_id, thumbprint) == (None,) * 8


@pytest.mark.parametrize("impersonation", [True, False])
def test_python_keystone_trust_tokens_validate_in_keystone_rs(keystone, ids, trust_ids, formatter,
                                                              impersonation):
    from keystone.common import utils as ks_utils
    from keystone.token import provider, token_formatters as tf

    trust_id = trust_ids.trusts[impersonation]
    expires = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + (
        datetime.timedelta(seconds=3600)
    )
    expires_at = ks_utils.isotime(expires, subsecond=True)
    audit_ids = [provider.random_urlsafe_str()]
    token = formatter.create_token(trust_ids.trustee_id, expires_at, audit_ids,
                                   tf.TrustScopedPayload, methods=["password"],
                                   project_id=ids.project_id, trust_id=trust_id)
    resp = keystone.api("GET", "/auth/tokens", headers={"X-Subject-Token": token})
    assert resp.status_code == 200, resp.text
    body = resp.json()["token"]
    assert body["OS-TRUST:trust"]["id"] == trust_id
    assert body["OS-TRUST:trust"]["impersonation"] is impersonation
    assert body["OS-TRUST:trust"]["trustee_user"]["id"] == trust_ids.trustee_id
    assert body["user"]["id"] == (ids.user_id if impersonation else trust_ids.trustee_id)
    assert body["project"]["id"] == ids.project_id
    assert "member" in [r["name"] for r in body["roles"]]
    assert body["expires_at"] == expires_at
    assert body["audit_ids"] == audit_ids

    # A v3 payload naming someone other than the trustee is no token at all.
    forged = formatter.create_token(ids.user_id, expires_at, audit_ids, tf.TrustScopedPayload,
                                    methods=["password"], project_id=ids.project_id,
                                    trust_id=trust_id)
    resp = keystone.api("GET", "/auth/tokens", headers={"X-Subject-Token": forged})
    assert resp.status_code in (403, 404), resp.text
# --- (d) application-credential tokens (payload v9), both directions ------------------------


@pytest.fixture(scope="module")
def app_cred(keystone, ids):
    """An application credential of the interop user on the interop project."""
    token, _ = issue(keystone, ids, "project")
    resp = keystone.api("POST", f"/users/{ids.user_id}/application_credentials", token, 201,
                        json={"application_credential": {"name": "interop-appcred"}})
    return resp.json()["application_credential"]


def test_keystone_rs_application_credential_token_decodes_in_python_keystone(
        keystone, ids, formatter, app_cred):
    auth = {"identity": {"methods": ["application_credential"], "application_credential": {
        "id": app_cred["id"], "secret": app_cred["secret"]}}}
    resp = requests.post(f"{keystone.auth_url}/auth/tokens", json={"auth": auth}, timeout=30)
    assert resp.status_code == 201, resp.text
    token, body = resp.headers["X-Subject-Token"], resp.json()["token"]

    (user_id, methods, audit_ids, system, domain_id, project_id, trust_id, federated_groups,
     idp_id, protocol_id, access_token_id, app_cred_id, thumbprint, issued_at,
     expires_at) = formatter.validate_token(token)

    assert user_id == ids.user_id
    assert methods == ["application_credential"] == body["methods"]
    assert project_id == ids.project_id == body["project"]["id"]
    assert app_cred_id == app_cred["id"] == body["application_credential"]["id"]
    assert (system, domain_id, trust_id, federated_groups, idp_id, protocol_id,
            access_token_id, thumbprint) == (None,) * 8
    assert audit_ids == body["audit_ids"]
    assert issued_at == body["issued_at"]
    assert expires_at == body["expires_at"]


def test_python_keystone_application_credential_token_validates_in_keystone_rs(
        keystone, ids, formatter, app_cred):
    from keystone.common import utils as ks_utils
    from keystone.token import provider, token_formatters as tf

    expires = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + (
        datetime.timedelta(seconds=3600)
    )
    expires_at = ks_utils.isotime(expires.replace(microsecond=0), subsecond=True)
    audit_ids = [provider.random_urlsafe_str()]
    token = formatter.create_token(ids.user_id, expires_at, audit_ids,
                                   tf.ApplicationCredentialScopedPayload,
                                   methods=["application_credential"],
                                   project_id=ids.project_id, app_cred_id=app_cred["id"])
    assert formatter.validate_token(token)[11] == app_cred["id"]

    resp = keystone.api("GET", "/auth/tokens", headers={"X-Subject-Token": token})
    assert resp.status_code == 200, resp.text
    body = resp.json()["token"]
    assert body["user"]["id"] == ids.user_id
    assert body["methods"] == ["application_credential"]
    assert body["project"]["id"] == ids.project_id
    assert body["expires_at"] == expires_at
    assert body["audit_ids"] == audit_ids
    assert body["application_credential"] == {
        "id": app_cred["id"], "name": "interop-appcred", "restricted": True}
    assert "member" in [r["name"] for r in body["roles"]]

    # A v9 token naming a credential that does not exist is no token.
    token = formatter.create_token(ids.user_id, expires_at, audit_ids,
                                   tf.ApplicationCredentialScopedPayload,
                                   methods=["application_credential"],
                                   project_id=ids.project_id, app_cred_id="0" * 32)
    resp = keystone.api("GET", "/auth/tokens", headers={"X-Subject-Token": token})
    assert resp.status_code == 404


# --- (e) OAuth1 tokens (payload v7), both directions -------------------------------------


@pytest.fixture(scope="module")
def oauth_access(keystone):
    """An access token of the admin on the admin project, with the `admin` role, made
    through python-keystoneclient's v3.contrib.oauth1."""
    from keystoneclient.v3 import client as ks_client

    ksc = ks_client.Client(session=keystone.admin_session(), interface="public")
    consumer = ksc.oauth1.consumers.create(description="interop")
    project_id = keystone.admin_project_id()
    request = ksc.oauth1.request_tokens.create(consumer.id, consumer.secret, project_id)
    admin_role = [r for r in ksc.roles.list() if r.name == "admin"][0]
    verifier = ksc.oauth1.request_tokens.authorize(request.key, [admin_role.id])
    access = ksc.oauth1.access_tokens.create(consumer.id, consumer.secret, request.key,
                                             request.secret, verifier.oauth_verifier)
    return consumer, access, project_id


def test_keystone_rs_oauth1_token_decodes_in_python_keystone(keystone, formatter, oauth_access):
    from keystoneauth1 import session
    from keystoneclient.v3.contrib.oauth1 import auth as oauth_auth

    consumer, access, project_id = oauth_access
    plugin = oauth_auth.OAuth(auth_url=keystone.auth_url, consumer_key=consumer.id,
                              consumer_secret=consumer.secret, access_key=access.key,
                              access_secret=access.secret)
    info = plugin.get_access(session.Session(auth=plugin))
    token, body = info.auth_token, dict(info)

    (user_id, methods, audit_ids, system, domain_id, token_project_id, trust_id,
     federated_groups, idp_id, protocol_id, access_token_id, app_cred_id, thumbprint,
     issued_at, expires_at) = formatter.validate_token(token)

    assert user_id == keystone.admin_user_id() == body["user"]["id"]
    assert methods == ["oauth1"] == body["methods"]
    assert token_project_id == project_id == body["project"]["id"]
    assert access_token_id == access.key == body["OS-OAUTH1"]["access_token_id"]
    assert (system, domain_id, trust_id, federated_groups, idp_id, protocol_id, app_cred_id,
            thumbprint) == (None,) * 8
    assert audit_ids == body["audit_ids"]
    assert issued_at == body["issued_at"]
    assert expires_at == body["expires_at"]


def test_python_keystone_oauth1_token_validates_in_keystone_rs(keystone, formatter,
                                                              oauth_access):
    from keystone.common import utils as ks_utils
    from keystone.token import provider, token_formatters as tf

    consumer, access, project_id = oauth_access
    expires = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None) + (
        datetime.timedelta(seconds=3600)
    )
    expires_at = ks_utils.isotime(expires.replace(microsecond=0), subsecond=True)
    audit_ids = [provider.random_urlsafe_str()]
    user_id = keystone.admin_user_id()
    token = formatter.create_token(user_id, expires_at, audit_ids, tf.OauthScopedPayload,
                                   methods=["oauth1"], project_id=project_id,
                                   access_token_id=access.key)
    assert formatter.validate_token(token)[10] == access.key

    resp = keystone.api("GET", "/auth/tokens", headers={"X-Subject-Token": token})
    assert resp.status_code == 200, resp.text
    body = resp.json()["token"]
    assert body["user"]["id"] == user_id
    assert body["methods"] == ["oauth1"]
    assert body["project"]["id"] == project_id
    assert body["expires_at"] == expires_at
    assert body["audit_ids"] == audit_ids
    assert body["OS-OAUTH1"] == {"access_token_id": access.key, "consumer_id": consumer.id}
    assert "admin" in [r["name"] for r in body["roles"]]

    # A v7 token naming an access token that does not exist is no token.
    token = formatter.create_token(user_id, expires_at, audit_ids, tf.OauthScopedPayload,
                                   methods=["oauth1"], project_id=project_id,
                                   access_token_id="0" * 32)
    resp = keystone.api("GET", "/auth/tokens", headers={"X-Subject-Token": token})
    assert resp.status_code == 404

