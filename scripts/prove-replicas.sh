#!/usr/bin/env bash
# Runs the multi-replica proof (tests/replicas.rs) against your PostgreSQL: three
# `keystone-rs serve` replicas with keys in the database and auto-rotation every 2 s,
# a fourth joining mid-run, the rotating replica killed, another paused past the
# liveness limit; prints the counts and fails on any failed validation.
#
#   scripts/prove-replicas.sh [postgres://user@host:5432/db] [seconds]
#
# The role needs CREATE DATABASE (a scratch database is created and dropped).
set -euo pipefail
cd "$(dirname "$0")/.."
export KEYSTONE_TEST_POSTGRES_URL="${1:-${KEYSTONE_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}"
export KEYSTONE_PROOF_SECONDS="${2:-${KEYSTONE_PROOF_SECONDS:-60}}"
exec cargo test --test replicas -- --nocapture
