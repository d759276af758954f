"""Issue #12: adopting a Python Keystone. A Keystone 30 database is built with
Keystone's own `keystone-manage` (db_sync, fernet_setup, bootstrap) plus rows a
real cloud has (a second domain, a three-deep project tree with tags, a group, a user
hashed with pbkdf2_sha512 by Keystone's hasher, a revocation event), then imported into
keystone-rs with `db import` on each backend. Ids, passwords and the Keystone key
repository carry over.
"""

import shutil
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import requests

from conftest import Keystone, child_env

KEYSTONE_MANAGE = str(Path(sys.executable).parent / "keystone-manage")
KS_PASSWORD = "keystone-bootstrap-secret"
PBKDF2_PASSWORD = "imported pbkdf2 password"


def keystone_manage(conf, *args):
    out = subprocess.run([KEYSTONE_MANAGE, "--config-file", str(conf), *args],
                         env=child_env(), capture_output=True, text=True, timeout=300,
                         stdin=subprocess.DEVNULL)
    assert out.returncode == 0, out.stderr[-3000:]


def python_keystone_database(tmp):
    """A Keystone 30 database on SQLite, and its Fernet key repository."""
    db, keys = tmp / "keystone.db", tmp / "ks-fernet"
    conf = tmp / "ks.conf"
    conf.write_text(f"[database]\nconnection = sqlite:///{db}\n"
                    f"[fernet_tokens]\nkey_repository = {keys}\n")
    keystone_manage(conf, "db_sync")
    keystone_manage(conf, "fernet_setup", "--keystone-user", "root", "--keystone-group", "root")
    keystone_manage(conf, "bootstrap", "--bootstrap-password", KS_PASSWORD,
                    "--bootstrap-region-id", "RegionOne",
                    "--bootstrap-public-url", "http://keystone.example.org/v3")
    from keystone.common.password_hashers import pbkdf2

    ids = {k: uuid.uuid4().hex for k in ("dom", "p1", "p2", "p3", "grp", "user", "other")}
    with sqlite3.connect(db) as c:
        c.execute("INSERT INTO project (id, name, extra, description, enabled, domain_id,"
                  " parent_id, is_domain) VALUES (?, 'dom2', '{}', 'second', 1,"
                  " '<<keystone.domain.root>>', NULL, 1)", (ids["dom"],))
        parent = ids["dom"]
        for n in ("p1", "p2", "p3"):
            c.execute("INSERT INTO project (id, name, extra, description, enabled, domain_id,"
                      " parent_id, is_domain) VALUES (?, ?, '{\"color\": \"red\"}', '', 1, ?, ?, 0)",
                      (ids[n], n, ids["dom"], parent))
            parent = ids[n]
        c.execute("INSERT INTO project_tag (project_id, name) VALUES (?, 'gold')", (ids["p3"],))
        c.execute("INSERT INTO \"group\" (id, domain_id, name, description, extra)"
                  " VALUES (?, ?, 'ops', '', '{}')", (ids["grp"], ids["dom"]))
        c.execute("INSERT INTO user (id, extra, enabled, default_project_id, created_at,"
                  " domain_id) VALUES (?, '{\"email\": \"a@example.org\"}', 1, ?,"
                  " '2025-01-02 03:04:05', ?)", (ids["user"], ids["p1"], ids["dom"]))
        c.execute("INSERT INTO local_user (user_id, domain_id, name, failed_auth_count)"
                  " VALUES (?, ?, 'alice', 0)", (ids["user"], ids["dom"]))
        local = c.execute("SELECT id FROM local_user WHERE user_id = ?",
                          (ids["user"],)).fetchone()[0]
        c.execute("INSERT INTO password (local_user_id, self_service, password_hash,"
                  " created_at_int, created_at) VALUES (?, 0, ?, 1735787045000000,"
                  " '2025-01-02 03:04:05')",
                  (local, pbkdf2.Sha512.hash(PBKDF2_PASSWORD.encode(), rounds=1000)))
        c.execute("INSERT INTO user_group_membership (user_id, group_id) VALUES (?, ?)",
                  (ids["user"], ids["grp"]))
        # A user Keystone knows only through federation: reported, not imported.
        c.execute("INSERT INTO user (id, extra, enabled, created_at, domain_id)"
                  " VALUES (?, '{}', 1, '2025-01-02 03:04:05', ?)", (ids["other"], ids["dom"]))
        # Recent enough to still matter (older events are pruned, as Keystone does).
        c.execute("INSERT INTO revocation_event (user_id, issued_before, revoked_at)"
                  " VALUES (?, datetime('now'), datetime('now'))", (ids["user"],))
        admin = c.execute("SELECT user_id FROM local_user WHERE name = 'admin'").fetchone()[0]
        admin_project = c.execute("SELECT id FROM project WHERE name = 'admin'").fetchone()[0]
    return db, keys, dict(ids, admin=admin, admin_project=admin_project)


def login(ks, name, password, domain="default", project=None):
    auth = {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "domain": {"id": domain}, "password": password}}}}
    if project:
        auth["scope"] = {"project": {"id": project}}
    return requests.post(f"{ks.auth_url}/auth/tokens", json={"auth": auth}, timeout=30)


def run(ks, *args):
    return subprocess.run([ks.bin, "--config-file", str(ks.conf), *args], env=child_env(),
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def test_import_a_python_keystone(tmp_path, backend):
    db, keys, ids = python_keystone_database(tmp_path)
    (tmp_path / "rs").mkdir()
    ks = Keystone(tmp_path / "rs", backend)
    try:
        ks.manage("db", "sync")
        url = f"sqlite:///{db}"
        dry = ks.manage("db", "import", "--from", url, "--dry-run")
        assert "dry run: nothing was written" in dry
        out = ks.manage("db", "import", "--from", url)
        rows = {line[:28].strip(): line[28:].split()[:3] for line in out.splitlines()[1:]
                if line[:28].strip()}
        assert rows["domains"] == ["2", "2", "0"]
        assert rows["projects"] == ["4", "4", "0"]
        assert rows["users"] == ["3", "2", "1"]
        assert "not a local user" in out
        # Again, without --replace: refused, nothing changed.
        again = run(ks, "db", "import", "--from", url)
        assert again.returncode != 0 and "--replace" in again.stderr
        # A database that is not Keystone's: a clear error.
        foreign = tmp_path / "foreign.db"
        sqlite3.connect(foreign).execute("CREATE TABLE t (x)")
        bad = run(ks, "db", "import", "--from", f"sqlite:///{foreign}")
        assert bad.returncode != 0 and "alembic_version" in bad.stderr

        # Keystone's key repository, then serve.
        shutil.rmtree(ks.key_repository, ignore_errors=True)
        shutil.copytree(keys, ks.key_repository)
        ks.manage("credential", "setup")
        ks.serve()

        # The bootstrap admin (bcrypt, cost 12) and alice (pbkdf2) keep their passwords.
        r = login(ks, "admin", KS_PASSWORD, project=ids["admin_project"])
        assert r.status_code == 201, r.text
        token = r.headers["X-Subject-Token"]
        body = r.json()["token"]
        assert body["user"]["id"] == ids["admin"]
        assert "admin" in [role["name"] for role in body["roles"]]
        assert login(ks, "admin", "wrong").status_code == 401
        r = login(ks, "alice", PBKDF2_PASSWORD, domain=ids["dom"])
        assert r.status_code == 201, r.text
        assert r.json()["token"]["user"]["id"] == ids["user"]

        h = {"X-Auth-Token": token}
        got = requests.get(f"{ks.auth_url}/projects/{ids['p3']}", headers=h, timeout=30).json()
        assert got["project"]["parent_id"] == ids["p2"] and got["project"]["tags"] == ["gold"]
        assert got["project"]["color"] == "red"
        got = requests.get(f"{ks.auth_url}/projects/{ids['p1']}", headers=h, timeout=30).json()
        assert got["project"]["parent_id"] == ids["dom"]
        got = requests.get(f"{ks.auth_url}/users/{ids['user']}", headers=h, timeout=30).json()
        assert got["user"]["email"] == "a@example.org"
        assert got["user"]["default_project_id"] == ids["p1"]
        members = requests.get(f"{ks.auth_url}/groups/{ids['grp']}/users", headers=h,
                               timeout=30).json()["users"]
        assert [u["id"] for u in members] == [ids["user"]]
        services = requests.get(f"{ks.auth_url}/services", headers=h, timeout=30).json()
        assert [s["name"] for s in services["services"]] == ["keystone"]
        events = requests.get(f"{ks.auth_url}/OS-REVOKE/events", headers=h, timeout=30).json()
        assert ids["user"] in [e.get("user_id") for e in events["events"]]
    finally:
        ks.stop()
