#!/usr/bin/env bash
# Load test of the gateway: `GET /api/settings` with a valid token, at 32 and 128 connections,
# loopback only, against auth + settings + gateway as three separate processes on PostgreSQL.
# Prints wrk's requests/s and latency percentiles, and each process's resident memory after.
#
#   cargo build --release && scripts/load-gateway.sh            # 15 s per run
#   DURATION=30s CONNECTIONS="1 32 128" POSTGRES_URL=postgres://postgres@127.0.0.1:5432 scripts/load-gateway.sh
#
# Needs: wrk (apt-get install wrk), psql, curl, python3. Creates and drops its own database.
set -euo pipefail

DURATION=${DURATION:-15s}
BIN=${LATCHKEY_BIN:-target/release/latchkey}
POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
SETTINGS_COUNT=${SETTINGS_COUNT:-10}
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }
[[ -x "$BIN" ]] || { echo "$BIN is missing: cargo build --release" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AUTH_PORT=$(free_port); SETTINGS_PORT=$(free_port); GATEWAY_PORT=$(free_port)
DB="lk_load_$$_$RANDOM"
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  psql "$POSTGRES_URL/postgres" -qc "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

psql "$POSTGRES_URL/postgres" -qc "CREATE DATABASE $DB" >/dev/null
export LATCHKEY_DATABASE_URL="$POSTGRES_URL/$DB"
export LATCHKEY_SYNC_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
export LATCHKEY_SEAL_KEY=$(python3 -c 'import secrets,base64; print(base64.b64encode(secrets.token_bytes(32)).decode())')
export LATCHKEY_ENCRYPTION_KEYS="k1:$(python3 -c 'import secrets,base64; print(base64.b64encode(secrets.token_bytes(32)).decode())')"
export LATCHKEY_AUTH_LISTEN=127.0.0.1:$AUTH_PORT LATCHKEY_SETTINGS_LISTEN=127.0.0.1:$SETTINGS_PORT
export LATCHKEY_GATEWAY_LISTEN=127.0.0.1:$GATEWAY_PORT
export LATCHKEY_AUTH_URL=http://127.0.0.1:$AUTH_PORT LATCHKEY_SETTINGS_URL=http://127.0.0.1:$SETTINGS_PORT
export LATCHKEY_SYNC_RATE_PER_MINUTE=0 RUST_LOG=${RUST_LOG:-warn}

"$BIN" auth >"$WORK/auth.log" 2>&1 & AUTH_PID=$!; PIDS+=("$AUTH_PID")
"$BIN" settings >"$WORK/settings.log" 2>&1 & SETTINGS_PID=$!; PIDS+=("$SETTINGS_PID")
"$BIN" gateway >"$WORK/gateway.log" 2>&1 & GATEWAY_PID=$!; PIDS+=("$GATEWAY_PID")
BASE=http://127.0.0.1:$GATEWAY_PORT
for _ in $(seq 100); do
  curl -fs "$BASE/readyz" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "$BASE/readyz" >/dev/null || { tail -5 "$WORK"/*.log; echo "stack did not become ready" >&2; exit 1; }

TOKEN=$(curl -fs -X POST "$BASE/api/auth/sync-user" -H "X-Latchkey-Sync-Secret: $LATCHKEY_SYNC_SECRET" \
  -H 'content-type: application/json' -d '{"provider":"load","subject":"load-1","email":"load@example.com"}' \
  | python3 -c 'import sys,json; print(json.load(sys.stdin)["access_token"])')
BODY=$(python3 -c "import json; print(json.dumps({'settings': {f'KEY_{i}': 'value-%032d' % i for i in range($SETTINGS_COUNT)}}))")
curl -fs -X PATCH "$BASE/api/settings" -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' -d "$BODY" >/dev/null
curl -fs "$BASE/api/settings" -H "Authorization: Bearer $TOKEN" | python3 -c 'import sys,json; print("settings listed per request:", len(json.load(sys.stdin)["settings"]))'

for connections in ${CONNECTIONS:-32 128}; do
  echo "== GET /api/settings, $connections connections, $DURATION (PostgreSQL, loopback) =="
  threads=$(( connections < 2 ? 1 : 2 ))
  wrk -t"$threads" -c"$connections" -d"$DURATION" --latency -H "Authorization: Bearer $TOKEN" "$BASE/api/settings" \
    | grep -E 'Requests/sec|Latency|50%|75%|90%|99%|Non-2xx|Socket errors|requests in'
done

echo "== resident memory after the runs =="
for pair in "auth:$AUTH_PID" "settings:$SETTINGS_PID" "gateway:$GATEWAY_PID"; do
  name=${pair%%:*}; pid=${pair##*:}
  echo "$name: $(( $(ps -o rss= -p "$pid") / 1024 )) MiB RSS"
done
