#!/usr/bin/env bash
# `make bench`: builds keystone-rs in release mode, seeds a fixed data set, drives
# it with wrk and prints one table (and, with BENCH_PYTHON=1, runs the same
# workloads against Python Keystone 30 in the same invocation, with ratio columns).
# See bench/README.md for what each workload measures; docs/performance.md for the
# method and the latest results.
#
# Environment:
#   BENCH_SCALE=default|large  data set size (default: default). large also runs the
#                              default scale in the same invocation for the
#                              "vs default scale" columns; Python runs only at default.
#   BENCH_PYTHON=1             also benchmark Python Keystone 30 (venv from PyPI)
#   BENCH_DURATION=10          seconds per workload
#   BENCH_WARMUP=2             seconds of unrecorded warm-up before steady workloads
#   BENCH_WRK_THREADS=2        wrk threads per run
#   BENCH_PORT=15350           keystone-rs port (Python: +1, default-scale base: +2)
#   (bench/profile.sh profiles validate-hot under callgrind separately)
#   BENCH_BASELINE=REV         also benchmark git revision REV (built in bench/work/baseline-*),
#                              interleaved with this tree, with "now / before" columns
#   BENCH_METRICS_OFF=1        also run validate-hot on a server with [metrics] enabled = false
#                              (default 1; 0 skips it), for the "metrics cost" check
#   CARGO_TARGET_DIR           where the release build goes (default: ./target)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

SCALE=${BENCH_SCALE:-default}
PYTHON_SIDE=${BENCH_PYTHON:-0}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
THREADS=${BENCH_WRK_THREADS:-2}
PORT=${BENCH_PORT:-15350}
TOKENS=${BENCH_TOKENS:-10000}
COLD_TOKENS=${BENCH_COLD_TOKENS:-200000}
# Python Keystone validates a few hundred new tokens a second: 5,000 outlast a run.
PY_COLD_TOKENS=$((COLD_TOKENS < 5000 ? COLD_TOKENS : 5000))
PASSWORD_USERS=${BENCH_PASSWORD_USERS:-64}
REVOKE_EXTRA=${BENCH_REVOCATION_EVENTS:-100000}
USER_PASSWORD=bench-password
ADMIN_PASSWORD=bench-admin-password
PY_PACKAGES="keystone==30.0.0 gunicorn==27.0.1"

case "$SCALE" in
  default|large) ;;
  *) echo "bench: BENCH_SCALE must be default or large, not $SCALE" >&2; exit 2 ;;
esac
if [[ "$SCALE" == large && "$PYTHON_SIDE" == 1 ]]; then
  echo "bench: BENCH_SCALE=large runs keystone-rs only (loading 100,000 users into Python Keystone through its API takes hours); ignoring BENCH_PYTHON=1" >&2
  PYTHON_SIDE=0
fi

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release/keystone-rs
SEED=$CARGO_TARGET_DIR/release/examples/bench_seed
WORK=$ROOT/bench/work
VENV=$WORK/pyks-venv
BENCHCTL=(python3 "$ROOT/bench/tools/benchctl.py")
export BENCH_LUA_DIR=$ROOT/bench/lua
export BENCH_WRK_THREADS=$THREADS

log() { echo "bench: $*" >&2; }

# ------------------------------------------------------------------ prerequisites
if ! command -v wrk >/dev/null 2>&1; then
  log "wrk is missing: installing it from Debian's packages (apt-get install wrk)"
  if [[ $(id -u) -ne 0 ]]; then
    log "not root: run 'sudo apt-get install wrk' and try again"; exit 1
  fi
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi

log "building keystone-rs and examples/bench_seed in release mode"
cargo build --release --quiet --bin keystone-rs --example bench_seed

BASELINE=${BENCH_BASELINE:-}
if [[ -n $BASELINE ]]; then
  BASE_REV=$(git rev-parse --short "$BASELINE")
  BASE_SRC=$WORK/baseline-src
  log "building the baseline $BASE_REV (git worktree in ${BASE_SRC#$ROOT/})"
  mkdir -p "$WORK"
  git worktree remove --force "$BASE_SRC" >/dev/null 2>&1 || rm -rf "$BASE_SRC"
  git worktree add --detach "$BASE_SRC" "$BASE_REV" >/dev/null
  (cd "$BASE_SRC" && CARGO_TARGET_DIR=$WORK/baseline-target cargo build --release --quiet --bin keystone-rs --example bench_seed)
  BASE_BIN=$WORK/baseline-target/release/keystone-rs
  BASE_SEED=$WORK/baseline-target/release/examples/bench_seed
fi

DATE=$(date -u +%Y-%m-%d)
STAMP=$(date -u +%Y%m%d-%H%M%S)
RUN=$WORK/run-$STAMP-$SCALE
mkdir -p "$RUN"
RESULTS=$RUN/results.jsonl
: >"$RESULTS"
MACHINE=$("${BENCHCTL[@]}" machine)
log "work directory $RUN"

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do
    # Each server was started in its own session: its process group is its pid.
    kill -TERM -- "-$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT

record() { "${BENCHCTL[@]}" record --results "$RESULTS" "$@"; }
meta() { "${BENCHCTL[@]}" meta --results "$RESULTS" "$@"; }

# ------------------------------------------------------------------ keystone-rs
# rs_prepare SIDE SCALE PORT [BIN SEED]: seed, start, measure ready-time and idle RSS, get tokens.
rs_prepare() {
  local side=$1 scale=$2 port=$3 dir=$RUN/$1
  local BIN=${4:-$BIN} SEED=${5:-$SEED} metrics=${6:-true}
  mkdir -p "$dir"
  local url=http://127.0.0.1:$port
  cat >"$dir/keystone.conf" <<EOF
# keystone-rs benchmark configuration ($scale scale): defaults except paths,
# the bind address, a token lifetime that outlasts the run, and no login rate limits
# (wrk sends every login from one address: the password workloads measure hashing).
[database]
connection = sqlite:///$dir/keystone.db
[fernet_tokens]
key_repository = $dir/fernet-keys
[token]
expiration = 86400
[server]
bind = 127.0.0.1:$port
[metrics]
enabled = $metrics
[rate_limit]
enabled = false
EOF
  log "[$side] seeding the $scale data set"
  "$SEED" --config-file "$dir/keystone.conf" --scale "$scale" --base-url "$url" --revoked-within 86400 \
    --tokens "$TOKENS" --tokens-out "$dir/tokens.txt" \
    --cold-tokens "$COLD_TOKENS" --cold-tokens-out "$dir/cold-tokens.txt" \
    --manifest "$dir/manifest.json" 2>&1 | sed "s/^/bench: [$side] /" >&2
  log "[$side] starting keystone-rs on $url"
  local out
  out=$("${BENCHCTL[@]}" spawn --url "$url/v3" --log "$dir/server.log" --cwd "$dir" \
    -- "$BIN" --config-file "$dir/keystone.conf" serve)
  local pid ready
  pid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' <<<"$out")
  PIDS+=("$pid")
  ready=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["ready_ms"])' <<<"$out")
  echo "$pid" >"$dir/pid"
  echo "$url" >"$dir/url"
  sleep 1
  record --side "$side" --workload ready-time --value "$ready" --unit ms
  record --side "$side" --workload idle-rss --value "$("${BENCHCTL[@]}" rss "$pid")" --unit MB
  rs_tokens "$side"
}

# Tokens every side needs, fetched through the API: the admin caller (project
# scoped), bench-user-0's project-scoped subject, and its unscoped token to rescope.
rs_tokens() {
  local side=$1 dir=$RUN/$1 url
  url=$(cat "$dir/url")
  "${BENCHCTL[@]}" token --url "$url" --user admin --password "$ADMIN_PASSWORD" --project admin >"$dir/admin.token"
  "${BENCHCTL[@]}" token --url "$url" --user bench-user-0 --password "$USER_PASSWORD" --project bench-project-0 >"$dir/subject.token"
  "${BENCHCTL[@]}" token --url "$url" --user bench-user-0 --password "$USER_PASSWORD" >"$dir/unscoped.token"
  # validate-trust: bench-user-1 impersonating bench-user-0 through a trust.
  "${BENCHCTL[@]}" trust-token --url "$url" --admin-token "$(cat "$dir/admin.token")" \
    --trustor bench-user-0 --password "$USER_PASSWORD" --project bench-project-0 --role bench-role-0 \
    --trustee bench-user-1 --trustee-password "$USER_PASSWORD" >"$dir/trust.token"
  # An application credential of bench-user-0 and a token issued with it.
  "${BENCHCTL[@]}" appcred --url "$url" --user bench-user-0 --password "$USER_PASSWORD" --project bench-project-0 >"$dir/appcred.json"
}

# ------------------------------------------------------------------ Python Keystone
py_prepare() {
  local side=py dir=$RUN/py port=$((PORT + 1))
  local url=http://127.0.0.1:$port
  mkdir -p "$dir/fernet-keys" "$dir/credential-keys"
  if ! "$VENV/bin/python" -c 'import importlib.metadata as m, gunicorn; assert m.version("keystone") == "30.0.0"' >/dev/null 2>&1; then
    log "[py] installing $PY_PACKAGES into $VENV (pip, from the package index)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --upgrade pip >/dev/null
    "$VENV/bin/pip" install -q $PY_PACKAGES
  fi
  cat >"$dir/keystone.conf" <<EOF
# Python Keystone 30 benchmark configuration: SQLite, in-process cache enabled.
[DEFAULT]
debug = false
[database]
connection = sqlite:///$dir/keystone.db
[fernet_tokens]
key_repository = $dir/fernet-keys
[fernet_receipts]
key_repository = $dir/fernet-keys
[credential]
key_repository = $dir/credential-keys
[token]
expiration = 86400
caching = true
[cache]
enabled = true
backend = dogpile.cache.memory
EOF
  local km=("$VENV/bin/keystone-manage" --config-file "$dir/keystone.conf")
  log "[py] keystone-manage db_sync, fernet_setup, credential_setup, bootstrap"
  {
    "${km[@]}" db_sync
    "${km[@]}" fernet_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    "${km[@]}" credential_setup --keystone-user "$(id -un)" --keystone-group "$(id -gn)"
    "${km[@]}" bootstrap --bootstrap-password "$ADMIN_PASSWORD" \
      --bootstrap-region-id RegionOne \
      --bootstrap-admin-url "$url/v3" --bootstrap-public-url "$url/v3" \
      --bootstrap-internal-url "$url/v3"
  } >>"$dir/manage.log" 2>&1
  log "[py] seeding the data set in process through Keystone's managers"
  "$VENV/bin/python" "$ROOT/bench/python/seed_keystone.py" "$dir/keystone.conf" 1000 100 \
    "$TOKENS" "$dir/tokens.txt" "$PY_COLD_TOKENS" "$dir/cold-tokens.txt" 2>"$dir/seed.log" || {
    tail -20 "$dir/seed.log" >&2; exit 1; }
  grep '^seed:' "$dir/seed.log" | sed 's/^/bench: [py] /' >&2

  local gun=("$VENV/bin/gunicorn" --workers 2 --bind "127.0.0.1:$port" --timeout 300
    --backlog 2048 --chdir "$ROOT/bench/python" ks_wsgi:application)
  local env=(--env "OS_KEYSTONE_CONFIG_FILES=$dir/keystone.conf")
  local out pid
  log "[py] starting Python Keystone (gunicorn, 2 sync workers) on $url"
  out=$("${BENCHCTL[@]}" spawn --url "$url/v3" --log "$dir/server.log" --cwd "$dir" "${env[@]}" -- "${gun[@]}")
  pid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' <<<"$out")
  PIDS+=("$pid")
  local ready
  ready=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["ready_ms"])' <<<"$out")
  echo "$pid" >"$dir/pid"
  echo "$url" >"$dir/url"
  sleep 1
  record --side py --workload ready-time --value "$ready" --unit ms
  record --side py --workload idle-rss --value "$("${BENCHCTL[@]}" rss "$pid")" --unit MB
  echo '{"users": 1000, "projects": 100, "revocation_events": 0}' >"$dir/manifest.json"
  rs_tokens py
}

# ------------------------------------------------------------------ workloads
# wrk_run SIDE WORKLOAD CONC SCRIPT PATH [DURATION] [OUT]
wrk_run() {
  local side=$1 wl=$2 conc=$3 script=$4 path=$5 dur=${6:-$DURATION} dir=$RUN/$1
  local out=${7:-$RUN/wrk-$side-$wl.txt}
  local t=$THREADS
  ((conc < t)) && t=$conc
  BENCH_ADMIN_TOKEN=$(cat "$dir/admin.token") \
  BENCH_SUBJECT_TOKEN=$(cat "$dir/subject.token") \
  BENCH_UNSCOPED_TOKEN=$(cat "$dir/unscoped.token") \
  BENCH_TRUST_TOKEN=$(cat "$dir/trust.token" 2>/dev/null || true) \
  BENCH_APPCRED_JSON=$(cat "$dir/appcred.json") \
  BENCH_TOKENS_FILE=$dir/tokens.txt \
  BENCH_COLD_TOKENS_FILE=$dir/cold-tokens.txt \
  BENCH_PASSWORD_USERS=$PASSWORD_USERS \
  BENCH_PROJECTS=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("projects", 100))' "$dir/manifest.json" 2>/dev/null || echo 100) \
  BENCH_USER_PASSWORD=$USER_PASSWORD \
  BENCH_WRK_THREADS=$t \
    wrk -t"$t" -c"$conc" -d"${dur}s" --timeout 30s --latency -s "$BENCH_LUA_DIR/$script" \
      "$(cat "$dir/url")$path" >"$out"
}

measure() { # SIDE WORKLOAD CONC SCRIPT PATH WARMUP(0|1)
  local side=$1 wl=$2 conc=$3 script=$4 path=$5 warm=$6
  if [[ $warm == 1 && $WARMUP != 0 ]]; then
    wrk_run "$side" "$wl" "$conc" "$script" "$path" "$WARMUP" "$RUN/warmup-$side-$wl.txt"
  fi
  wrk_run "$side" "$wl" "$conc" "$script" "$path"
  record --side "$side" --workload "$wl" --conc "$conc" --wrk-output "$RUN/wrk-$side-$wl.txt" \
    --rss-pid "$(cat "$RUN/$side/pid")"
}

mixed() { # SIDE: validate-hot at c=64 while 32 password logins run
  local side=$1
  wrk_run "$side" mixed-logins/password 32 password.lua /v3/auth/tokens $((DURATION + 2)) "$RUN/wrk-$side-mixed-password.txt" &
  local bg=$!
  sleep 1
  wrk_run "$side" mixed-logins 64 validate.lua /v3/auth/tokens "$DURATION" "$RUN/wrk-$side-mixed-validate.txt"
  wait "$bg"
  record --side "$side" --workload mixed-logins --conc 64 --wrk-output "$RUN/wrk-$side-mixed-validate.txt"
  record --side "$side" --workload mixed-logins/password --conc 32 --wrk-output "$RUN/wrk-$side-mixed-password.txt" \
    --rss-pid "$(cat "$RUN/$side/pid")"
}

# ------------------------------------------------------------------ run
SIDES=()
if [[ $SCALE == large ]]; then
  rs_prepare base default $((PORT + 2))
  SIDES+=(base)
fi
rs_prepare rs "$SCALE" "$PORT"
SIDES+=(rs)
if [[ -n $BASELINE ]]; then
  rs_prepare before "$SCALE" $((PORT + 3)) "$BASE_BIN" "$BASE_SEED"
  SIDES+=(before)
fi
if [[ $PYTHON_SIDE == 1 ]]; then
  py_prepare
  SIDES+=(py)
fi
# The same tree with metrics off: validate-hot only, to price the metrics.
HOT_SIDES=("${SIDES[@]}")
if [[ ${BENCH_METRICS_OFF:-1} == 1 ]]; then
  rs_prepare nometrics "$SCALE" $((PORT + 4)) "$BIN" "$SEED" false
  HOT_SIDES+=(nometrics)
fi

for side in "${HOT_SIDES[@]}"; do
  url=$(cat "$RUN/$side/url")
  code=$(curl -s -o /dev/null --max-time 30 -w '%{http_code}' -H "X-Auth-Token: $(cat "$RUN/$side/admin.token")" \
    -H "X-Subject-Token: $(head -1 "$RUN/$side/tokens.txt")" "$url/v3/auth/tokens")
  if [[ $code != 200 ]]; then
    log "[$side] a pre-minted subject token does not validate (HTTP $code): giving up"; exit 1
  fi
done

log "workloads: ${DURATION}s each (+${WARMUP}s warm-up where marked), sides: ${SIDES[*]}"
# Interleaved: each workload runs on every side before the next, so a change in the
# machine's background load hits the compared figures alike.
for side in "${SIDES[@]}"; do measure "$side" discovery 64 get.lua /v3 1; done
for side in "${HOT_SIDES[@]}"; do measure "$side" validate-hot 64 validate.lua /v3/auth/tokens 1; done
for side in "${SIDES[@]}"; do measure "$side" validate-trust 64 validate_trust.lua /v3/auth/tokens 1; done
for side in "${SIDES[@]}"; do measure "$side" validate-appcred 64 validate_appcred.lua /v3/auth/tokens 1; done
for side in "${SIDES[@]}"; do measure "$side" validate-many 64 validate_many.lua /v3/auth/tokens 0; done
for side in "${SIDES[@]}"; do measure "$side" validate-cold 64 validate_cold.lua /v3/auth/tokens 0; done
for side in "${SIDES[@]}"; do measure "$side" validate-nocatalog 64 validate.lua '/v3/auth/tokens?nocatalog' 1; done
for side in "${SIDES[@]}"; do measure "$side" rescope 16 rescope.lua /v3/auth/tokens 1; done
for side in "${SIDES[@]}"; do measure "$side" password 16 password.lua /v3/auth/tokens 0; done
for side in "${SIDES[@]}"; do measure "$side" appcred-login 16 appcred_login.lua /v3/auth/tokens 0; done
for side in "${SIDES[@]}"; do mixed "$side"; done

# Revocation, on each keystone-rs whose table is still empty: validate-hot again
# right now (the baseline), then with 100,000 events revoked over the last day (the
# steady state of a busy cloud), then with 100,000 more revoked this very second (a
# burst: the refresh re-reads the last 60 s of events every second, for a minute).
for side in "${SIDES[@]}"; do
  [[ $side == py || $side == before ]] && continue
  seeded=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["revocation_events"])' "$RUN/$side/manifest.json")
  [[ $seeded != 0 ]] && continue
  measure "$side" "validate-hot@0-events" 64 validate.lua /v3/auth/tokens 1
  log "[$side] adding $REVOKE_EXTRA revocation events (revoked over the last day) to the running server"
  "$SEED" --config-file "$RUN/$side/keystone.conf" --add-revocation-events "$REVOKE_EXTRA" \
    --revoked-within 86400 2>&1 | sed "s/^/bench: [$side] /" >&2
  sleep 3
  measure "$side" "validate-hot@100k-events" 64 validate.lua /v3/auth/tokens 1
  log "[$side] adding $REVOKE_EXTRA more revocation events, all revoked now"
  "$SEED" --config-file "$RUN/$side/keystone.conf" --add-revocation-events "$REVOKE_EXTRA" \
    --revoked-within 0 2>&1 | sed "s/^/bench: [$side] /" >&2
  sleep 2
  measure "$side" "validate-hot@100k-burst" 64 validate.lua /v3/auth/tokens 0
done

for side in "${SIDES[@]}"; do
  record --side "$side" --workload rss-after-load --value "$("${BENCHCTL[@]}" rss "$(cat "$RUN/$side/pid")")" --unit MB
done

# ------------------------------------------------------------------ report
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git status --porcelain -- src Cargo.toml Cargo.lock migrations 2>/dev/null | head -1)
[[ -n $dirty ]] && commit="$commit+dirty"
meta date "$DATE $(date -u +%H:%M) UTC"
meta scale "$SCALE"
if [[ $SCALE == large ]]; then
  meta dataset "100,000 users, 10,000 projects, 10 roles (implied chain), 20 endpoints, 100,000 revocation events revoked over the last day; default-scale base: 1,000 users, 100 projects, no revocation events until its validate-hot@ rows"
else
  meta dataset "1,000 users, 100 projects, 10 roles (implied chain), 20 endpoints, no revocation events until the validate-hot@ rows"
fi
meta machine "$MACHINE, load average at end $(cut -d' ' -f1 /proc/loadavg)"
meta params "wrk $(wrk -v 2>&1 | head -1 | awk '{print $2}'), -t$THREADS (-t1 for c<2), ${DURATION}s per workload, ${WARMUP}s warm-up for discovery/validate-hot/validate-nocatalog/rescope, --timeout 30s; $TOKENS tokens for validate-many, up to $COLD_TOKENS for validate-cold; password logins rotate over $PASSWORD_USERS users"
meta commit "$commit"
[[ -n $BASELINE ]] && meta before_commit "$BASE_REV"
meta rs_server "release build, default [server] settings (actix workers = cores, SQLite pool 8, concurrent argon2id hashes = cores on threads at nice 10), [token] caching default"
if [[ $PYTHON_SIDE == 1 ]]; then
  meta py_server "keystone 30.0.0 under gunicorn 27.0.1 (2 sync workers), SQLite, [cache] enabled with dogpile.cache.memory, [token] caching = true, password hashes bcrypt (Keystone's default)"
fi
notes=(
  "Every subject token of validate-many and validate-cold was pre-minted offline by the server's own token code (keystone-rs: TokenProvider::issue in examples/bench_seed.rs; Keystone: TokenFormatter in bench/python/seed_keystone.py), byte for byte what a password login scoped to the user's project returns."
  "validate-many rotates 10,000 tokens: after its first pass they are all in a token-keyed cache (keystone-rs: 128 MiB, about 30,000 tokens, with users, projects, roles and catalogs cached separately; Keystone: unbounded dogpile memory), so it measures a large hot set. validate-cold sends every token once and is the cache-miss path."
  "keystone-rs hashes passwords with argon2id (m=19 MiB, t=2, p=1, OWASP); Keystone with bcrypt at its default cost 12."
)
if [[ $PYTHON_SIDE == 1 ]]; then
  notes+=("Keystone runs 2 gunicorn sync workers, one request at a time each; validate-cold against it uses at most 5,000 tokens (more than it validates in a run).")
fi
if [[ $SCALE == large ]]; then
  notes+=("Python Keystone is not run at large scale.")
fi
if [[ $PYTHON_SIDE == 1 ]] && grep -q 'database is locked' "$RUN/py/server.log"; then
  notes+=("Keystone answered HTTP 500 (sqlite3 'database is locked') $(grep -c 'database is locked' "$RUN/py/server.log") time(s): it writes during password authentication and its two worker processes contend for SQLite's single writer.")
fi
meta notes --json "$(python3 -c 'import json,sys; print(json.dumps(sys.argv[1:]))' "${notes[@]}")"
mkdir -p "$ROOT/bench/results"
suffix=""
[[ $SCALE == large ]] && suffix="-large"
OUT=$ROOT/bench/results/$DATE$suffix.md
"${BENCHCTL[@]}" report --results "$RESULTS" --out "$OUT"
cp "$RESULTS" "$ROOT/bench/results/$DATE$suffix.jsonl"
log "results written to ${OUT#$ROOT/} (raw figures: ${OUT%.md}.jsonl; wrk output under ${RUN#$ROOT/})"
