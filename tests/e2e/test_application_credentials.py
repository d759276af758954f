"""Application credentials with the real clients: keystoneauth1's
v3.ApplicationCredential (by id, and by name with the user), openstacksdk's
`v3applicationcredential` auth type, the `openstack application credential`
CLI, and keystonemiddleware's auth_token enforcing a credential's access rules in
front of a small WSGI "compute" service."""

import uuid

import openstack
import pytest
import requests
from keystoneauth1 import session
from keystoneauth1.identity import v3

from conftest import ADMIN_PASSWORD, osc, serve_behind_auth_token

PASSWORD = "appcred-user-secret"


class Owner:
    """A user with `member` on a fresh project, and a password token there."""

    def __init__(self, ks):
        admin = ks.admin_token()
        suffix = uuid.uuid4().hex[:8]
        self.name = f"appcred-{suffix}"
        self.project = f"appcred-proj-{suffix}"
        roles = {r["name"]: r["id"] for r in ks.api("GET", "/roles", admin, 200).json()["roles"]}
        self.project_id = ks.api("POST", "/projects", admin, 201, json={
            "project": {"name": self.project, "domain_id": "default"}}).json()["project"]["id"]
        self.user_id = ks.api("POST", "/users", admin, 201, json={
            "user": {"name": self.name, "domain_id": "default", "password": PASSWORD}
        }).json()["user"]["id"]
        ks.api("PUT", f"/projects/{self.project_id}/users/{self.user_id}/roles/{roles['member']}",
               admin, 204)
        self.token, _ = ks.issue_token(self.name, PASSWORD, project=self.project)

    def create(self, ks, name, **extra):
        body = {"application_credential": {"name": name, **extra}}
        resp = ks.api("POST", f"/users/{self.user_id}/application_credentials", self.token, 201,
                      json=body)
        return resp.json()["application_credential"]


@pytest.fixture
def owner(keystone):
    return Owner(keystone)


def test_keystoneauth_by_id_and_by_name(keystone, owner):
    cred = owner.create(keystone, "ksa")
    by_id = v3.ApplicationCredential(
        auth_url=keystone.auth_url,
        application_credential_id=cred["id"],
        application_credential_secret=cred["secret"],
    )
    sess = session.Session(auth=by_id)
    access = by_id.get_access(sess)
    assert access.project_id == owner.project_id
    assert access.user_id == owner.user_id
    assert access._data["token"]["methods"] == ["application_credential"]
    # The token lists the owner's credentials (an identity call through the catalog).
    resp = sess.get(f"/users/{owner.user_id}/application_credentials",
                    endpoint_filter={"service_type": "identity", "interface": "public"})
    assert resp.status_code == 200
    assert cred["id"] in [c["id"] for c in resp.json()["application_credentials"]]
    # By name, with the user by id and by name + domain.
    for kwargs in ({"user_id": owner.user_id},
                   {"username": owner.name, "user_domain_id": "default"}):
        auth = v3.ApplicationCredential(
            auth_url=keystone.auth_url,
            application_credential_name="ksa",
            application_credential_secret=cred["secret"],
            **kwargs,
        )
        assert auth.get_access(session.Session(auth=auth)).project_id == owner.project_id
    # A wrong secret is a 401.
    bad = v3.ApplicationCredential(auth_url=keystone.auth_url,
                                   application_credential_id=cred["id"],
                                   application_credential_secret="wrong")
    from keystoneauth1 import exceptions
    with pytest.raises(exceptions.Unauthorized):
        bad.get_access(session.Session(auth=bad))


def test_openstacksdk_v3applicationcredential(keystone, owner):
    cred = owner.create(keystone, "sdk")
    conn = openstack.connect(
        auth_type="v3applicationcredential",
        auth={
            "auth_url": keystone.auth_url,
            "application_credential_id": cred["id"],
            "application_credential_secret": cred["secret"],
        },
        identity_interface="public",
    )
    try:
        listed = list(conn.identity.application_credentials(user=owner.user_id))
        assert cred["id"] in [c.id for c in listed]
        assert conn.current_project_id == owner.project_id
    finally:
        conn.close()


def test_openstack_cli_create_list_show_delete(keystone, owner):
    auth = {"username": owner.name, "password": PASSWORD, "project": owner.project}
    created = osc(keystone, "application", "credential", "create", "cli-cred",
                  "--description", "from the CLI", "-f", "json", **auth)
    assert created["Name"] == "cli-cred"
    assert created["Secret"]
    assert created["Project ID"] == owner.project_id
    assert created["Description"] == "from the CLI"
    listed = osc(keystone, "application", "credential", "list", "-f", "json", **auth)
    assert created["ID"] in [c["ID"] for c in listed]
    shown = osc(keystone, "application", "credential", "show", "cli-cred", "-f", "json", **auth)
    assert shown["ID"] == created["ID"]
    assert "Secret" not in shown
    # The secret works.
    login = v3.ApplicationCredential(auth_url=keystone.auth_url,
                                     application_credential_id=created["ID"],
                                     application_credential_secret=created["Secret"])
    assert login.get_access(session.Session(auth=login)).project_id == owner.project_id
    osc(keystone, "application", "credential", "delete", "cli-cred", **auth)
    listed = osc(keystone, "application", "credential", "list", "-f", "json", **auth)
    assert created["ID"] not in [c["ID"] for c in listed]


# --- keystonemiddleware enforcing access rules ------------------------------------------


def compute_app(environ, start_response):
    body = b'{"ok": true}'
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


@pytest.fixture
def compute(keystone):
    """A 'compute' service in the catalog, behind auth_token with service_type compute."""
    admin = keystone.admin_token()
    service = keystone.api("POST", "/services", admin, 201, json={
        "service": {"type": "compute", "name": f"nova-{uuid.uuid4().hex[:6]}"}}).json()["service"]
    conf = {
        "www_authenticate_uri": keystone.auth_url,
        "auth_url": keystone.auth_url,
        "auth_type": "password",
        "username": "admin",
        "password": ADMIN_PASSWORD,
        "user_domain_id": "default",
        "project_name": "admin",
        "project_domain_id": "default",
        "interface": "public",
        "service_type": "compute",
        "delay_auth_decision": "false",
        "token_cache_time": "-1",
    }
    server = serve_behind_auth_token(compute_app, conf, "compute-e2e")
    url = f"http://127.0.0.1:{server.server_port}"
    keystone.api("POST", "/endpoints", admin, 201, json={"endpoint": {
        "service_id": service["id"], "interface": "public", "url": url + "/v2.1"}})
    yield url
    server.shutdown()
    server.server_close()
    keystone.api("DELETE", f"/services/{service['id']}", admin)


def test_keystonemiddleware_enforces_access_rules(keystone, owner, compute):
    rules = [{"service": "compute", "method": "GET", "path": "/v2.1/servers/*/ips"}]
    cred = owner.create(keystone, "restricted", access_rules=rules)
    auth = v3.ApplicationCredential(auth_url=keystone.auth_url,
                                    application_credential_id=cred["id"],
                                    application_credential_secret=cred["secret"])
    token = auth.get_access(session.Session(auth=auth)).auth_token
    headers = {"X-Auth-Token": token}
    ok = requests.get(f"{compute}/v2.1/servers/abc/ips", headers=headers, timeout=30)
    assert ok.status_code == 200, ok.text
    for method, path in (("GET", "/v2.1/servers"), ("POST", "/v2.1/servers/abc/ips"),
                         ("GET", "/v2.1/servers/abc/ips/extra")):
        denied = requests.request(method, compute + path, headers=headers, timeout=30)
        assert denied.status_code == 401, (method, path, denied.text)
    # Without a rule list, the same user's credential passes everywhere.
    free = owner.create(keystone, "free")
    auth = v3.ApplicationCredential(auth_url=keystone.auth_url,
                                    application_credential_id=free["id"],
                                    application_credential_secret=free["secret"])
    token = auth.get_access(session.Session(auth=auth)).auth_token
    resp = requests.get(f"{compute}/v2.1/servers", headers={"X-Auth-Token": token}, timeout=30)
    assert resp.status_code == 200, resp.text
    # A client that does not announce access-rule support cannot validate the
    # restricted token (Keystone's 404).
    resp = keystone.api("GET", "/auth/tokens", headers={"X-Subject-Token": headers["X-Auth-Token"]})
    assert resp.status_code == 404
    resp = keystone.api("GET", "/auth/tokens", headers={
        "X-Subject-Token": headers["X-Auth-Token"], "OpenStack-Identity-Access-Rules": "1"})
    assert resp.status_code == 200
    assert resp.json()["token"]["application_credential"]["access_rules"][0]["path"] == (
        "/v2.1/servers/*/ips")
