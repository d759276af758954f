"""The common OpenStack clients against keystone-rs: keystoneauth1 (password and
token auth, discovery, endpoint lookup), openstacksdk (openstack.connect and the
identity proxy) and python-openstackclient (`openstack token issue/revoke`, run
as a subprocess the way an operator runs it)."""

import json
import subprocess
import uuid
import openstack
import pytest
from keystoneauth1 import discover, exceptions, identity, session
from keystoneauth1.identity import v3

from conftest import ADMIN_PASSWORD, OPENSTACK, osc_env


# --- keystoneauth1 ------------------------------------------------------------------


def test_generic_password_plugin_discovers_v3_from_the_root_url(keystone):
    # identity.Password (not v3.Password) discovers the version from the bare URL.
    auth = identity.Password(
        auth_url=keystone.base_url,
        username="admin",
        password=ADMIN_PASSWORD,
        user_domain_id="default",
        project_name="admin",
        project_domain_id="default",
    )
    sess = session.Session(auth=auth)
    access = auth.get_access(sess)
    assert access.version == "v3"
    assert access.project_name == "admin"
    assert access.user_id == sess.get_user_id()
    assert access.project_id == sess.get_project_id()
    assert "admin" in access.role_names
    assert access.service_catalog.url_for(service_type="identity", interface="public") == (
        keystone.public_url
    )


def test_generic_token_plugin_scopes_an_unscoped_token(keystone):
    unscoped = v3.Password(auth_url=keystone.auth_url, username="admin",
                           password=ADMIN_PASSWORD, user_domain_id="default")
    first = unscoped.get_access(session.Session(auth=unscoped))
    assert first.project_id is None and first.domain_id is None
    auth = identity.Token(
        auth_url=keystone.base_url,
        token=first.auth_token,
        project_name="admin",
        project_domain_id="default",
    )
    sess = session.Session(auth=auth)
    access = auth.get_access(sess)
    assert access.project_name == "admin"
    assert access.user_id == first.user_id
    assert access.expires == first.expires
    assert access.audit_chain_id == first.audit_id
    # The scoped token works for an authenticated call.
    resp = sess.get("/auth/projects",
                    endpoint_filter={"service_type": "identity", "interface": "public"})
    assert "admin" in [p["name"] for p in resp.json()["projects"]]


def test_discovery_and_get_endpoint(keystone, admin_session):
    assert admin_session.get_endpoint(service_type="identity", interface="public") == (
        keystone.public_url
    )
    assert admin_session.get_endpoint(service_type="identity", interface="admin",
                                      region_name="RegionOne") == keystone.public_url
    with pytest.raises(exceptions.EndpointNotFound):
        admin_session.get_endpoint(service_type="identity", interface="public",
                                   region_name="NoSuchRegion")
    # Versioned endpoint lookup goes through discovery.
    assert admin_session.get_endpoint(service_type="identity", interface="public",
                                      min_version="3.0", max_version="3.latest") == (
        keystone.public_url
    )
    data = admin_session.get_endpoint_data(service_type="identity", interface="public")
    assert data.api_version == (3, 14)
    assert admin_session.get_api_major_version(service_type="identity") == (3, 0)
    versions = discover.get_version_data(session.Session(), keystone.base_url)
    assert [v["id"] for v in versions] == ["v3.14"]
    assert versions[0]["status"] == "stable"


def test_password_auth_with_a_wrong_user_is_unauthorized(keystone):
    auth = v3.Password(auth_url=keystone.auth_url, username="nobody-" + uuid.uuid4().hex,
                       password="x", user_domain_id="default")
    with pytest.raises(exceptions.Unauthorized):
        session.Session(auth=auth).get_token()


# --- openstacksdk ---------------------------------------------------------------------


@pytest.fixture
def conn(keystone):
    c = openstack.connect(
        auth_url=keystone.auth_url,
        project_name="admin",
        username="admin",
        password=ADMIN_PASSWORD,
        user_domain_id="default",
        project_domain_id="default",
        region_name="RegionOne",
        identity_api_version="3",
        load_yaml_config=False,
        load_envvars=False,
    )
    yield c
    c.close()


def test_openstacksdk_lists_and_creates(conn):
    assert "admin" in [p.name for p in conn.identity.projects()]
    assert "admin" in [u.name for u in conn.identity.users()]

    name = "sdk-" + uuid.uuid4().hex[:8]
    project = conn.identity.create_project(name=name, domain_id="default",
                                           description="made by openstacksdk")
    assert project.id and project.name == name and project.is_enabled
    user = conn.identity.create_user(name=name, password="sdk-secret", domain_id="default",
                                     default_project_id=project.id, email="sdk@example.org")
    assert user.id and user.name == name and user.default_project_id == project.id

    assert name in [p.name for p in conn.identity.projects()]
    assert user.id in [u.id for u in conn.identity.users(domain_id="default")]
    assert conn.identity.get_project(project.id).description == "made by openstacksdk"
    assert conn.identity.find_user(name).id == user.id
    # The cloud layer on top of the proxy.
    assert conn.get_project(name).id == project.id

    conn.identity.delete_user(user)
    conn.identity.delete_project(project)
    assert conn.identity.find_project(name) is None


# --- python-openstackclient --------------------------------------------------------------


def test_openstack_token_issue_and_revoke(keystone):
    # The auth options on the command line this time, only the password in the env.
    issued = subprocess.run(
        [OPENSTACK, "--os-auth-url", keystone.auth_url, "--os-identity-api-version", "3",
         "--os-username", "admin", "--os-user-domain-id", "default",
         "--os-project-name", "admin", "--os-project-domain-id", "default",
         "token", "issue", "-f", "json"],
        env={**osc_env(), "OS_PASSWORD": ADMIN_PASSWORD},
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
    )
    assert issued.returncode == 0, issued.stderr
    token = json.loads(issued.stdout)
    assert token["id"].startswith("gAAAAA")
    assert token["project_id"] == keystone.admin_project_id()
    assert token["user_id"] == keystone.admin_user_id()
    assert token["expires"]

    # keystone-rs accepts it...
    resp = keystone.api("GET", "/auth/tokens", headers={"X-Subject-Token": token["id"]})
    assert resp.status_code == 200, resp.text
    assert resp.json()["token"]["user"]["id"] == token["user_id"]

    # ...until `openstack token revoke`, as the admin, configured by OS_* variables.
    env = {
        **osc_env(),
        "OS_AUTH_URL": keystone.auth_url,
        "OS_IDENTITY_API_VERSION": "3",
        "OS_USERNAME": "admin",
        "OS_PASSWORD": ADMIN_PASSWORD,
        "OS_USER_DOMAIN_ID": "default",
        "OS_PROJECT_NAME": "admin",
        "OS_PROJECT_DOMAIN_ID": "default",
        "OS_INTERFACE": "public",
    }
    revoked = subprocess.run([OPENSTACK, "token", "revoke", token["id"]], env=env,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True,
                             timeout=120)
    assert revoked.returncode == 0, revoked.stderr
    assert revoked.stdout == ""
    resp = keystone.api("GET", "/auth/tokens", headers={"X-Subject-Token": token["id"]})
    assert resp.status_code == 404
    assert resp.json()["error"]["message"] == "Failed to validate token"
