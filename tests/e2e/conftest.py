"""Shared fixtures for the end-to-end tests: the real keystone-rs binary, started
with a temporary configuration, database and Fernet key repository.

The binary is not built here: `make e2e` / `make test` build it first. Its path
is $KEYSTONE_RS_BIN, else target/debug/keystone-rs in the repository.

Backends: every test that uses `keystone` or `short_keystone` runs once on
SQLite and once on PostgreSQL. PostgreSQL needs $KEYSTONE_TEST_POSTGRES_URL
(e.g. postgres://postgres@127.0.0.1:5432/test) and `psql`; each server gets a
fresh database, dropped afterwards. Without the URL the PostgreSQL variants are
skipped, unless $KEYSTONE_TEST_REQUIRE_POSTGRES is set: then they fail.

Two server profiles per backend:
- `keystone`: Keystone's default token lifetimes;
- `short_keystone`: [token] expiration = SHORT_EXPIRATION and a small
  allow_expired_window, so tokens expire (and fall out of the window) within
  seconds.
"""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import requests
from keystoneauth1 import session
from keystoneauth1.identity import v3

REPO = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "e2e-admin-secret"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

# Keystone 30.0.0's default [auth] methods, spelled out so the Python formatter
# used by test_interop.py and keystone-rs agree on the method bitmask.
AUTH_METHODS = "external,password,token,oauth1,mapped,application_credential,ec2credential"

# python-openstackclient's entry point, from the venv running pytest.
OPENSTACK = str(Path(sys.executable).parent / "openstack")

# The short-lifetime profile (test_service_tokens.py).
SHORT_EXPIRATION = 5
SHORT_WINDOW = 15


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


# --- PostgreSQL: one fresh database per server -------------------------------


def postgres_url():
    return os.environ.get("KEYSTONE_TEST_POSTGRES_URL") or None


def _psql(base_url, sql):
    psql = shutil.which("psql")
    if psql is None:
        pytest.fail("KEYSTONE_TEST_POSTGRES_URL is set but `psql` is not installed")
    out = subprocess.run(
        [psql, base_url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if out.returncode != 0:
        raise RuntimeError(f"psql {sql!r}: {out.stderr.strip()}")


def create_postgres_database(base_url):
    """CREATE DATABASE ks_e2e_<random>; returns (connection URL for keystone.conf, name)."""
    name = f"ks_e2e_{uuid.uuid4().hex}"
    _psql(base_url, f"CREATE DATABASE {name}")
    parts = urllib.parse.urlsplit(base_url)
    # keystone.conf spells it the SQLAlchemy way.
    url = urllib.parse.urlunsplit(("postgresql", parts.netloc, f"/{name}", parts.query, ""))
    return url, name


def drop_postgres_database(base_url, name):
    try:
        _psql(base_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    except Exception as exc:  # a leftover test database is untidy, not wrong
        print(f"could not drop {name}: {exc}")


# --- the server ---------------------------------------------------------------


class Keystone:
    """One keystone-rs process: `db sync`, `fernet setup`, `bootstrap`, `serve`."""

    def __init__(self, tmp: Path, backend: str, token_options=None):
        self.bin = binary()
        self.backend = backend
        self.tmp = tmp
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.auth_url = f"{self.base_url}/v3"
        self.public_url = f"{self.base_url}/v3"
        self.key_repository = tmp / "fernet-keys"
        self.credential_keys = tmp / "credential-keys"
        self.conf = tmp / "keystone.conf"
        self.log = tmp / "serve.log"
        self.token_options = {"expiration": 3600, "allow_expired_window": 172800}
        self.token_options.update(token_options or {})
        self.pg = None
        if backend == "postgres":
            base = postgres_url()
            connection, name = create_postgres_database(base)
            self.pg = (base, name)
        else:
            connection = f"sqlite:///{tmp / 'keystone.db'}"
        self.connection = connection
        token = "".join(f"{k} = {v}\n" for k, v in self.token_options.items())
        self.conf.write_text(
            f"[DEFAULT]\npublic_endpoint = {self.base_url}\n"
            f"[database]\nconnection = {connection}\n"
            f"[fernet_tokens]\nkey_repository = {self.key_repository}\n"
            f"[identity]\ndefault_domain_id = default\n"
            f"[auth]\nmethods = {AUTH_METHODS}\n"
            f"[token]\n{token}"
            f"[server]\nbind = 127.0.0.1:{self.port}\n"
            f"[credential]\nkey_repository = {self.credential_keys}\n"
        )
        self.proc = None

    @property
    def expiration(self):
        return int(self.token_options["expiration"])

    @property
    def allow_expired_window(self):
        return int(self.token_options["allow_expired_window"])

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
        self.manage("credential", "setup")
        self.manage(
            "bootstrap",
            "--bootstrap-region-id", "RegionOne",
            "--bootstrap-admin-url", self.public_url,
            "--bootstrap-public-url", self.public_url,
            "--bootstrap-internal-url", self.public_url,
            env={"OS_BOOTSTRAP_PASSWORD": ADMIN_PASSWORD},
        )
        self.serve()

    def serve(self):
        """`serve` in the background, once the database and keys are in place."""
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
        if self.pg:
            drop_postgres_database(*self.pg)
            self.pg = None

    # --- clients ---------------------------------------------------------------

    def password_plugin(self, username="admin", password=ADMIN_PASSWORD, project="admin",
                        **scope):
        if project is not None and not scope:
            scope = {"project_name": project, "project_domain_id": "default"}
        return v3.Password(
            auth_url=self.auth_url,
            username=username,
            password=password,
            user_domain_id="default",
            **scope,
        )

    def admin_session(self):
        return session.Session(auth=self.password_plugin())

    def admin_token(self):
        return self.admin_session().get_token()

    def admin_access(self):
        plugin = self.password_plugin()
        return plugin.get_access(session.Session(auth=plugin))

    def admin_user_id(self):
        return self.admin_access().user_id

    def admin_project_id(self):
        return self.admin_access().project_id

    def api(self, method, path, token=None, expect=None, **kwargs):
        """One management API call as the admin (or with `token`); checks the status."""
        headers = kwargs.pop("headers", {})
        headers["X-Auth-Token"] = token or self.admin_token()
        resp = requests.request(method, self.auth_url + path, headers=headers, timeout=30,
                                **kwargs)
        if expect is not None:
            assert resp.status_code == expect, f"{method} {path}: {resp.status_code} {resp.text}"
        return resp

    def issue_token(self, username, password, project=None, domain=None, system=False):
        """POST /v3/auth/tokens; returns (token, body)."""
        auth = {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": username, "domain": {"id": "default"},
                                      "password": password}},
            }
        }
        if project:
            auth["scope"] = {"project": {"name": project, "domain": {"id": "default"}}}
        elif domain:
            auth["scope"] = {"domain": {"id": domain}}
        elif system:
            auth["scope"] = {"system": {"all": True}}
        resp = requests.post(f"{self.auth_url}/auth/tokens", json={"auth": auth}, timeout=30)
        assert resp.status_code == 201, resp.text
        return resp.headers["X-Subject-Token"], resp.json()["token"]


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def backend(request):
    if request.param == "postgres" and not postgres_url():
        if os.environ.get("KEYSTONE_TEST_REQUIRE_POSTGRES"):
            pytest.fail("KEYSTONE_TEST_REQUIRE_POSTGRES is set but KEYSTONE_TEST_POSTGRES_URL is not")
        pytest.skip("PostgreSQL: KEYSTONE_TEST_POSTGRES_URL is not set")
    return request.param


def _serve(tmp_path_factory, backend, token_options=None):
    ks = Keystone(tmp_path_factory.mktemp(f"keystone-rs-{backend}"), backend, token_options)
    try:
        ks.start()
        yield ks
    finally:
        ks.stop()
        # Shown by pytest only when a test failed.
        print(f"--- keystone-rs serve log ({ks.log}) ---\n{ks.log_text()[-20000:]}")


@pytest.fixture(scope="session")
def keystone(tmp_path_factory, backend):
    """keystone-rs with Keystone's default token lifetimes."""
    yield from _serve(tmp_path_factory, backend)


@pytest.fixture(scope="session")
def short_keystone(tmp_path_factory, backend):
    """keystone-rs whose tokens expire within seconds (and a small allow_expired_window)."""
    yield from _serve(
        tmp_path_factory,
        backend,
        {"expiration": SHORT_EXPIRATION, "allow_expired_window": SHORT_WINDOW},
    )


@pytest.fixture
def admin_session(keystone):
    return keystone.admin_session()


# --- python-openstackclient -------------------------------------------------------------
#
# `osc(...)` runs `openstack <args>` with the auth options on the command line
# (--os-auth-url, --os-username, ...). By default it calls the console script's
# own entry point, openstackclient.shell:main, in this process: the same code
# an operator's `openstack` runs, without ~2 s of interpreter start-up and
# plugin loading per command (the walkthrough runs ~45 commands per backend).
# E2E_OSC_SUBPROCESS=1 runs every command as a real `openstack` subprocess
# instead. test_clients.py always uses a subprocess for token issue/revoke.


def osc_env():
    """The caller's environment without any OS_* variable (no stray cloud config)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("OS_")}


def osc_auth_args(keystone, username="admin", password=ADMIN_PASSWORD, project="admin",
                  user_domain=None, project_domain=None, domain=None):
    """--os-* options; `*_domain` and `domain` are domain names, None for the
    default domain (by id). `project=None` with `domain` gives a domain scope."""
    args = [
        "--os-auth-url", keystone.auth_url,
        "--os-identity-api-version", "3",
        "--os-interface", "public",
        "--os-region-name", "RegionOne",
        "--os-username", username,
        "--os-password", password,
    ]
    args += ["--os-user-domain-name", user_domain] if user_domain else [
        "--os-user-domain-id", "default"]
    if project:
        args += ["--os-project-name", project]
        args += ["--os-project-domain-name", project_domain] if project_domain else [
            "--os-project-domain-id", "default"]
    elif domain:
        args += ["--os-domain-name", domain]
    return args


class OscResult:
    def __init__(self, argv, returncode, stdout, stderr):
        self.args, self.returncode, self.stdout, self.stderr = argv, returncode, stdout, stderr


def _osc_in_process(argv):
    import contextlib
    import io
    import logging

    from openstackclient import shell

    out, err = io.StringIO(), io.StringIO()
    saved_env = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("OS_")}
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = shell.main(list(argv))
            except SystemExit as exc:  # argparse errors
                rc = exc.code if isinstance(exc.code, int) else 1
    finally:
        os.environ.update(saved_env)
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
    return OscResult(argv, rc, out.getvalue(), err.getvalue())


def osc_run(keystone, *args, own_process=False, **auth):
    """Run `openstack <auth options> <args>`; returns an OscResult
    (returncode, stdout, stderr); the caller checks returncode. `own_process`: as a
    subprocess whatever E2E_OSC_SUBPROCESS says (for commands whose client keeps
    module-level state, such as the ec2 commands' keystoneclient)."""
    argv = [*osc_auth_args(keystone, **auth), *args]
    if own_process or os.environ.get("E2E_OSC_SUBPROCESS"):
        out = subprocess.run([OPENSTACK, *argv], env=osc_env(), stdin=subprocess.DEVNULL,
                             capture_output=True, text=True, timeout=120)
        return OscResult(argv, out.returncode, out.stdout, out.stderr)
    return _osc_in_process(argv)


def osc(keystone, *args, **auth):
    """`openstack <args>` that must succeed; returns its JSON output (None if empty).
    Pass `-f json` in args for commands that print something."""
    out = osc_run(keystone, *args, **auth)
    assert out.returncode == 0, f"openstack {' '.join(args)} (exit {out.returncode}):\n{out.stderr}"
    return json.loads(out.stdout) if out.stdout.strip() else None


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):
        pass


class _ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve_behind_auth_token(app, conf, project):
    """Starts `app` behind keystonemiddleware's auth_token on 127.0.0.1:0 and returns
    the running server (`.server_port`; `.shutdown()` stops it). auth_token gets a
    private oslo.config object: the global one belongs to the process (test_interop
    configures Keystone's own options on it)."""
    from keystonemiddleware.auth_token import AuthProtocol
    from oslo_config import cfg

    local = cfg.ConfigOpts()
    local(args=[], project=project, default_config_files=[], default_config_dirs=[])
    server = make_server("127.0.0.1", 0, AuthProtocol(app, {**conf, "oslo_config_config": local}),
                         server_class=_ThreadingWSGIServer, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
