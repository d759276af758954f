#!/usr/bin/env bash
# Profiles validate-hot (or the miss path) once under callgrind: the release binary (built with
# debug = 1, so symbols resolve), the default data set, instrumentation switched
# on only around BENCH_PROFILE_REQUESTS requests (not startup, not
# the argon2 logins that fetch the tokens). Prints callgrind_annotate's top
# functions by own cost and by inclusive cost; the raw file stays in bench/work/.
#
#   bash bench/profile.sh            # 500 requests, 4 connections
#   BENCH_PROFILE_TARGET=validate-cold bash bench/profile.sh   # the miss path:
#                                    # every request a subject never seen before
#   BENCH_PROFILE_TARGET=rescope bash bench/profile.sh         # token -> project
#   BENCH_PROFILE_METRICS=false bash bench/profile.sh          # with [metrics] off, to price them
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
REQUESTS=${BENCH_PROFILE_REQUESTS:-500}
TARGET=${BENCH_PROFILE_TARGET:-validate-hot}
case "$TARGET" in
  validate-hot | validate-cold | rescope) ;;
  *) echo "profile: BENCH_PROFILE_TARGET must be validate-hot, validate-cold or rescope" >&2; exit 2 ;;
esac
PORT=${BENCH_PORT:-15370}
URL=http://127.0.0.1:$PORT
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=$CARGO_TARGET_DIR/release/keystone-rs
SEED=$CARGO_TARGET_DIR/release/examples/bench_seed
BENCHCTL=(python3 "$ROOT/bench/tools/benchctl.py")
DIR=$ROOT/bench/work/profile-$(date -u +%Y%m%d-%H%M%S)

command -v valgrind >/dev/null || { echo "profile: valgrind is missing (apt-get install valgrind)" >&2; exit 1; }
# BENCH_SKIP_BUILD=1 profiles binaries already in $CARGO_TARGET_DIR (e.g. a saved
# baseline, to compare two builds instruction for instruction).
[ "${BENCH_SKIP_BUILD:-0}" = 1 ] || cargo build --release --quiet --bin keystone-rs --example bench_seed
mkdir -p "$DIR"
cat >"$DIR/keystone.conf" <<EOF
[database]
connection = sqlite:///$DIR/keystone.db
[fernet_tokens]
key_repository = $DIR/fernet-keys
[token]
expiration = 86400
[server]
bind = 127.0.0.1:$PORT
[metrics]
enabled = ${BENCH_PROFILE_METRICS:-true}
EOF
"$SEED" --config-file "$DIR/keystone.conf" --scale default --base-url "$URL" \
  --cold-tokens "$REQUESTS" --cold-tokens-out "$DIR/cold-tokens.txt" >&2

OUT=$DIR/callgrind.out
out=$("${BENCHCTL[@]}" spawn --timeout 300 --url "$URL/v3" --log "$DIR/server.log" --cwd "$DIR" -- \
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT" \
  "$BIN" --config-file "$DIR/keystone.conf" serve)
pid=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' <<<"$out")
trap 'kill -TERM -- "-$pid" 2>/dev/null || true' EXIT
admin=$("${BENCHCTL[@]}" token --url "$URL" --user admin --password bench-admin-password --project admin)
subject=$("${BENCHCTL[@]}" token --url "$URL" --user bench-user-0 --password bench-password --project bench-project-0)
# One validation before instrumentation, so the cache is warm as in validate-hot.
curl -s -o /dev/null --max-time 60 -H "X-Auth-Token: $admin" -H "X-Subject-Token: $subject" "$URL/v3/auth/tokens"

if [ "$TARGET" = rescope ]; then
  unscoped=$("${BENCHCTL[@]}" token --url "$URL" --user bench-user-0 --password bench-password)
  body='{"auth":{"identity":{"methods":["token"],"token":{"id":"'$unscoped'"}},"scope":{"project":{"name":"bench-project-0","domain":{"id":"default"}}}}}'
  # One rescope before instrumentation, as wrk's warm-up does.
  curl -s -o /dev/null --max-time 60 -H 'Content-Type: application/json' -d "$body" "$URL/v3/auth/tokens"
fi
callgrind_control --instr=on "$pid" >/dev/null
if [ "$TARGET" = rescope ]; then
  seq "$REQUESTS" | xargs -P 4 -I{} curl -s -o /dev/null --max-time 60 -w '%{http_code}\n' \
    -H 'Content-Type: application/json' -d "$body" "$URL/v3/auth/tokens" | sort | uniq -c >&2
elif [ "$TARGET" = validate-hot ]; then
  seq "$REQUESTS" | xargs -P 4 -I{} curl -s -o /dev/null --max-time 60 -w '%{http_code}\n' \
    -H "X-Auth-Token: $admin" -H "X-Subject-Token: $subject" "$URL/v3/auth/tokens" | sort | uniq -c >&2
else
  xargs -P 4 -I{} curl -s -o /dev/null --max-time 60 -w '%{http_code}\n' \
    -H "X-Auth-Token: $admin" -H "X-Subject-Token: {}" "$URL/v3/auth/tokens" <"$DIR/cold-tokens.txt" | sort | uniq -c >&2
fi
callgrind_control --instr=off "$pid" >/dev/null
kill -TERM -- "-$pid"
while kill -0 "$pid" 2>/dev/null; do sleep 0.5; done
trap - EXIT

echo "== $REQUESTS $TARGET requests under callgrind: top functions by own (exclusive) cost"
callgrind_annotate "$OUT"* 2>/dev/null | sed -n '1,60p'
echo
echo "== by inclusive cost"
callgrind_annotate --inclusive=yes "$OUT"* 2>/dev/null | sed -n '1,70p'
echo "raw profile: ${OUT#$ROOT/}*"
