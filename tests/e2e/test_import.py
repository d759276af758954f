"""Issue #12, the proof: adopting a running Python Keystone.

A Keystone 30 database is built with Keystone's own `keystone-manage` (on SQLite and,
when MariaDB answers, on MariaDB), filled through the real Keystone's API (three
domains, a three-deep project tree with tags, users, a disabled user, user options,
groups, a domain-specific and implied roles, inherited, group and system assignments,
regions, endpoints with endpoint filters, unified limits, a stored policy with an
endpoint-policy association, a domain configuration, a trust and a deleted one, an
application credential with access rules, an OAuth1 consumer with an authorized access
token, a revoked token), with
passwords hashed by each of Keystone's algorithms (its own hashers), and tokens
minted by Keystone. Then `keystone-rs db import` into keystone-rs on SQLite and
PostgreSQL with the same key repository, and:

- every family lists identically through both servers' APIs (ids and fields);
- every user logs in with the old password, and its hash is argon2id afterwards;
- every Keystone-minted token validates on keystone-rs with the same body;
- the token Keystone revoked stays 404;
- a damaged or foreign database is refused with a clear error, the target untouched.
"""

import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import uuid

import pytest
import requests
from keystoneauth1 import session as ka_session
from keystoneauth1.identity import v3 as ka_v3
from keystoneclient.v3 import client as ks_client
from keystoneclient.v3.contrib.oauth1 import auth as oauth_auth

from conftest import Keystone, child_env
from python_keystone import PythonKeystone

KS_ADMIN_PASSWORD = "keystone-bootstrap-secret"
MARIADB = ("127.0.0.1", 3306)


def mariadb_answers():
    try:
        with socket.create_connection(MARIADB, timeout=2):
            return True
    except OSError:
        return False


class Api:
    """Keystone's v3 API with one token."""

    def __init__(self, url, token):
        self.url, self.token = url, token

    def __call__(self, method, path, body=None, expect=None, headers=None):
        r = requests.request(method, f"{self.url}{path}", json=body, timeout=60,
                             headers={"X-Auth-Token": self.token, **(headers or {})})
        if expect is not None:
            assert r.status_code == expect, f"{method} {path}: {r.status_code} {r.text}"
        return r.json() if r.content else None


def password_auth(user_ref, password, scope=None):
    auth = {"identity": {"methods": ["password"],
                         "password": {"user": dict(user_ref, password=password)}}}
    if scope:
        auth["scope"] = scope
    return {"auth": auth}


def appcred_auth(cred_id, secret):
    return {"auth": {"identity": {"methods": ["application_credential"],
                                  "application_credential": {"id": cred_id,
                                                             "secret": secret}}}}


def oauth_plugin(url, oauth):
    consumer_id, consumer_secret, access_key, access_secret = oauth
    return oauth_auth.OAuth(auth_url=url, consumer_key=consumer_id,
                            consumer_secret=consumer_secret, access_key=access_key,
                            access_secret=access_secret)


def issue(url, user_ref, password, scope=None):
    r = requests.post(f"{url}/auth/tokens", json=password_auth(user_ref, password, scope),
                      timeout=60)
    return r


# --- the source: a real Python Keystone ------------------------------------------


class Source:
    """What the Python Keystone held, as its API showed it, before the switch."""

    def __init__(self, kind, connection, tmp, execute):
        self.kind, self.connection, self.tmp, self.execute = kind, connection, tmp, execute
        self.users = {}       # name -> (user ref for auth, password)
        self.tokens = {}      # label -> (token, Keystone's validation body)
        self.listings = {}    # path -> Keystone's answer
        self.appcreds = {}    # name -> (application credential id, secret)
        self.system_listings = {}  # path -> Keystone's answer to a system reader
        self.oauth = None     # (consumer id, consumer secret, access key, access secret)
        self.revoked = None
        self.keys = None

    @property
    def import_url(self):
        return self.connection


LISTINGS = [
    "/domains", "/projects", "/users", "/groups", "/roles", "/role_inferences",
    "/role_assignments", "/role_assignments?include_names=1", "/regions", "/services",
    "/endpoints", "/OS-EP-FILTER/endpoint_groups", "/registered_limits", "/limits",
]


def build_source(kind, tmp):
    if kind == "sqlite":
        db = tmp / "keystone.db"
        connection = f"sqlite:///{db}"

        def execute(sql, params=()):
            with sqlite3.connect(db) as c:
                return c.execute(sql, params).fetchall()

        dropper = None
    else:
        import pymysql

        name = f"ks_import_{uuid.uuid4().hex[:12]}"
        conn = pymysql.connect(host=MARIADB[0], port=MARIADB[1], user="root", autocommit=True)
        conn.cursor().execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4")
        connection = f"mysql+pymysql://root@{MARIADB[0]}:{MARIADB[1]}/{name}?charset=utf8mb4"

        def execute(sql, params=()):
            c = pymysql.connect(host=MARIADB[0], port=MARIADB[1], user="root", database=name,
                                autocommit=True)
            try:
                cur = c.cursor()
                cur.execute(sql.replace("?", "%s"), params)
                return cur.fetchall()
            finally:
                c.close()

        def dropper():
            conn.cursor().execute(f"DROP DATABASE IF EXISTS {name}")
            conn.close()

    ks = PythonKeystone(tmp, connection, KS_ADMIN_PASSWORD)
    ks.setup("http://keystone.example.org/v3")
    ks.serve()
    try:
        src = Source(kind, connection, tmp, execute)
        fill(ks, src)
    finally:
        ks.stop()
    src.keys = ks.key_repository
    return src, dropper


def fill(ks, src):
    from keystone.common.password_hashers import bcrypt, pbkdf2, scrypt

    admin_ref = {"name": "admin", "domain": {"id": "default"}}
    r = issue(ks.url, admin_ref, KS_ADMIN_PASSWORD,
              {"project": {"name": "admin", "domain": {"id": "default"}}})
    assert r.status_code == 201, r.text
    api = Api(ks.url, r.headers["X-Subject-Token"])
    src.users["admin"] = (admin_ref, KS_ADMIN_PASSWORD)

    dom2 = api("POST", "/domains", {"domain": {"name": "dom2", "description": "second"}},
               201)["domain"]["id"]
    dom3 = api("POST", "/domains", {"domain": {"name": "dom3", "enabled": False}},
               201)["domain"]["id"]
    parent, projects = dom2, []
    for n, tags in (("p1", ["gold"]), ("p2", []), ("p3", ["gold", "silver"])):
        p = api("POST", "/projects", {"project": {
            "name": n, "domain_id": dom2, "parent_id": parent, "tags": tags,
            "color": "red", "description": f"level {n}"}}, 201)["project"]
        projects.append(p["id"])
        parent = p["id"]
    p1, p2, p3 = projects
    api("POST", "/projects", {"project": {"name": "off", "domain_id": "default",
                                          "enabled": False}}, 201)

    def user(name, domain, password, **extra):
        u = api("POST", "/users", {"user": dict(name=name, domain_id=domain,
                                                password=password, **extra)}, 201)["user"]
        src.users[name] = ({"id": u["id"]}, password)
        return u["id"]

    alice = user("alice", dom2, "alice bcrypt secret", email="alice@example.org",
                 default_project_id=p1, options={"ignore_password_expiry": True})
    bob = user("bob", "default", "bob scrypt secret")
    carol = user("carol", dom2, "carol pbkdf2 secret")
    dave = user("dave", "default", "dave bcrypt_sha256 secret")
    erin = user("erin", dom3, "erin secret")
    frank = user("frank", "default", "frank disabled secret", enabled=False)
    # A disabled user, and a user of a disabled domain, cannot log in, before or after.
    del src.users["frank"], src.users["erin"]
    # Passwords hashed by Keystone's other algorithms (its own hashers), as a cloud
    # that changed [identity] password_hash_algorithm over the years holds them.
    for uid, name, hasher in ((bob, "bob", lambda p: scrypt.Scrypt.hash(p, n=14)),
                              (carol, "carol", lambda p: pbkdf2.Sha512.hash(p, rounds=1000)),
                              (dave, "dave", lambda p: bcrypt.Bcrypt_sha256.hash(p, rounds=10))):
        pw = src.users[name][1].encode()
        src.execute("UPDATE password SET password_hash = ? WHERE local_user_id ="
                    " (SELECT id FROM local_user WHERE user_id = ?)", (hasher(pw), uid))
    # alice changes her password: the first one stays in Keystone's history.
    r = requests.post(f"{ks.url}/users/{alice}/password", timeout=60, json={"user": {
        "original_password": "alice bcrypt secret", "password": "alice second secret"}})
    assert r.status_code == 204, r.text
    src.users["alice"] = ({"id": alice}, "alice second secret")

    ops = api("POST", "/groups", {"group": {"name": "ops", "domain_id": dom2}}, 201)
    ops = ops["group"]["id"]
    api("PUT", f"/groups/{ops}/users/{carol}", expect=204)
    api("PUT", f"/groups/{ops}/users/{alice}", expect=204)

    roles = {r["name"]: r["id"] for r in api("GET", "/roles", expect=200)["roles"]}
    observer = api("POST", "/roles", {"role": {"name": "observer", "description": "sees"}},
                   201)["role"]["id"]
    dsr = api("POST", "/roles", {"role": {"name": "dom2-ops", "domain_id": dom2}},
              201)["role"]["id"]
    api("PUT", f"/roles/{dsr}/implies/{observer}", expect=201)
    api("PUT", f"/projects/{p1}/users/{alice}/roles/{roles['member']}", expect=204)
    api("PUT", f"/projects/{p2}/groups/{ops}/roles/{dsr}", expect=204)
    api("PUT", f"/OS-INHERIT/domains/{dom2}/groups/{ops}/roles/{roles['reader']}"
        "/inherited_to_projects", expect=204)
    api("PUT", f"/domains/{dom2}/users/{carol}/roles/{roles['manager']}", expect=204)
    api("PUT", f"/system/users/{dave}/roles/{roles['reader']}", expect=204)
    api("PUT", f"/projects/{p3}/users/{bob}/roles/{observer}", expect=204)
    api("PUT", f"/domains/{dom3}/users/{erin}/roles/{roles['member']}", expect=204)
    api("PUT", f"/projects/{p1}/users/{frank}/roles/{roles['member']}", expect=204)

    region = api("POST", "/regions", {"region": {"id": "RegionOne-a",
                                                 "parent_region_id": "RegionOne"}},
                 201)["region"]["id"]
    nova = api("POST", "/services", {"service": {"type": "compute", "name": "nova",
                                                 "description": "Compute"}}, 201)
    nova = nova["service"]["id"]
    endpoints = [api("POST", "/endpoints", {"endpoint": {
        "service_id": nova, "interface": i, "region_id": region,
        "url": f"http://nova.example.org/{i}/v2.1"}}, 201)["endpoint"]["id"]
        for i in ("public", "internal")]
    api("PUT", f"/OS-EP-FILTER/projects/{p1}/endpoints/{endpoints[0]}", expect=204)
    group = api("POST", "/OS-EP-FILTER/endpoint_groups", {"endpoint_group": {
        "name": "compute", "filters": {"service_id": nova}}}, 201)["endpoint_group"]["id"]
    api("PUT", f"/OS-EP-FILTER/endpoint_groups/{group}/projects/{p2}", expect=204)
    rl = api("POST", "/registered_limits", {"registered_limits": [{
        "service_id": nova, "resource_name": "cores", "default_limit": 10}]}, 201)
    assert rl["registered_limits"]
    api("POST", "/limits", {"limits": [{"service_id": nova, "project_id": p1,
                                        "resource_name": "cores", "resource_limit": 20}]}, 201)

    policy = api("POST", "/policies", {"policy": {"type": "application/json",
                                                  "blob": '{"compute:get": ""}',
                                                  "owner": "ops"}}, 201)["policy"]["id"]
    api("PUT", f"/policies/{policy}/OS-ENDPOINT-POLICY/services/{nova}/regions/{region}",
        expect=204)
    api("PUT", f"/domains/{dom2}/config", {"config": {
        "identity": {"driver": "sql"},
        "ldap": {"url": "ldap://ldap.example.org", "password": "ldap bind secret"}}}, 201)

    admin_project = api("GET", "/projects?name=admin", expect=200)["projects"][0]["id"]
    admin_id = api("GET", "/users?name=admin", expect=200)["users"][0]["id"]
    trust = api("POST", "/OS-TRUST/trusts", {"trust": {
        "trustor_user_id": admin_id, "trustee_user_id": alice, "project_id": admin_project,
        "impersonation": True, "roles": [{"name": "reader"}],
        "expires_at": "2099-01-01T00:00:00.000000Z"}}, 201)["trust"]["id"]
    # A deleted trust: Keystone keeps it soft-deleted; not imported, reported.
    gone = api("POST", "/OS-TRUST/trusts", {"trust": {
        "trustor_user_id": admin_id, "trustee_user_id": bob, "project_id": admin_project,
        "impersonation": False, "roles": [{"name": "reader"}]}}, 201)["trust"]["id"]
    api("DELETE", f"/OS-TRUST/trusts/{gone}", expect=204)

    # alice's application credential (restricted, with access rules), created with her
    # own project token as Keystone requires; its secret is hashed by Keystone (bcrypt).
    ref, password = src.users["alice"]
    as_alice = Api(ks.url, issue(ks.url, ref, password, {"project": {"id": p1}})
                   .headers["X-Subject-Token"])
    appcred = as_alice("POST", f"/users/{alice}/application_credentials", {
        "application_credential": {
            "name": "ci", "description": "deploys", "expires_at": "2099-01-01T00:00:00",
            "access_rules": [{"service": "compute", "method": "GET",
                              "path": "/v2.1/servers/**"}]}}, 201)["application_credential"]
    src.appcreds["ci"] = (appcred["id"], appcred["secret"])

    # An OAuth1 consumer and an access token the admin authorized with `reader` on the
    # admin project, through python-keystoneclient's oauthlib-signed flow.
    ksc = ks_client.Client(session=ka_session.Session(auth=ka_v3.Password(
        auth_url=ks.url, username="admin", user_domain_id="default",
        password=KS_ADMIN_PASSWORD, project_name="admin", project_domain_id="default")),
        endpoint_override=ks.url)  # the catalog names keystone.example.org
    consumer = ksc.oauth1.consumers.create(description="imported consumer")
    request = ksc.oauth1.request_tokens.create(consumer.id, consumer.secret, admin_project)
    verifier = ksc.oauth1.request_tokens.authorize(request.key, [roles["reader"]])
    access = ksc.oauth1.access_tokens.create(consumer.id, consumer.secret, request.key,
                                             request.secret, verifier.oauth_verifier)
    src.oauth = (consumer.id, consumer.secret, access.key, access.secret)

    # Tokens minted by Keystone, each validated by Keystone for the reference body.
    scopes = {
        "admin-project": ("admin", {"project": {"name": "admin", "domain": {"id": "default"}}}),
        "alice-p1": ("alice", {"project": {"id": p1}}),
        "alice-p3-inherited": ("alice", {"project": {"id": p3}}),
        "alice-unscoped": ("alice", None),
        "carol-domain": ("carol", {"domain": {"id": dom2}}),
        "carol-p2-group": ("carol", {"project": {"id": p2}}),
        "dave-system": ("dave", {"system": {"all": True}}),
        "bob-p3": ("bob", {"project": {"name": "p3", "domain": {"name": "dom2"}}}),
        "alice-trust": ("alice", {"OS-TRUST:trust": {"id": trust}}),
    }
    for label, (name, scope) in scopes.items():
        ref, password = src.users[name]
        r = issue(ks.url, ref, password, scope)
        assert r.status_code == 201, f"{label}: {r.text}"
        token = r.headers["X-Subject-Token"]
        body = api("GET", "/auth/tokens", headers={"X-Subject-Token": token}, expect=200)
        src.tokens[label] = (token, body)
    r = requests.post(f"{ks.url}/auth/tokens", timeout=60, json=appcred_auth(*src.appcreds["ci"]))
    assert r.status_code == 201, r.text
    token = r.headers["X-Subject-Token"]
    plugin = oauth_plugin(ks.url, src.oauth)
    token = plugin.get_access(ka_session.Session(auth=plugin)).auth_token
    src.tokens["admin-oauth1"] = (token, api("GET", "/auth/tokens", expect=200,
                                             headers={"X-Subject-Token": token}))
    # A token with access rules validates only for a middleware that enforces them.
    src.tokens["alice-appcred"] = (token, api("GET", "/auth/tokens", expect=200, headers={
        "X-Subject-Token": token, "OpenStack-Identity-Access-Rules": "1.0"}))
    # One more, revoked on Keystone: it must stay dead on keystone-rs.
    ref, password = src.users["carol"]
    revoked = issue(ks.url, ref, password, {"project": {"id": p2}}).headers["X-Subject-Token"]
    api("DELETE", "/auth/tokens", headers={"X-Subject-Token": revoked}, expect=204)
    api("GET", "/auth/tokens", headers={"X-Subject-Token": revoked}, expect=404)
    src.revoked = revoked

    for path in LISTINGS:
        src.listings[path] = api("GET", path, expect=200)
    for p in (p1, p3):
        src.listings[f"/projects/{p}"] = api("GET", f"/projects/{p}", expect=200)
    src.listings[f"/users/{alice}"] = api("GET", f"/users/{alice}", expect=200)
    src.listings[f"/groups/{ops}/users"] = api("GET", f"/groups/{ops}/users", expect=200)
    src.listings[f"/OS-EP-FILTER/projects/{p1}/endpoints"] = api(
        "GET", f"/OS-EP-FILTER/projects/{p1}/endpoints", expect=200)
    src.listings[f"/OS-EP-FILTER/endpoint_groups/{group}/projects"] = api(
        "GET", f"/OS-EP-FILTER/endpoint_groups/{group}/projects", expect=200)
    src.listings[f"/roles?domain_id={dom2}"] = api("GET", f"/roles?domain_id={dom2}",
                                                   expect=200)
    src.listings["/OS-REVOKE/events"] = api("GET", "/OS-REVOKE/events", expect=200)
    src.listings["/policies"] = api("GET", "/policies", expect=200)
    src.listings["/OS-TRUST/trusts"] = api("GET", "/OS-TRUST/trusts", expect=200)
    src.listings[f"/OS-TRUST/trusts/{trust}"] = api("GET", f"/OS-TRUST/trusts/{trust}",
                                                    expect=200)
    src.listings[f"/OS-TRUST/trusts/{trust}/roles"] = api(
        "GET", f"/OS-TRUST/trusts/{trust}/roles", expect=200)
    # Access rules are readable by their owner or a system reader only: dave's token.
    system = Api(ks.url, src.tokens["dave-system"][0])
    for path in (f"/users/{alice}/application_credentials",
                 f"/users/{alice}/application_credentials/{appcred['id']}",
                 f"/users/{alice}/access_rules"):
        src.system_listings[path] = system("GET", path, expect=200)
    src.listings["/OS-OAUTH1/consumers"] = api("GET", "/OS-OAUTH1/consumers", expect=200)
    for path in (f"/users/{admin_id}/OS-OAUTH1/access_tokens",
                 f"/users/{admin_id}/OS-OAUTH1/access_tokens/{access.key}/roles"):
        src.listings[path] = api("GET", path, expect=200)
    src.listings[f"/endpoints/{endpoints[0]}/OS-ENDPOINT-POLICY/policy"] = api(
        "GET", f"/endpoints/{endpoints[0]}/OS-ENDPOINT-POLICY/policy", expect=200)
    src.listings[f"/policies/{policy}/OS-ENDPOINT-POLICY/endpoints"] = api(
        "GET", f"/policies/{policy}/OS-ENDPOINT-POLICY/endpoints", expect=200)
    src.listings[f"/domains/{dom2}/config"] = api("GET", f"/domains/{dom2}/config", expect=200)
    assert "password" not in src.listings[f"/domains/{dom2}/config"]["config"]["ldap"]


@pytest.fixture(scope="module")
def sqlite_source(tmp_path_factory):
    src, _ = build_source("sqlite", tmp_path_factory.mktemp("ks-sqlite"))
    return src


@pytest.fixture(scope="module", params=["sqlite", "mariadb"])
def source(request, tmp_path_factory):
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_source")
        return
    if not mariadb_answers():
        if os.environ.get("KEYSTONE_TEST_REQUIRE_MARIADB"):
            pytest.fail("KEYSTONE_TEST_REQUIRE_MARIADB is set but nothing answers on "
                        "127.0.0.1:3306")
        pytest.skip("no MariaDB on 127.0.0.1:3306")
    src, dropper = build_source("mariadb", tmp_path_factory.mktemp("ks-mariadb"))
    yield src
    dropper()


# --- comparing what the two servers answer -----------------------------------------


def strip_links(v):
    if isinstance(v, dict):
        return {k: strip_links(x) for k, x in v.items() if k not in ("links",)}
    if isinstance(v, list):
        return [strip_links(x) for x in v]
    return v


SERVER_URL = re.compile(r"http://127\.0\.0\.1:\d+")


def canonical(v):
    """Lists in a stable order (each server orders some collections its own way), and
    each server's own address (in links outside `links`) made one."""
    v = strip_links(v)
    if isinstance(v, str):
        return SERVER_URL.sub("http://server", v)
    if isinstance(v, dict):
        return {k: canonical(x) for k, x in v.items()}
    if isinstance(v, list):
        items = [canonical(x) for x in v]
        return sorted(items, key=lambda x: json.dumps(x, sort_keys=True))
    return v


def differences(got, want, at=""):
    """Where two canonical answers differ, as readable paths."""
    if isinstance(got, dict) and isinstance(want, dict):
        out = []
        for k in sorted(set(got) | set(want)):
            if k not in got or k not in want:
                out.append(f"{at}.{k}: {'missing' if k not in got else 'extra'} "
                           f"(keystone-rs {got.get(k)!r}, Keystone {want.get(k)!r})")
            else:
                out += differences(got[k], want[k], f"{at}.{k}")
        return out
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        return [d for i, (g, w) in enumerate(zip(got, want))
                for d in differences(g, w, f"{at}[{i}]")]
    return [] if got == want else [f"{at}: keystone-rs {got!r}, Keystone {want!r}"]


def assert_same(got, want, what):
    diff = differences(canonical(got), canonical(want))
    assert not diff, f"{what}:\n" + "\n".join(diff[:20])


def rs_scalar(ks, sql):
    if ks.backend == "postgres":
        base, name = ks.pg
        url = base.rsplit("/", 1)[0] + "/" + name
        out = subprocess.run(["psql", url, "-X", "-q", "-A", "-t", "-c", sql], text=True,
                             capture_output=True, timeout=60, stdin=subprocess.DEVNULL)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()
    with sqlite3.connect(ks.tmp / "keystone.db") as c:
        return c.execute(sql).fetchone()[0]


def run(ks, *args):
    return subprocess.run([ks.bin, "--config-file", str(ks.conf), *args], env=child_env(),
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)


def report_rows(out):
    return {line[:28].strip(): line[28:].split()[:3] for line in out.splitlines()[1:]
            if line[:28].strip()}


def test_import_a_python_keystone(tmp_path, backend, source):
    ks = Keystone(tmp_path, backend)
    try:
        ks.manage("db", "sync")
        dry = ks.manage("db", "import", "--from", source.import_url, "--dry-run")
        assert "dry run: nothing was written" in dry
        assert report_rows(dry)["users"][1] == "0"
        out = ks.manage("db", "import", "--from", source.import_url)
        rows = report_rows(out)
        assert rows["domains"] == ["3", "3", "0"]
        assert rows["projects"] == ["5", "5", "0"]
        assert rows["users"] == ["7", "7", "0"]
        assert rows["user options"] == ["1", "1", "0"]
        assert rows["password history"] == ["1", "1", "0"]
        assert rows["revocation events"][2] == "0"
        assert rows["policies"] == ["1", "1", "0"]
        assert rows["trusts"] == ["2", "1", "1"] and "is deleted" in out
        assert rows["endpoint policies"] == ["1", "1", "0"]
        assert rows["domain configuration"] == ["2", "2", "0"]
        assert rows["domain config (sensitive)"] == ["1", "1", "0"]
        assert rows["application credentials"] == ["1", "1", "0"]
        assert rows["access rules"] == ["1", "1", "0"]
        assert rows["OAuth1 consumers"] == ["1", "1", "0"]
        assert rows["OAuth1 access tokens"] == ["1", "1", "0"]
        # Again, without --replace: refused, nothing changed.
        again = run(ks, "db", "import", "--from", source.import_url)
        assert again.returncode != 0 and "--replace" in again.stderr

        shutil.rmtree(ks.key_repository, ignore_errors=True)
        shutil.copytree(source.keys, ks.key_repository)
        ks.manage("credential", "setup")
        ks.serve()

        # Every Keystone-minted token validates with the body Keystone gave it.
        admin_token = source.tokens["admin-project"][0]
        rs = Api(ks.auth_url, admin_token)
        for label, (token, body) in source.tokens.items():
            r = requests.get(f"{ks.auth_url}/auth/tokens", timeout=60, headers={
                "X-Auth-Token": admin_token, "X-Subject-Token": token,
                "OpenStack-Identity-Access-Rules": "1.0"})
            assert r.status_code == 200, f"{label}: {r.text}"
            assert_same(r.json(), body, label)
        r = requests.get(f"{ks.auth_url}/auth/tokens", timeout=60, headers={
            "X-Auth-Token": admin_token, "X-Subject-Token": source.revoked})
        assert r.status_code == 404, r.text

        # Every family lists identically through both servers' APIs.
        for path, answer in source.listings.items():
            assert_same(rs("GET", path, expect=200), answer, path)
        # Keystone answers `unrestricted: null` for a credential created without it;
        # keystone-rs answers false (docs/compatibility.md): the same meaning.
        system = Api(ks.auth_url, source.tokens["dave-system"][0])
        for path, answer in source.system_listings.items():
            answer = json.loads(json.dumps(answer).replace('"unrestricted": null',
                                                           '"unrestricted": false'))
            assert_same(system("GET", path, expect=200), answer, path)

        # Every user logs in with the password Keystone knew; the hash is argon2id
        # afterwards. alice's first password is history: refused as a new password.
        for name, (ref, password) in source.users.items():
            r = issue(ks.auth_url, ref, password)
            assert r.status_code == 201, f"{name}: {r.text}"
            uid = r.json()["token"]["user"]["id"]
            assert rs_scalar(ks, f"SELECT password_hash FROM users WHERE id = '{uid}'"
                             ).startswith("$argon2id$"), name
            assert issue(ks.auth_url, ref, password + "x").status_code == 401
        # alice's first password (bcrypt) came along as history.
        alice_id = source.users["alice"][0]["id"]
        history = json.loads(rs_scalar(ks, "SELECT password_history FROM users"
                                       f" WHERE id = '{alice_id}'"))
        assert len(history) == 1 and history[0].startswith("$2b$"), history
        options = json.loads(rs_scalar(ks, f"SELECT options FROM users WHERE id = '{alice_id}'"))
        assert options == {"ignore_password_expiry": True}

        # The imported OAuth1 access token gets a new token from keystone-rs.
        plugin = oauth_plugin(ks.auth_url, source.oauth)
        body = dict(plugin.get_access(ka_session.Session(auth=plugin)))
        assert body["OS-OAUTH1"] == {"access_token_id": source.oauth[2],
                                     "consumer_id": source.oauth[0]}
        assert [r["name"] for r in body["roles"]] == ["reader"]

        # The application credential logs in with the secret Keystone issued (its bcrypt
        # hash, then argon2id); a wrong secret does not.
        cred_id, secret = source.appcreds["ci"]
        sql = f"SELECT secret_hash FROM application_credential WHERE id = '{cred_id}'"
        assert rs_scalar(ks, sql).startswith("$2b$")
        for _ in range(2):
            r = requests.post(f"{ks.auth_url}/auth/tokens", timeout=60,
                              json=appcred_auth(cred_id, secret))
            assert r.status_code == 201, r.text
            body = r.json()["token"]
            assert body["application_credential"]["id"] == cred_id
            assert body["application_credential"]["access_rules"][0]["path"] == \
                "/v2.1/servers/**"
            assert body["user"]["id"] == alice_id
        assert rs_scalar(ks, sql).startswith("$argon2id$")
        r = requests.post(f"{ks.auth_url}/auth/tokens", timeout=60,
                          json=appcred_auth(cred_id, secret + "x"))
        assert r.status_code == 401, r.text
    finally:
        ks.stop()


def test_damaged_and_foreign_databases_leave_the_target_untouched(tmp_path, backend,
                                                                  sqlite_source):
    source = sqlite_source
    (tmp_path / "rs").mkdir()
    ks = Keystone(tmp_path / "rs", backend)
    try:
        ks.start()
        before = rs_scalar(ks, "SELECT COUNT(*) FROM users")
        src_db = source.tmp / "keystone.db"

        foreign = tmp_path / "foreign.db"
        sqlite3.connect(foreign).execute("CREATE TABLE t (x)")
        bad = run(ks, "db", "import", "--from", f"sqlite:///{foreign}", "--replace")
        assert bad.returncode != 0 and "alembic_version" in bad.stderr

        truncated = tmp_path / "truncated.db"
        data = src_db.read_bytes()
        truncated.write_bytes(data[: len(data) // 3])
        bad = run(ks, "db", "import", "--from", f"sqlite:///{truncated}", "--replace")
        assert bad.returncode != 0 and bad.stderr.strip(), bad.stdout
        assert "panicked" not in bad.stderr

        # A row whose reference is broken aborts the whole import: all or nothing.
        broken = tmp_path / "broken.db"
        shutil.copy(src_db, broken)
        with sqlite3.connect(broken) as c:
            c.execute("PRAGMA foreign_keys = OFF")
            c.execute("INSERT INTO project_tag (project_id, name) VALUES ('no-such', 'x')")
        bad = run(ks, "db", "import", "--from", f"sqlite:///{broken}", "--replace")
        assert bad.returncode != 0 and "project tags" in bad.stderr, bad.stderr

        newer = tmp_path / "newer.db"
        shutil.copy(src_db, newer)
        with sqlite3.connect(newer) as c:
            c.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'"
                      " WHERE version_num = (SELECT MAX(version_num) FROM alembic_version)")
        bad = run(ks, "db", "import", "--from", f"sqlite:///{newer}", "--replace")
        assert bad.returncode != 0 and "schema revision" in bad.stderr

        assert rs_scalar(ks, "SELECT COUNT(*) FROM users") == before
        token, body = ks.issue_token("admin", "e2e-admin-secret", project="admin")
        assert body["user"]["name"] == "admin"
    finally:
        ks.stop()

