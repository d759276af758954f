#!/usr/bin/env bash
# Run OpenStack Tempest's identity API tests against a keystone-rs binary.
#
#   tests/tempest/run.sh [REGEX]          # default REGEX: tempest.api.identity
#
# Every run starts from nothing: a fresh keystone-rs state directory (SQLite
# database, Fernet keys, random admin password), `db sync`, `fernet setup`,
# `bootstrap`, then `serve` on 127.0.0.1:$KEYSTONE_PORT; a fresh Tempest
# workspace (`tempest init`) with an identity-only tempest.conf; then
# `tempest run --regex REGEX`. The server is stopped when the script exits,
# however it exits. The exit status is tempest's (0 = no test failed).
# Needs python3 and PyPI (for the virtualenv, created once); never runs cargo.
#
# Environment (all optional):
#   KEYSTONE_RS_BIN      binary to test (default target/release/keystone-rs;
#                        a relative path is tried from the current directory,
#                        then from the repository root)
#   KEYSTONE_PORT        port to serve on (default 5055; must be free)
#   TEMPEST_WORKDIR      output directory (default tests/tempest/.work); its
#                        keystone/ and workspace/ subdirectories and result
#                        files are replaced on every run
#   TEMPEST_VENV         virtualenv with tempest (default tests/tempest/.venv-tempest),
#                        created from requirements.txt + constraints.txt if missing
#   TEMPEST_CONCURRENCY  tempest workers (default 2)
#   TEMPEST_EXCLUDE_REGEX  passed to `tempest run --exclude-regex`
#   TEMPEST_EXTRA_CONF   a keystone.conf fragment merged over the generated one
#                        (option by option, the fragment wins), e.g. [security_compliance]
#   TEMPEST_EXTRA_TEMPEST_CONF  a tempest.conf fragment appended to the generated one
#   Feature toggles, written to tempest.conf (true/false unless noted):
#   TEMPEST_TRUST=true                  [identity-feature-enabled] trust (OS-TRUST tests)
#   TEMPEST_ACCESS_RULES=true           [identity-feature-enabled] access_rules
#   TEMPEST_SECURITY_COMPLIANCE=false   [identity-feature-enabled] security_compliance
#   TEMPEST_DOMAIN_SPECIFIC_DRIVERS=false  [identity-feature-enabled] domain_specific_drivers
#   TEMPEST_IMMUTABLE_USER_SOURCE=false [identity-feature-enabled] immutable_user_source
#   TEMPEST_API_EXTENSIONS=all          [identity-feature-enabled] api_extensions (comma list,
#                                       e.g. OS-INHERIT,OS-EC2; empty = none)
#   TEMPEST_USE_SYSTEM_TOKEN=false      [identity] use_system_token
#   TEMPEST_ADMIN_DOMAIN_SCOPE=false    [identity] admin_domain_scope
#   TEMPEST_LOCKOUT_FAILURE_ATTEMPTS=2, TEMPEST_LOCKOUT_DURATION=5,
#   TEMPEST_UNIQUE_LAST_PASSWORD_COUNT=2, TEMPEST_MINIMUM_PASSWORD_AGE=0
#                                       [identity] user_lockout_* / user_* (must match
#                                       keystone.conf [security_compliance])
#   TEMPEST_APPLICATION_CREDENTIALS=true, TEMPEST_PROJECT_TAGS=true
#                                       Tempest 47 has no switch for these: false adds
#                                       their modules to the exclude regex
#
# Results (in $TEMPEST_WORKDIR): tempest-run.txt (console), results.subunit,
# results.csv (one row per test), failing.txt, summary.txt (counts per module),
# workspace/logs/tempest.log (every request and response, with bodies),
# keystone/keystone.log (the server's log), keystone/keystone.conf,
# workspace/etc/tempest.conf.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
REGEX=${1:-tempest.api.identity}

BIN=${KEYSTONE_RS_BIN:-target/release/keystone-rs}
if [[ $BIN != /* ]]; then
    if [[ -e $BIN ]]; then BIN=$(pwd)/$BIN; else BIN=$ROOT/$BIN; fi
fi
[[ -x $BIN ]] || { echo "run.sh: keystone-rs binary $BIN is missing or not executable (set KEYSTONE_RS_BIN)" >&2; exit 2; }

PORT=${KEYSTONE_PORT:-5055}
WORKDIR=${TEMPEST_WORKDIR:-$HERE/.work}
VENV=${TEMPEST_VENV:-$HERE/.venv-tempest}
CONCURRENCY=${TEMPEST_CONCURRENCY:-2}
PYTHON=${PYTHON:-python3}
URL=http://127.0.0.1:$PORT

bool() { # bool NAME DEFAULT: the variable's value as true/false, or exit
    local v=${!1:-$2}
    case ${v,,} in
        1|true|yes|on) echo true ;;
        0|false|no|off) echo false ;;
        *) echo "run.sh: $1=$v is not true or false" >&2; exit 2 ;;
    esac
}
TRUST=$(bool TEMPEST_TRUST true)
ACCESS_RULES=$(bool TEMPEST_ACCESS_RULES true)
SECURITY_COMPLIANCE=$(bool TEMPEST_SECURITY_COMPLIANCE false)
DOMAIN_SPECIFIC_DRIVERS=$(bool TEMPEST_DOMAIN_SPECIFIC_DRIVERS false)
IMMUTABLE_USER_SOURCE=$(bool TEMPEST_IMMUTABLE_USER_SOURCE false)
USE_SYSTEM_TOKEN=$(bool TEMPEST_USE_SYSTEM_TOKEN false)
ADMIN_DOMAIN_SCOPE=$(bool TEMPEST_ADMIN_DOMAIN_SCOPE false)
APPLICATION_CREDENTIALS=$(bool TEMPEST_APPLICATION_CREDENTIALS true)
PROJECT_TAGS=$(bool TEMPEST_PROJECT_TAGS true)
API_EXTENSIONS=${TEMPEST_API_EXTENSIONS-all}

EXCLUDE=${TEMPEST_EXCLUDE_REGEX:-}
add_exclude() { EXCLUDE=${EXCLUDE:+$EXCLUDE|}$1; }
[[ $APPLICATION_CREDENTIALS == true ]] || add_exclude 'tempest\.api\.identity\.(admin\.)?v3\.test_application_credentials'
[[ $PROJECT_TAGS == true ]] || add_exclude 'tempest\.api\.identity\.admin\.v3\.test_project_tags'

for f in ${TEMPEST_EXTRA_CONF:+"$TEMPEST_EXTRA_CONF"} ${TEMPEST_EXTRA_TEMPEST_CONF:+"$TEMPEST_EXTRA_TEMPEST_CONF"}; do
    [[ -r $f ]] || { echo "run.sh: $f is not readable" >&2; exit 2; }
done

if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    echo "run.sh: something already listens on 127.0.0.1:$PORT (set KEYSTONE_PORT)" >&2
    exit 2
fi

SERVER_PID=
TEMPEST_PID=
TAIL_PID=
cleanup() {
    local rc=$?
    if [[ -n $TEMPEST_PID ]] && kill -0 "$TEMPEST_PID" 2>/dev/null; then
        # tempest runs in its own process group (setsid): this ends its workers too
        kill -TERM -- "-$TEMPEST_PID" 2>/dev/null || true
        wait "$TEMPEST_PID" 2>/dev/null || true
    fi
    if [[ -n $TAIL_PID ]]; then kill "$TAIL_PID" 2>/dev/null || true; fi
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- the virtualenv (once) ---------------------------------------------------
STAMP=$VENV/.tempest-installed
if [[ ! -x $VENV/bin/tempest || ! -e $STAMP || $HERE/requirements.txt -nt $STAMP || $HERE/constraints.txt -nt $STAMP ]]; then
    echo "== creating the tempest virtualenv in $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$HERE/requirements.txt" -c "$HERE/constraints.txt"
    touch "$STAMP"
fi

# --- keystone-rs ----------------------------------------------------------------
mkdir -p "$WORKDIR"
WORKDIR=$(cd "$WORKDIR" && pwd)
STATE=$WORKDIR/keystone
WS=$WORKDIR/workspace
rm -rf "$STATE" "$WS" "$WORKDIR"/{tempest-run.txt,results.subunit,results.csv,failing.txt,summary.txt,workspace.yaml}
mkdir -m 0700 "$STATE"

CONF=$STATE/keystone.conf
cat > "$CONF" <<EOF
# Written by tests/tempest/run.sh
[DEFAULT]
public_endpoint = $URL

[database]
connection = sqlite:///$STATE/keystone.db

[fernet_tokens]
key_repository = $STATE/fernet-keys

[credential]
key_repository = $STATE/credential-keys

[server]
bind = 127.0.0.1:$PORT
EOF
if [[ -n ${TEMPEST_EXTRA_CONF:-} ]]; then
    # Merged rather than appended: a section that appears twice in keystone.conf
    # would hide the first one's options from keystone-rs.
    "$PYTHON" - "$CONF" "$TEMPEST_EXTRA_CONF" <<'PY'
import configparser, sys
def load(path):
    p = configparser.ConfigParser(interpolation=None, strict=False, default_section="\0none")
    p.optionxform = str.lower
    p.read(path)
    return p
base, extra = load(sys.argv[1]), load(sys.argv[2])
for s in extra.sections():
    if not base.has_section(s):
        base.add_section(s)
    for k, v in extra.items(s, raw=True):
        base.set(s, k, v)
with open(sys.argv[1], "w") as f:
    f.write("# Written by tests/tempest/run.sh, with %s merged in\n" % sys.argv[2])
    base.write(f)
PY
fi

PASSWORD=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(18))')
(umask 077 && printf '%s\n' "$PASSWORD" > "$STATE/admin-password")

echo "== keystone-rs: $BIN"
"$BIN" --config-file "$CONF" db sync
"$BIN" --config-file "$CONF" fernet setup
"$BIN" --config-file "$CONF" credential setup
OS_BOOTSTRAP_PASSWORD=$PASSWORD "$BIN" --config-file "$CONF" bootstrap \
    --bootstrap-username admin --bootstrap-project-name admin --bootstrap-role-name admin \
    --bootstrap-service-name keystone --bootstrap-region-id RegionOne \
    --bootstrap-admin-url "$URL/v3" --bootstrap-public-url "$URL/v3" --bootstrap-internal-url "$URL/v3"

NO_COLOR=1 RUST_LOG=${RUST_LOG:-info} "$BIN" --config-file "$CONF" serve >"$STATE/keystone.log" 2>&1 &
SERVER_PID=$!
for i in $(seq 100); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "run.sh: keystone-rs exited during startup; its log ($STATE/keystone.log):" >&2
        tail -20 "$STATE/keystone.log" >&2
        exit 1
    fi
    if "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$URL/v3" 2>/dev/null; then
        break
    fi
    [[ $i -lt 100 ]] || { echo "run.sh: keystone-rs did not answer on $URL/v3 within 20 s" >&2; exit 1; }
    sleep 0.2
done
echo "== keystone-rs is serving on $URL (pid $SERVER_PID, log $STATE/keystone.log)"

# --- tempest --------------------------------------------------------------------
"$VENV/bin/tempest" init --workspace-path "$WORKDIR/workspace.yaml" --name keystone-rs "$WS" >/dev/null 2>&1 \
    || { echo "run.sh: tempest init failed" >&2; "$VENV/bin/tempest" init --workspace-path "$WORKDIR/workspace.yaml" "$WS"; exit 1; }

TCONF=$WS/etc/tempest.conf
cat > "$TCONF" <<EOF
# Written by tests/tempest/run.sh: Tempest's identity tests only.
[DEFAULT]
log_dir = $WS/logs
log_file = tempest.log
debug = true

[oslo_concurrency]
lock_path = $WS/tempest_lock

[auth]
use_dynamic_credentials = true
create_isolated_networks = false
admin_username = admin
admin_password = $PASSWORD
admin_project_name = admin
admin_domain_name = Default
admin_user_domain_name = Default
admin_project_domain_name = Default
default_credentials_domain_name = Default

[identity]
uri_v3 = $URL/v3
auth_version = v3
region = RegionOne
v3_endpoint_type = public
admin_role = admin
default_domain_id = default
use_system_token = $USE_SYSTEM_TOKEN
admin_domain_scope = $ADMIN_DOMAIN_SCOPE
user_lockout_failure_attempts = ${TEMPEST_LOCKOUT_FAILURE_ATTEMPTS:-2}
user_lockout_duration = ${TEMPEST_LOCKOUT_DURATION:-5}
user_unique_last_password_count = ${TEMPEST_UNIQUE_LAST_PASSWORD_COUNT:-2}
user_minimum_password_age = ${TEMPEST_MINIMUM_PASSWORD_AGE:-0}

[identity-feature-enabled]
api_v2 = false
api_v3 = true
trust = $TRUST
access_rules = $ACCESS_RULES
security_compliance = $SECURITY_COMPLIANCE
domain_specific_drivers = $DOMAIN_SPECIFIC_DRIVERS
immutable_user_source = $IMMUTABLE_USER_SOURCE
api_extensions = $API_EXTENSIONS

[service_available]
cinder = false
neutron = false
glance = false
swift = false
nova = false
horizon = false

[validation]
run_validation = false
EOF
if [[ -n ${TEMPEST_EXTRA_TEMPEST_CONF:-} ]]; then
    { echo; echo "# from $TEMPEST_EXTRA_TEMPEST_CONF"; cat "$TEMPEST_EXTRA_TEMPEST_CONF"; } >> "$TCONF"
fi

echo "== tempest run --regex '$REGEX'${EXCLUDE:+ --exclude-regex '$EXCLUDE'} --concurrency $CONCURRENCY"
cd "$WS"
args=(run --workspace-path "$WORKDIR/workspace.yaml" --config-file "$TCONF" --regex "$REGEX" --concurrency "$CONCURRENCY")
[[ -z $EXCLUDE ]] || args+=(--exclude-regex "$EXCLUDE")
# In the background, in its own process group, so that a signal to this script
# stops it (and its workers) at once instead of after the run.
: > "$WORKDIR/tempest-run.txt"
setsid "$VENV/bin/tempest" "${args[@]}" > "$WORKDIR/tempest-run.txt" 2>&1 < /dev/null &
TEMPEST_PID=$!
tail -n +1 -f --pid="$TEMPEST_PID" "$WORKDIR/tempest-run.txt" &
TAIL_PID=$!
RC=0
wait "$TEMPEST_PID" || RC=$?
TEMPEST_PID=
wait "$TAIL_PID" 2>/dev/null || true
TAIL_PID=

# --- results --------------------------------------------------------------------
if "$VENV/bin/stestr" last --subunit > "$WORKDIR/results.subunit" 2>/dev/null; then
    "$VENV/bin/subunit2csv" --no-passthrough < "$WORKDIR/results.subunit" > "$WORKDIR/results.csv" 2>/dev/null || true
    "$VENV/bin/stestr" failing --list > "$WORKDIR/failing.txt" 2>/dev/null || true
    if [[ -s $WORKDIR/results.csv ]]; then
        "$PYTHON" - "$WORKDIR/results.csv" > "$WORKDIR/summary.txt" <<'PY'
import collections, csv, re, sys
counts = collections.defaultdict(collections.Counter)
for row in csv.DictReader(open(sys.argv[1])):
    test = re.sub(r"\[.*\]$", "", row["test"])
    if test.startswith("setUpClass ("):          # a class that failed or skipped in setup
        test = test[len("setUpClass ("):].rstrip(")")
        module = test.rsplit(".", 1)[0]
    else:
        module = test.rsplit(".", 2)[0]
    status = {"success": "passed", "xfail": "passed", "fail": "failed", "failure": "failed",
              "uxsuccess": "failed", "skip": "skipped"}.get(row["status"], row["status"])
    counts[module][status] += 1
total = collections.Counter()
print("%-62s %6s %6s %7s" % ("module", "passed", "failed", "skipped"))
for module in sorted(counts):
    c = counts[module]
    total.update(c)
    print("%-62s %6d %6d %7d" % (module, c["passed"], c["failed"], c["skipped"]))
print("%-62s %6d %6d %7d" % ("total", total["passed"], total["failed"], total["skipped"]))
PY
        echo
        echo "== per module (setUpClass failures count once for their class)"
        cat "$WORKDIR/summary.txt"
    fi
fi
echo
echo "== results in $WORKDIR: tempest-run.txt results.subunit results.csv failing.txt summary.txt"
echo "   tempest log (requests and responses): $WS/logs/tempest.log"
echo "   keystone-rs log: $STATE/keystone.log"
exit "$RC"
