"""Service tokens: the live-migration scenario, end to end, with the real
keystonemiddleware and the real keystoneauth1 service-token wrapper.

- keystone-rs runs with [token] expiration = SHORT_EXPIRATION seconds and
  allow_expired_window = SHORT_WINDOW seconds (conftest.short_keystone).
- A tiny WSGI "volume service" is wrapped by keystonemiddleware's
  auth_token.AuthProtocol, configured like Cinder's [keystone_authtoken]
  (its own service user `cinder`, service_token_roles = service,
  service_token_roles_required = true) and served by wsgiref on a loopback
  port. It answers with the identity headers the middleware set.
- The "compute service" is a keystoneauth1 Session whose auth is
  ServiceTokenAuthWrapper(user_auth=<the user's token>, service_auth=<nova's
  password plugin>), which is what Nova builds with
  [service_user] send_service_user_token = true. The user's token plugin is an
  AccessInfoPlugin over the user's token (like Nova's context plugin: it
  never re-authenticates) and finds the volume service in the user's catalog.

The middleware's token cache is disabled (token_cache_time = -1) and every case
uses a token of its own, so each answer comes from keystone-rs, not a cache.
"""

import json
import threading
import time
from datetime import datetime, timezone
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from keystoneauth1 import session
from keystoneauth1.identity.access import AccessInfoPlugin
from keystoneauth1.service_token import ServiceTokenAuthWrapper
from keystonemiddleware.auth_token import AuthProtocol

from conftest import free_port

VOLUME_TYPE = "volumev3"
PASSWORDS = {
    "demo": "demo-secret",
    "nova": "nova-secret",
    "cinder": "cinder-secret",
    "nonservice": "nonservice-secret",
}
IDENTITY_HEADERS = (
    "X-Identity-Status",
    "X-User-Id",
    "X-User-Name",
    "X-Roles",
    "X-Project-Id",
    "X-Project-Name",
    "X-Service-Identity-Status",
    "X-Service-User-Id",
    "X-Service-User-Name",
    "X-Service-Roles",
)


# --- the volume service -------------------------------------------------------


def volume_app(environ, start_response):
    """Echo what auth_token told the service about the caller."""
    seen = {}
    for name in IDENTITY_HEADERS:
        value = environ.get("HTTP_" + name.upper().replace("-", "_"))
        if value is not None:
            seen[name] = value
    body = json.dumps(seen).encode()
    start_response(
        "200 OK",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        + [(k, v) for k, v in seen.items()],
    )
    return [body]


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class VolumeService:
    def __init__(self, keystone, port):
        self.conf = {
            # [keystone_authtoken], as Cinder would have it against keystone-rs.
            "www_authenticate_uri": keystone.auth_url,
            "auth_url": keystone.auth_url,
            "auth_type": "password",
            "username": "cinder",
            "password": PASSWORDS["cinder"],
            "user_domain_id": "default",
            "project_name": "service",
            "project_domain_id": "default",
            "interface": "public",
            "service_token_roles": "service",
            "service_token_roles_required": "true",
            "include_service_catalog": "false",
            "delay_auth_decision": "false",
            # No memcached: the in-process cache, disabled so that keystone-rs
            # answers every validation.
            "token_cache_time": "-1",
        }
        self.app = AuthProtocol(volume_app, dict(self.conf))
        self.server = make_server(
            "127.0.0.1", port, self.app, server_class=_ThreadingWSGIServer, handler_class=_Quiet
        )
        self.url = f"http://127.0.0.1:{self.server.server_port}/v3"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --- setup through the management API -----------------------------------------


class World:
    """Projects, users, roles and the volume endpoint on one keystone-rs."""

    def __init__(self, ks):
        self.ks = ks
        token = ks.admin_token()
        self.token = token
        roles = {r["name"]: r["id"] for r in ks.api("GET", "/roles", token, 200).json()["roles"]}
        self.project_ids = {}
        for name in ("demo", "service"):
            body = {"project": {"name": name, "domain_id": "default", "enabled": True}}
            self.project_ids[name] = ks.api("POST", "/projects", token, 201, json=body).json()[
                "project"
            ]["id"]
        self.user_ids = {}
        for user, project, role in (
            ("demo", "demo", "member"),
            ("nova", "service", "service"),
            ("cinder", "service", "service"),
            ("nonservice", "service", "member"),
        ):
            body = {"user": {"name": user, "domain_id": "default", "password": PASSWORDS[user],
                             "default_project_id": self.project_ids[project]}}
            uid = ks.api("POST", "/users", token, 201, json=body).json()["user"]["id"]
            self.user_ids[user] = uid
            ks.api("PUT", f"/projects/{self.project_ids[project]}/users/{uid}/roles/{roles[role]}",
                   token, 204)

    def register_volume_endpoint(self, url):
        body = {"service": {"type": VOLUME_TYPE, "name": "cinderv3", "enabled": True}}
        sid = self.ks.api("POST", "/services", self.token, 201, json=body).json()["service"]["id"]
        body = {"endpoint": {"service_id": sid, "interface": "public", "region_id": "RegionOne",
                             "url": url, "enabled": True}}
        self.ks.api("POST", "/endpoints", self.token, 201, json=body)

    def password(self, user, project="service"):
        return self.ks.password_plugin(user, PASSWORDS[user], project=project)

    def user_access(self, user="demo", project="demo"):
        """The user logs in (as through Horizon or the CLI): their token and its AccessInfo."""
        plugin = self.password(user, project)
        access = plugin.get_access(session.Session(auth=plugin))
        return access


@pytest.fixture(scope="module")
def world(short_keystone):
    return World(short_keystone)


@pytest.fixture(scope="module")
def volume(short_keystone, world):
    port = free_port()
    world.register_volume_endpoint(f"http://127.0.0.1:{port}/v3")
    svc = VolumeService(short_keystone, port)
    svc.start()
    yield svc
    svc.stop()


def compute_session(world, access, service_user="nova"):
    """Nova's session for a call on the user's behalf: user token + service token
    ([service_user] send_service_user_token = true), or the user token alone."""
    user_auth = AccessInfoPlugin(access, auth_url=world.ks.auth_url)
    if service_user is None:
        return session.Session(auth=user_auth)
    return session.Session(
        auth=ServiceTokenAuthWrapper(user_auth=user_auth, service_auth=world.password(service_user))
    )


def call_volume(sess):
    return sess.get(
        "/volumes",
        endpoint_filter={"service_type": VOLUME_TYPE, "interface": "public"},
        raise_exc=False,
    )


def sleep_until_expired(*accesses):
    """Sleep until every token is past its expires_at (by at least one second)."""
    latest = max(a.expires for a in accesses)
    delay = (latest - datetime.now(timezone.utc)).total_seconds() + 1.2
    if delay > 0:
        time.sleep(delay)
    for a in accesses:
        assert a.expires < datetime.now(timezone.utc)


def keystone_validate(ks, token, allow_expired):
    """Ask keystone-rs directly (as the admin) whether it accepts the token."""
    query = "?allow_expired=1" if allow_expired else ""
    return ks.api("GET", f"/auth/tokens{query}", headers={"X-Subject-Token": token})


def assert_rejected(resp, ks):
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"]["code"] == 401
    assert resp.headers["WWW-Authenticate"] == f'Keystone uri="{ks.auth_url}"'
    assert "X-User-Id" not in resp.headers


# --- the cases ------------------------------------------------------------------


def test_configured_lifetimes(short_keystone, world):
    access = world.user_access()
    lifetime = (access.expires - access.issued).total_seconds()
    assert short_keystone.expiration - 1 <= lifetime <= short_keystone.expiration


def test_user_token_expires_mid_operation_and_the_call_still_succeeds(short_keystone, world,
                                                                       volume):
    access = world.user_access()
    compute = compute_session(world, access)

    # The operation starts while the user's token is valid...
    resp = call_volume(compute)
    assert resp.status_code == 200, resp.text
    assert resp.url == f"{volume.url}/volumes"
    assert resp.json()["X-User-Id"] == world.user_ids["demo"]

    # ...and goes on for longer than the token lives (a live migration).
    sleep_until_expired(access)
    assert keystone_validate(short_keystone, access.auth_token, False).status_code == 404

    resp = call_volume(compute)
    assert resp.status_code == 200, resp.text
    seen = resp.json()
    assert seen["X-Identity-Status"] == "Confirmed"
    assert seen["X-User-Id"] == world.user_ids["demo"]
    assert seen["X-User-Name"] == "demo"
    assert seen["X-Project-Id"] == world.project_ids["demo"]
    assert seen["X-Project-Name"] == "demo"
    roles = set(seen["X-Roles"].split(","))
    assert "member" in roles and "reader" in roles, roles
    assert "service" not in roles
    # The service token was checked too, and is nova's.
    assert seen["X-Service-Identity-Status"] == "Confirmed"
    assert seen["X-Service-User-Id"] == world.user_ids["nova"]
    assert "service" in seen["X-Service-Roles"].split(",")
    # Same headers on the response, as the app echoes them.
    assert resp.headers["X-User-Id"] == world.user_ids["demo"]
    assert resp.headers["X-Project-Id"] == world.project_ids["demo"]

    # keystone-rs was asked (the middleware's cache is off) and accepted the
    # expired token under allow_expired, for cinder's service user.
    audit = [
        line for line in short_keystone.log_text().splitlines()
        if "allow_expired_accepted" in line and access.audit_id in line
    ]
    assert audit, "no allow_expired audit line for the user's token"
    assert world.user_ids["cinder"] in audit[-1]


@pytest.fixture(scope="module")
def expired_tokens(short_keystone, world, volume):
    """One token per negative case, all issued now; `revoked` is revoked while
    still valid (an expired token cannot be revoked); then wait until all expire.
    `beyond` is used last, once it is also past the allow_expired window."""
    cases = ("no_service_token", "nonservice", "revoked", "beyond", "control")
    tokens = {case: world.user_access() for case in cases}
    assert len({a.auth_token for a in tokens.values()}) == len(cases)
    short_keystone.api(
        "DELETE", "/auth/tokens", expect=204,
        headers={"X-Subject-Token": tokens["revoked"].auth_token},
    )
    sleep_until_expired(*tokens.values())
    return tokens


def test_expired_user_token_without_a_service_token_is_rejected(short_keystone, world,
                                                                expired_tokens):
    resp = call_volume(compute_session(world, expired_tokens["no_service_token"], None))
    assert_rejected(resp, short_keystone)


def test_service_token_of_a_user_without_the_service_role_is_rejected(short_keystone, world,
                                                                      expired_tokens):
    resp = call_volume(compute_session(world, expired_tokens["nonservice"], "nonservice"))
    assert_rejected(resp, short_keystone)


def test_revoked_user_token_is_rejected_even_with_a_service_token(short_keystone, world,
                                                                  expired_tokens):
    token = expired_tokens["revoked"].auth_token
    assert keystone_validate(short_keystone, token, True).status_code == 404
    resp = call_volume(compute_session(world, expired_tokens["revoked"]))
    assert_rejected(resp, short_keystone)


def test_revoked_unexpired_user_token_is_rejected(short_keystone, world, volume):
    access = world.user_access()
    short_keystone.api("DELETE", "/auth/tokens", expect=204,
                       headers={"X-Subject-Token": access.auth_token})
    resp = call_volume(compute_session(world, access))
    assert_rejected(resp, short_keystone)


def test_expired_control_token_is_accepted(short_keystone, world, expired_tokens):
    """The same batch of tokens, with a good service token: accepted, so the
    rejections above are about the service token and the revocation."""
    resp = call_volume(compute_session(world, expired_tokens["control"]))
    assert resp.status_code == 200, resp.text
    assert resp.json()["X-User-Id"] == world.user_ids["demo"]


def test_user_token_expired_longer_ago_than_the_window_is_rejected(short_keystone, world,
                                                                   expired_tokens):
    access = expired_tokens["beyond"]
    past_window = access.expires.timestamp() + short_keystone.allow_expired_window + 1.2
    delay = past_window - time.time()
    if delay > 0:
        time.sleep(delay)
    assert keystone_validate(short_keystone, access.auth_token, True).status_code == 404
    resp = call_volume(compute_session(world, access))
    assert_rejected(resp, short_keystone)


def test_a_valid_user_token_alone_is_accepted(short_keystone, world, volume):
    """Sanity: the ordinary path (no service token) works while the token lives."""
    access = world.user_access()
    resp = call_volume(compute_session(world, access, None))
    assert resp.status_code == 200, resp.text
    seen = resp.json()
    assert seen["X-User-Id"] == world.user_ids["demo"]
    assert "X-Service-Identity-Status" not in seen
