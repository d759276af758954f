"""A real Python Keystone 30 (the `keystone` package of the e2e requirements), set up
with its own `keystone-manage` and served by wsgiref in a child process: the
reference the import proof (test_import.py) compares keystone-rs against.

Its database is SQLite or, given a SQLAlchemy URL, MySQL/MariaDB.
"""

import subprocess
import sys
import time
from pathlib import Path

import requests

from conftest import child_env, free_port

KEYSTONE_MANAGE = str(Path(sys.executable).parent / "keystone-manage")

# Keystone parses sys.argv with oslo.config; the configuration comes from
# OS_KEYSTONE_CONFIG_FILES.
SERVER = """
import sys
port = int(sys.argv[1])
sys.argv = sys.argv[:1]
from wsgiref.simple_server import WSGIRequestHandler, make_server
from keystone.server import wsgi

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

make_server("127.0.0.1", port, wsgi.initialize_public_application(),
            handler_class=Quiet).serve_forever()
"""


class PythonKeystone:
    def __init__(self, tmp: Path, connection: str, admin_password: str):
        self.tmp = tmp
        self.connection = connection
        self.admin_password = admin_password
        self.key_repository = tmp / "ks-fernet"
        self.conf = tmp / "ks.conf"
        self.log = tmp / "ks.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/v3"
        self.conf.write_text(
            f"[DEFAULT]\npublic_endpoint = http://127.0.0.1:{self.port}\n"
            f"[database]\nconnection = {connection}\n"
            f"[fernet_tokens]\nkey_repository = {self.key_repository}\n"
            f"[fernet_receipts]\nkey_repository = {self.key_repository}\n"
            f"[credential]\nkey_repository = {tmp / 'ks-credential'}\n"
        )
        self.proc = None

    def manage(self, *args):
        out = subprocess.run([KEYSTONE_MANAGE, "--config-file", str(self.conf), *args],
                             env=child_env(), capture_output=True, text=True, timeout=300,
                             stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stderr[-3000:]

    def setup(self, public_url):
        self.manage("db_sync")
        self.manage("fernet_setup", "--keystone-user", "root", "--keystone-group", "root")
        self.manage("credential_setup", "--keystone-user", "root", "--keystone-group", "root")
        self.manage("bootstrap", "--bootstrap-password", self.admin_password,
                    "--bootstrap-region-id", "RegionOne",
                    "--bootstrap-public-url", public_url)

    def serve(self):
        env = dict(child_env(), OS_KEYSTONE_CONFIG_FILES=str(self.conf))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sys.executable, "-c", SERVER, str(self.port)],
                                         env=env, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            try:
                if requests.get(self.url, timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"Python Keystone did not start:\n{self.log.read_text()[-3000:]}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
