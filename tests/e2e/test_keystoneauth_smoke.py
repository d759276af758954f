"""keystoneauth1, the client library every OpenStack service and CLI uses,
against the real keystone-rs binary.

The server fixtures live in conftest.py.
"""

import pytest
from keystoneauth1 import discover, exceptions, session
from keystoneauth1.identity import v3

from conftest import ADMIN_PASSWORD


def password(ks, project=True, pw=ADMIN_PASSWORD):
    scope = {"project_name": "admin", "project_domain_id": "default"} if project else {}
    return v3.Password(
        auth_url=ks.auth_url,
        username="admin",
        password=pw,
        user_domain_id="default",
        **scope,
    )


def test_password_auth_gets_a_project_token(keystone, admin_session):
    token = admin_session.get_token()
    assert token.startswith("gAAAAA")
    access = admin_session.auth.get_access(admin_session)
    assert access.project_name == "admin"
    assert access.project_domain_id == "default"
    assert access.username == "admin"
    assert "admin" in access.role_names
    assert access.expires > access.issued


def test_public_identity_endpoint_comes_from_the_catalog(keystone, admin_session):
    url = admin_session.get_endpoint(service_type="identity", interface="public")
    assert url == keystone.public_url
    assert admin_session.get_endpoint(
        service_type="identity", interface="internal", region_name="RegionOne"
    ) == keystone.public_url


def test_discovery_finds_v3(keystone):
    disc = discover.Discover(session.Session(), keystone.base_url)
    versions = {tuple(v["version"]): v for v in disc.version_data()}
    assert (3, 14) in versions, versions
    assert versions[(3, 14)]["url"].rstrip("/") == keystone.auth_url
    assert disc.url_for((3, 0)).rstrip("/") == keystone.auth_url
    assert disc.url_for((2, 0)) is None


def test_validate_through_the_catalog_endpoint(keystone, admin_session):
    subject = session.Session(auth=password(keystone, project=False))
    subject_token = subject.get_token()
    subject_access = subject.auth.get_access(subject)
    # The catalog's identity URL is .../v3, so the path is relative to it.
    resp = admin_session.get(
        "/auth/tokens",
        headers={"X-Subject-Token": subject_token},
        endpoint_filter={"service_type": "identity", "interface": "public"},
    )
    assert resp.status_code == 200
    assert resp.url == f"{keystone.public_url}/auth/tokens"
    assert resp.headers["X-Subject-Token"] == subject_token
    body = resp.json()["token"]
    assert body["audit_ids"] == [subject_access.audit_id]
    assert body["user"]["name"] == "admin"
    assert "project" not in body

    # A token that does not decrypt: keystoneauth raises NotFound for the 404.
    with pytest.raises(exceptions.NotFound):
        admin_session.get(
            "/auth/tokens",
            headers={"X-Subject-Token": subject_token[:-4] + "AAAA"},
            endpoint_filter={"service_type": "identity", "interface": "public"},
        )


def test_token_plugin_rescopes_to_the_project(keystone):
    unscoped = session.Session(auth=password(keystone, project=False))
    first = unscoped.auth.get_access(unscoped)
    assert first.project_id is None
    rescope = v3.Token(
        auth_url=keystone.auth_url,
        token=first.auth_token,
        project_name="admin",
        project_domain_id="default",
    )
    scoped = session.Session(auth=rescope)
    access = rescope.get_access(scoped)
    assert access.auth_token != first.auth_token
    assert access.project_name == "admin"
    assert "admin" in access.role_names
    assert set(access._data["token"]["methods"]) == {"password", "token"}
    # A rescoped token keeps the original audit id as its chain id.
    assert access.audit_chain_id == first.audit_id
    assert access.audit_id != first.audit_id


def test_wrong_password_is_unauthorized(keystone):
    sess = session.Session(auth=password(keystone, pw="not-the-password"))
    with pytest.raises(exceptions.Unauthorized) as err:
        sess.get_token()
    assert err.value.http_status == 401
