#!/usr/bin/env python3
"""A password spray against keystone-rs's [rate_limit], with figures (issue 13).

Starts the binary (KEYSTONE_RS_BIN, default target/release/keystone-rs) on a fresh
SQLite database with [server] trusted_proxies = 127.0.0.1, sprays ATTEMPTS wrong
passwords at one user from one address (the peer, 16 at a time), and meanwhile logs a
legitimate user in from another address (X-Forwarded-For, believed from the trusted
peer). Prints how many attempts were answered 401 (verified with argon2) and 429
(refused before hashing), the argon2 verifications the server made (its
keystone_hash_wait_seconds count), and the legitimate user's login latencies.

    scripts/login-spray.py [ATTEMPTS]        # default 1000
"""
import concurrent.futures
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("KEYSTONE_RS_BIN", os.path.join(ROOT, "target/release/keystone-rs"))
ATTEMPTS = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
PORT = int(os.environ.get("KEYSTONE_PORT", "5077"))
URL = f"http://127.0.0.1:{PORT}"


def request(method, path, body=None, token=None, forwarded=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("X-Auth-Token", token)
    if forwarded:
        req.add_header("X-Forwarded-For", forwarded)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def password_auth(name, password, forwarded=None):
    body = {"auth": {"identity": {"methods": ["password"], "password": {
        "user": {"name": name, "domain": {"id": "default"}, "password": password}}}}}
    return request("POST", "/v3/auth/tokens", body, forwarded=forwarded)


def hash_count():
    _, _, text = request("GET", "/metrics")
    m = re.search(rb"^keystone_hash_wait_seconds_count (\d+)", text, re.M)
    return int(m.group(1)) if m else -1


def main():
    state = tempfile.mkdtemp(prefix="ks-spray-")
    conf = os.path.join(state, "keystone.conf")
    with open(conf, "w") as f:
        f.write(f"""[database]
connection = sqlite:///{state}/keystone.db
[fernet_tokens]
key_repository = {state}/fernet-keys
[server]
bind = 127.0.0.1:{PORT}
trusted_proxies = 127.0.0.1
""")
    run = lambda *a, **kw: subprocess.run([BIN, "--config-file", conf, *a], check=True,
                                          stdout=subprocess.DEVNULL, **kw)
    run("db", "sync")
    run("fernet", "setup")
    env = dict(os.environ, OS_BOOTSTRAP_PASSWORD="spray-admin-pass")
    run("bootstrap", "--bootstrap-username", "admin", "--bootstrap-project-name", "admin",
        "--bootstrap-role-name", "admin", env=env)
    server = subprocess.Popen([BIN, "--config-file", conf, "serve"],
                              stdout=open(os.path.join(state, "keystone.log"), "w"),
                              stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                request("GET", "/v3")
                break
            except OSError:
                time.sleep(0.1)
        body = {"auth": {"identity": {"methods": ["password"], "password": {"user": {
            "name": "admin", "domain": {"id": "default"}, "password": "spray-admin-pass"}}},
            "scope": {"system": {"all": True}}}}
        status, headers, _ = request("POST", "/v3/auth/tokens", body, forwarded="192.0.2.1")
        assert status == 201, status
        admin = headers["X-Subject-Token"]
        for name in ("victim", "legit"):
            status, _, _ = request("POST", "/v3/users", {"user": {
                "name": name, "password": name + "-pass", "domain_id": "default"}}, token=admin)
            assert status == 201, status
        # Idle latency of the legitimate user first.
        idle = []
        for i in range(5):
            t = time.monotonic()
            status, _, _ = password_auth("legit", "legit-pass", forwarded="198.51.100.9")
            idle.append(time.monotonic() - t)
            assert status == 201, status
        before = hash_count()
        statuses = []
        lock = threading.Lock()
        during = []
        done = threading.Event()

        def legit_loop():
            while not done.is_set():
                t = time.monotonic()
                status, _, _ = password_auth("legit", "legit-pass", forwarded="198.51.100.9")
                with lock:
                    during.append((time.monotonic() - t, status))
                time.sleep(0.05)

        legit = threading.Thread(target=legit_loop)
        legit.start()
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            for status, _, _ in pool.map(lambda i: password_auth("victim", f"guess-{i}"),
                                         range(ATTEMPTS)):
                statuses.append(status)
        spray_secs = time.monotonic() - started
        done.set()
        legit.join()
        after = hash_count()
        legit_hashes = len(during)
        print(f"spray: {ATTEMPTS} attempts from one address in {spray_secs:.2f} s")
        for code in sorted(set(statuses)):
            print(f"  {code}: {statuses.count(code)}")
        print(f"argon2 verifications during the spray: {after - before} "
              f"(of which {legit_hashes} the legitimate user's logins)")
        lat = [d for d, s in during]
        ok = sum(1 for _, s in during if s == 201)
        print(f"legitimate user, idle: median {statistics.median(idle)*1000:.1f} ms; "
              f"during the spray: {ok}/{len(during)} logins 201, median "
              f"{statistics.median(lat)*1000:.1f} ms, max {max(lat)*1000:.1f} ms")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
