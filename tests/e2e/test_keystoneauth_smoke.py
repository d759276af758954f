"""keystoneauth1, the client library every OpenStack service and CLI uses,
against the real keystone-rs binary.

The binary is not built here: `make e2e` / `make test` build it first. Its
path is $KEYSTONE_RS_BIN, else target/debug/keystone-rs in the repository.
"""

import os
import re
import socket
import subprocess
import time
from pathlib import Path

import pytest
from keystoneauth1 import discover, exceptions, session
from keystoneauth1.identity import v3

REPO = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "e2e-admin-secret"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def binary():
    path = Path(os.environ.get("KEYSTONE_RS_BIN", "target/debug/keystone-rs"))
    if not path.is_absolute():
        path = REPO / path
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} is not an executable: run `cargo build` (or `make e2e`) first")
    return str(path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env():
    # Nothing from the caller's shell may change the server's configuration.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYSTONE_", "OS_"))}
    env.update(RUST_LOG="info", NO_COLOR="1")
    return env


class Keystone:
    def __init__(self, tmp: Path):
        self.bin = binary()
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.auth_url = f"{self.base_url}/v3"
        self.public_url = f"{self.base_url}/v3"
        self.conf = tmp / "keystone.conf"
        self.log = tmp / "serve.log"
        self.conf.write_text(
            f"[DEFAULT]\npublic_endpoint = {self.base_url}\n"
            f"[database]\nconnection = sqlite:///{tmp / 'keystone.db'}\n"
            f"[fernet_tokens]\nkey_repository = {tmp / 'fernet-keys'}\n"
            f"[server]\nbind = 127.0.0.1:{self.port}\n"
        )
        self.proc = None

    def manage(self, *args, env=None):
        out = subprocess.run(
            [self.bin, "--config-file", str(self.conf), *args],
            env={**child_env(), **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, f"keystone-rs {' '.join(args)}:\n{out.stdout}{out.stderr}"
        return out.stdout

    def start(self):
        self.manage("db", "sync")
        self.manage("fernet", "setup")
        self.manage(
            "bootstrap",
            "--bootstrap-region-id", "RegionOne",
            "--bootstrap-admin-url", self.public_url,
            "--bootstrap-public-url", self.public_url,
            "--bootstrap-internal-url", self.public_url,
            env={"OS_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD},
        )
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [self.bin, "--config-file", str(self.conf), "serve"],
                env=child_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            match = re.search(r"keystone-rs listening.*\bport=(\d+)", self.log_text())
            if match:
                assert int(match.group(1)) == self.port
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        pytest.fail(f"keystone-rs serve did not start:\n{self.log_text()}")

    def log_text(self):
        return ANSI.sub("", self.log.read_text(errors="replace"))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def keystone(tmp_path_factory):
    ks = Keystone(tmp_path_factory.mktemp("keystone-rs"))
    ks.start()
    yield ks
    ks.stop()
    # Shown by pytest only when a test failed.
    print(f"--- keystone-rs serve log ({ks.log}) ---\n{ks.log_text()[-20000:]}")


def password(ks, project=True, pw=ADMIN_PASSWORD):
    scope = {"project_name": "admin", "project_domain_id": "default"} if project else {}
    return v3.Password(
        auth_url=ks.auth_url,
        username="admin",
        password=pw,
        user_domain_id="default",
        **scope,
    )


@pytest.fixture
def admin_session(keystone):
    return session.Session(auth=password(keystone))


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
