#!/usr/bin/env bash
# `make bench-import`: how long `keystone-rs db import` takes, and how much memory it
# needs, for a large Python Keystone database (default 100,000 users and 10,000
# projects, in Keystone 30's schema built by its own `keystone-manage db_sync`).
#
#   bash bench/import_scale.sh                 # SQLite target, and PostgreSQL when
#                                              # KEYSTONE_TEST_POSTGRES_URL is set
#   IMPORT_USERS=10000 IMPORT_PROJECTS=1000 bash bench/import_scale.sh
#
# Needs the release binary (built here) and a virtualenv with the `keystone` package
# ($VENV, default .venv, the one `make e2e` creates). Prints one markdown table;
# everything else stays under bench/work/import-*/.
set -euo pipefail
cd "$(dirname "$0")/.."

USERS=${IMPORT_USERS:-100000}
PROJECTS=${IMPORT_PROJECTS:-10000}
VENV=${VENV:-.venv}
BIN=${KEYSTONE_RS_BIN:-target/release/keystone-rs}
PG_URL=${KEYSTONE_TEST_POSTGRES_URL:-}

if [[ ! -x $VENV/bin/keystone-manage ]]; then
    echo "bench-import: $VENV/bin/keystone-manage is missing: run \`make e2e\` once (it creates $VENV)" >&2
    exit 1
fi
if [[ -z ${KEYSTONE_RS_BIN:-} ]]; then
    cargo build --release --quiet
fi

WORK=$(pwd)/bench/work/import-$(date +%Y%m%d-%H%M%S)
mkdir -p "$WORK"
SRC=$WORK/keystone.db
printf '[database]\nconnection = sqlite:///%s\n' "$SRC" >"$WORK/ks.conf"
"$VENV/bin/keystone-manage" --config-file "$WORK/ks.conf" db_sync >"$WORK/db_sync.log" 2>&1

echo "bench-import: filling a Keystone database with $USERS users and $PROJECTS projects" >&2
"$VENV/bin/python" - "$SRC" "$USERS" "$PROJECTS" <<'EOF'
import sqlite3, sys, uuid
db, users, projects = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db)
now = "2026-01-02 03:04:05"
# One bcrypt hash (cost 12) for everyone: the import copies hashes, it never checks them.
bcrypt = "$2b$12$Y8vPpH1JGMq6Kv9rJ9o3FuQh8mTrqYJqz0Cz8bNqf9QwQbqZ2mG6W"
domains = ["default"] + [uuid.uuid4().hex for _ in range(2)]
for i, d in enumerate(domains):
    c.execute("INSERT INTO project (id, name, extra, description, enabled, domain_id, parent_id,"
              " is_domain) VALUES (?, ?, '{}', '', 1, '<<keystone.domain.root>>', NULL, 1)",
              (d, "Default" if d == "default" else f"dom{i}"))
pids, rows = [], []
for i in range(projects):
    pid = uuid.uuid4().hex
    domain = domains[i % 3]
    # A tree: every tenth project a root, the others children of the previous root.
    parent = domain if i % 10 == 0 else pids[i - i % 10]
    rows.append((pid, f"project-{i}", '{"tier": "gold"}', f"project {i}", 1, domain, parent, 0))
    pids.append(pid)
c.executemany("INSERT INTO project (id, name, extra, description, enabled, domain_id, parent_id,"
              " is_domain) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
c.executemany("INSERT INTO project_tag (project_id, name) VALUES (?, 'gold')",
              [(p,) for p in pids[::10]])
roles = [uuid.uuid4().hex for _ in range(3)]
c.executemany("INSERT INTO role (id, name, extra, domain_id, description) VALUES"
              " (?, ?, '{}', '<<null>>', NULL)", [(r, n) for r, n in zip(roles, ["admin", "member", "reader"])])
groups = [uuid.uuid4().hex for _ in range(100)]
c.executemany("INSERT INTO \"group\" (id, domain_id, name, description, extra) VALUES"
              " (?, 'default', ?, '', '{}')", [(g, f"group-{i}") for i, g in enumerate(groups)])
uids = [uuid.uuid4().hex for _ in range(users)]
c.executemany("INSERT INTO user (id, extra, enabled, default_project_id, created_at, domain_id)"
              " VALUES (?, '{\"email\": \"u@example.org\"}', 1, ?, ?, 'default')",
              [(u, pids[i % projects], now) for i, u in enumerate(uids)])
c.executemany("INSERT INTO local_user (id, user_id, domain_id, name, failed_auth_count) VALUES"
              " (?, ?, 'default', ?, 0)", [(i + 1, u, f"user-{i}") for i, u in enumerate(uids)])
c.executemany("INSERT INTO password (local_user_id, self_service, password_hash, created_at_int,"
              " created_at) VALUES (?, 0, ?, 1767323045000000, ?)",
              [(i + 1, bcrypt, now) for i in range(users)])
c.executemany("INSERT INTO user_option (user_id, option_id, option_value) VALUES (?, '1001', 'true')",
              [(u,) for u in uids[::100]])
c.executemany("INSERT INTO user_group_membership (user_id, group_id) VALUES (?, ?)",
              [(u, groups[i % 100]) for i, u in enumerate(uids)])
c.executemany("INSERT INTO assignment (type, actor_id, target_id, role_id, inherited) VALUES"
              " ('UserProject', ?, ?, ?, 0)", [(u, pids[i % projects], roles[1]) for i, u in enumerate(uids)])
c.executemany("INSERT INTO assignment (type, actor_id, target_id, role_id, inherited) VALUES"
              " ('GroupProject', ?, ?, ?, 0)", [(g, pids[i], roles[2]) for i, g in enumerate(groups)])
c.commit()
EOF

measure() { # target-label connection
    local label=$1 connection=$2 dir=$WORK/$1
    mkdir -p "$dir"
    printf '[database]\nconnection = %s\n' "$connection" >"$dir/keystone.conf"
    "$BIN" --config-file "$dir/keystone.conf" db sync >/dev/null
    /usr/bin/time -f '%e %M' -o "$dir/time" \
        "$BIN" --config-file "$dir/keystone.conf" db import --from "sqlite:///$SRC" >"$dir/report.txt" 2>"$dir/stderr.txt"
    read -r secs kb <"$dir/time"
    printf '| %s | %s | %s | %s s | %s MiB |\n' "$label" "$USERS" "$PROJECTS" "$secs" "$((kb / 1024))"
}

echo
echo "| target | users | projects | db import wall time | peak RSS |"
echo "|---|---|---|---|---|"
measure sqlite "sqlite:///$WORK/sqlite/keystone.db"
if [[ -n $PG_URL ]]; then
    name=ks_import_bench_$$
    psql "$PG_URL" -X -q -c "CREATE DATABASE $name" >/dev/null
    measure postgres "${PG_URL%/*}/$name"
    psql "$PG_URL" -X -q -c "DROP DATABASE $name" >/dev/null
fi
echo
echo "source: $SRC ($(du -h "$SRC" | cut -f1)); reports: $WORK/*/report.txt" >&2
