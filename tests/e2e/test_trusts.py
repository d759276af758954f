"""OS-TRUST with real clients: the Heat flow and the `openstack trust` commands.

Heat (and Magnum, Aodh) keep a trust instead of the user's password or token: the
user's request creates a trust to Heat's service user with impersonation, and later,
long after the user's own token is gone, Heat authenticates as itself with
keystoneauth1 `v3.Password(..., trust_id=...)` and acts as the user. Here:

- a service user `heat` (role `service` on project `service`) and a user `alice`
  (member of `alice-project`);
- alice creates the trust (impersonation, role member) with her own token, which is
  then revoked;
- Heat's trust-scoped token is accepted by keystonemiddleware's auth_token in front
  of a small WSGI app as alice, on alice's project, with the delegated roles; after
  the trust is deleted the same kind of request is refused (401).
- the `openstack trust create/list/show/delete` commands of python-openstackclient.
"""

import json
import uuid

import pytest
import requests
from keystoneauth1 import exceptions as ks_exc
from keystoneauth1 import session
from keystoneauth1.identity import v3

from conftest import osc_run, serve_behind_auth_token

PASSWORDS = {"heat": "heat-secret", "alice": "alice-secret", "watcher": "watcher-secret"}


def echo_app(environ, start_response):
    seen = {
        name: environ.get("HTTP_" + name.upper().replace("-", "_"))
        for name in ("X-Identity-Status", "X-User-Id", "X-User-Name", "X-Project-Id", "X-Roles")
    }
    body = json.dumps(seen).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]


class Service:
    """An OpenStack API behind keystonemiddleware, validating as the `watcher` user."""

    def __init__(self, keystone, username):
        conf = {
            "www_authenticate_uri": keystone.auth_url,
            "auth_url": keystone.auth_url,
            "auth_type": "password",
            "username": username,
            "password": PASSWORDS["watcher"],
            "user_domain_id": "default",
            "project_name": "service",
            "project_domain_id": "default",
            "interface": "public",
            "include_service_catalog": "false",
            "delay_auth_decision": "false",
            "token_cache_time": "-1",
        }
        self.server = serve_behind_auth_token(echo_app, conf, "heat-e2e")
        self.url = f"http://127.0.0.1:{self.server.server_port}/v1/stacks"

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Cloud:
    def __init__(self, ks):
        self.ks = ks
        token = ks.admin_token()
        self.suffix = uuid.uuid4().hex[:8]
        roles = {r["name"]: r["id"] for r in ks.api("GET", "/roles", token, 200).json()["roles"]}
        if "service" not in roles:
            roles["service"] = ks.api("POST", "/roles", token, 201, json={
                "role": {"name": "service"}}).json()["role"]["id"]
        projects = ks.api("GET", "/projects?name=service", token, 200).json()["projects"]
        if projects:
            self.service_project = projects[0]["id"]
        else:
            self.service_project = ks.api("POST", "/projects", token, 201, json={
                "project": {"name": "service", "domain_id": "default"}}).json()["project"]["id"]
        self.project_name = f"alice-project-{self.suffix}"
        self.project_id = ks.api("POST", "/projects", token, 201, json={
            "project": {"name": self.project_name, "domain_id": "default"}}).json()["project"]["id"]
        self.users = {}
        for who in ("heat", "alice", "watcher"):
            name = f"{who}-{self.suffix}"
            uid = ks.api("POST", "/users", token, 201, json={
                "user": {"name": name, "domain_id": "default", "password": PASSWORDS[who]}
            }).json()["user"]["id"]
            self.users[who] = (name, uid)
        for who, role in (("heat", "service"), ("watcher", "service"), ("watcher", "admin")):
            ks.api("PUT", f"/projects/{self.service_project}/users/{self.users[who][1]}"
                          f"/roles/{roles[role]}", token, 204)
        ks.api("PUT", f"/projects/{self.project_id}/users/{self.users['alice'][1]}"
                      f"/roles/{roles['member']}", token, 204)

    def name(self, who):
        return self.users[who][0]

    def uid(self, who):
        return self.users[who][1]

    def password(self, who, **scope):
        return v3.Password(auth_url=self.ks.auth_url, username=self.name(who),
                           password=PASSWORDS[who], user_domain_id="default", **scope)


@pytest.fixture
def cloud(keystone):
    return Cloud(keystone)


@pytest.fixture
def service(keystone, cloud):
    svc = Service(keystone, cloud.name("watcher"))
    yield svc
    svc.stop()


def test_heat_acts_as_the_user_through_a_trust(keystone, cloud, service):
    # The user's request: her own project-scoped token creates the trust.
    alice_auth = cloud.password("alice", project_id=cloud.project_id)
    alice = session.Session(auth=alice_auth)
    alice_token = alice.get_token()
    resp = alice.post(f"{keystone.auth_url}/OS-TRUST/trusts", json={"trust": {
        "trustor_user_id": cloud.uid("alice"),
        "trustee_user_id": cloud.uid("heat"),
        "project_id": cloud.project_id,
        "impersonation": True,
        "roles": [{"name": "member"}],
    }}, raise_exc=False)
    assert resp.status_code == 201, resp.text
    trust_id = resp.json()["trust"]["id"]

    # Her token is gone (the request finished long ago).
    keystone.api("DELETE", "/auth/tokens", expect=204, headers={"X-Subject-Token": alice_token})
    assert keystone.api("GET", "/auth/tokens",
                        headers={"X-Subject-Token": alice_token}).status_code == 404

    # Heat, as itself, with the trust: keystoneauth1's trust scope.
    heat_auth = cloud.password("heat", trust_id=trust_id)
    heat = session.Session(auth=heat_auth)
    access = heat_auth.get_access(heat)
    assert access.trust_scoped
    assert access.trust_id == trust_id
    assert access.user_id == cloud.uid("alice"), "impersonation: the trustor"
    assert access.project_id == cloud.project_id
    assert access.trustor_user_id == cloud.uid("alice")
    assert access.trustee_user_id == cloud.uid("heat")
    assert "member" in access.role_names

    # A service behind keystonemiddleware sees alice.
    resp = heat.get(service.url, raise_exc=False)
    assert resp.status_code == 200, resp.text
    seen = resp.json()
    assert seen["X-Identity-Status"] == "Confirmed"
    assert seen["X-User-Id"] == cloud.uid("alice")
    assert seen["X-Project-Id"] == cloud.project_id
    assert "member" in seen["X-Roles"].split(",")

    # A trust token cannot be turned into another token.
    resp = requests.post(f"{keystone.auth_url}/auth/tokens", timeout=30, json={"auth": {
        "identity": {"methods": ["token"], "token": {"id": heat.get_token()}},
        "scope": {"project": {"id": cloud.project_id}}}})
    assert resp.status_code == 403, resp.text

    # The trust is deleted: Heat's token and any new one are refused.
    alice2 = session.Session(auth=cloud.password("alice", project_id=cloud.project_id))
    resp = alice2.delete(f"{keystone.auth_url}/OS-TRUST/trusts/{trust_id}", raise_exc=False)
    assert resp.status_code == 204, resp.text
    resp = requests.get(service.url, headers={"X-Auth-Token": heat.get_token()}, timeout=30)
    assert resp.status_code == 401
    with pytest.raises(ks_exc.Unauthorized):
        cloud.password("heat", trust_id=trust_id).get_access(session.Session())


def test_openstack_trust_commands(keystone, cloud):
    alice = dict(username=cloud.name("alice"), password=PASSWORDS["alice"],
                 project=cloud.project_name)
    # A user may not list users, projects or roles: ids, as an operator's runbook has them.
    member = [r["id"] for r in keystone.api("GET", "/roles?name=member", expect=200).json()["roles"]]
    created = osc_run(keystone, "trust", "create", "--project", cloud.project_id,
                      "--role", member[0], "--impersonate", "-f", "json",
                      cloud.uid("alice"), cloud.uid("heat"), **alice)
    assert created.returncode == 0, created.stderr
    trust = json.loads(created.stdout)
    assert trust["trustor_user_id"] == cloud.uid("alice")
    assert trust["trustee_user_id"] == cloud.uid("heat")
    assert trust["project_id"] == cloud.project_id
    assert trust["is_impersonation"] is True

    listed = osc_run(keystone, "trust", "list", "-f", "json")
    assert listed.returncode == 0, listed.stderr
    assert trust["id"] in [t["ID"] for t in json.loads(listed.stdout)]

    shown = osc_run(keystone, "trust", "show", trust["id"], "-f", "json", **alice)
    assert shown.returncode == 0, shown.stderr
    shown = json.loads(shown.stdout)
    assert shown["id"] == trust["id"]
    assert "member" in json.dumps(shown["roles"])

    deleted = osc_run(keystone, "trust", "delete", trust["id"], **alice)
    assert deleted.returncode == 0, deleted.stderr
    gone = osc_run(keystone, "trust", "show", trust["id"], **alice)
    assert gone.returncode != 0
