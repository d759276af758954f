"""Seeds Python Keystone with the benchmark data set and pre-mints subject tokens.

Run with the Keystone venv's python, after `keystone-manage db_sync`,
`fernet_setup` and `bootstrap`, with no server running:

  seed_keystone.py KEYSTONE_CONF USERS PROJECTS TOKENS TOKENS_OUT COLD COLD_OUT

The same data set as examples/bench_seed.rs, made the same way: in process,
through Keystone's own managers (PROVIDERS.identity_api, resource_api, role_api,
assignment_api, catalog_api), as keystone-manage bootstrap does, not over HTTP.
Like the Rust seeder, every user shares one password hash computed once with
Keystone's configured hasher (bcrypt by default): hash_password is wrapped so the
second and later calls for the same password reuse the first result.

Tokens: project-scoped, password method, what POST /v3/auth/tokens would issue,
made by keystone.token.token_formatters.TokenFormatter with the server's key
repository; token i belongs to user i % USERS on that user's project.
"""

import sys
import time
import uuid

conf_file = sys.argv[1]
n_users, n_projects = int(sys.argv[2]), int(sys.argv[3])
n_tokens, tokens_out = int(sys.argv[4]), sys.argv[5]
n_cold, cold_out = int(sys.argv[6]), sys.argv[7]
sys.argv = sys.argv[:1]

from keystone import server  # noqa: E402
from keystone.common import password_hashing  # noqa: E402
from keystone.common import provider_api  # noqa: E402
from keystone.common import utils  # noqa: E402
from keystone.token import provider as token_provider  # noqa: E402
from keystone.token import token_formatters as tf  # noqa: E402

USER_PASSWORD = "bench-password"
DOMAIN = "default"
REGION = "RegionOne"

server.configure(config_files=[conf_file])
server.setup_backends()
P = provider_api.ProviderAPIs

_real_hash = password_hashing.hash_password
_hashes = {}


def _shared_hash(password):
    if password not in _hashes:
        _hashes[password] = _real_hash(password)
    return _hashes[password]


password_hashing.hash_password = _shared_hash


def log(msg):
    print(f"seed: {msg}", file=sys.stderr, flush=True)


t0 = time.monotonic()

# Roles: bench-role-0 -> ... -> bench-role-4 -> member (bootstrap made the rest).
member = next(r for r in P.role_api.list_roles() if r["name"] == "member")
chain = []
for i in range(5):
    rid = uuid.uuid4().hex
    P.role_api.create_role(rid, {"id": rid, "name": f"bench-role-{i}"})
    chain.append(rid)
for prior, implied in list(zip(chain, chain[1:])) + [(chain[-1], member["id"])]:
    P.role_api.create_implied_role(prior, implied)

SERVICES = [
    ("compute", "nova", "http://127.0.0.1:8774/v2.1/$(project_id)s", ["public", "internal", "admin"]),
    ("image", "glance", "http://127.0.0.1:9292", ["public", "internal", "admin"]),
    ("network", "neutron", "http://127.0.0.1:9696", ["public", "internal", "admin"]),
    ("volumev3", "cinderv3", "http://127.0.0.1:8776/v3/$(project_id)s", ["public", "internal", "admin"]),
    ("placement", "placement", "http://127.0.0.1:8778", ["public", "internal", "admin"]),
    ("object-store", "swift", "http://127.0.0.1:8080/v1/AUTH_$(project_id)s", ["public", "internal"]),
]
for ty, name, url, interfaces in SERVICES:
    sid = uuid.uuid4().hex
    P.catalog_api.create_service(sid, {"id": sid, "type": ty, "name": name, "enabled": True})
    for itf in interfaces:
        eid = uuid.uuid4().hex
        P.catalog_api.create_endpoint(
            eid,
            {"id": eid, "interface": itf, "url": url, "service_id": sid, "region_id": REGION, "enabled": True},
        )
log(f"{len(P.role_api.list_roles())} roles, {len(P.catalog_api.list_endpoints())} endpoints "
    f"in {time.monotonic() - t0:.1f}s")

t = time.monotonic()
projects = []
for i in range(n_projects):
    pid = uuid.uuid4().hex
    P.resource_api.create_project(
        pid,
        {"id": pid, "name": f"bench-project-{i}", "domain_id": DOMAIN, "enabled": True, "description": ""},
    )
    projects.append(pid)
log(f"{len(projects)} projects in {time.monotonic() - t:.1f}s")

t = time.monotonic()
pairs = []
for i in range(n_users):
    user = P.identity_api.create_user(
        {"name": f"bench-user-{i}", "domain_id": DOMAIN, "enabled": True, "password": USER_PASSWORD}
    )
    pid = projects[i % len(projects)]
    P.assignment_api.add_role_to_user_and_project(user_id=user["id"], project_id=pid, role_id=chain[0])
    pairs.append((user["id"], pid))
log(f"{len(pairs)} users with {len(pairs)} assignments in {time.monotonic() - t:.1f}s")


def mint(n, path):
    t = time.monotonic()
    formatter = tf.TokenFormatter()
    expires_at = utils.isotime(token_provider.default_expire_time(), subsecond=True)
    with open(path, "w") as out:
        for i in range(n):
            user_id, project_id = pairs[i % len(pairs)]
            token = formatter.create_token(
                user_id,
                expires_at,
                [token_provider.random_urlsafe_str()],
                tf.ProjectScopedPayload,
                methods=["password"],
                project_id=project_id,
            )
            out.write(token + "\n")
    log(f"{n} subject tokens in {time.monotonic() - t:.1f}s -> {path}")


mint(n_tokens, tokens_out)
mint(n_cold, cold_out)
log(f"done in {time.monotonic() - t0:.1f}s")
