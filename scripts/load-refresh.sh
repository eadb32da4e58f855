#!/usr/bin/env bash
# Load test of refresh-token rotation through the gateway: `POST /api/auth/refresh` at 64
# connections, one per wrk thread (`-t64 -c64`), each thread chaining its own family (every request
# presents the token the previous answer carried; scripts/refresh.lua). Auth + settings + gateway
# as three processes on PostgreSQL, loopback only. Prints wrk's requests/s, latency percentiles and
# the count of refused answers (any refusal would break a chain, so it must be 0).
#
#   cargo build --release && scripts/load-refresh.sh             # 15 s
#   DURATION=30s CONNECTIONS=64 POSTGRES_URL=postgres://postgres@127.0.0.1:5432 scripts/load-refresh.sh
#
# Needs: wrk (apt-get install wrk), psql, curl, python3. Creates and drops its own database.
set -euo pipefail

DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-64}
BIN=${LATCHKEY_BIN:-target/release/latchkey}
POSTGRES_URL=${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432}
HERE=$(cd "$(dirname "$0")" && pwd)
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install -y wrk" >&2; exit 2; }
[[ -x "$BIN" ]] || { echo "$BIN is missing: cargo build --release" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
AUTH_PORT=$(free_port); SETTINGS_PORT=$(free_port); GATEWAY_PORT=$(free_port)
DB="lk_refresh_$$_$RANDOM"
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
# The refresh route shares the sync/token rate limit; 0 lifts it for the benchmark.
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

curl -fs -X POST "$BASE/api/auth/sync-user" -H "X-Latchkey-Sync-Secret: $LATCHKEY_SYNC_SECRET" \
  -H 'content-type: application/json' -d '{"provider":"load","subject":"refresh-1","email":"refresh@example.com"}' >/dev/null
export REFRESH_TOKENS="$WORK/tokens"
for _ in $(seq "$CONNECTIONS"); do
  curl -fs -X POST "$BASE/api/auth/token" -H "X-Latchkey-Sync-Secret: $LATCHKEY_SYNC_SECRET" \
    -H 'content-type: application/json' -d '{"email":"refresh@example.com","refresh":true}' \
    | python3 -c 'import sys,json; print(json.load(sys.stdin)["refresh_token"])'
done >"$REFRESH_TOKENS"
echo "families started: $(wc -l <"$REFRESH_TOKENS")"

echo "== POST /api/auth/refresh, $CONNECTIONS connections (one family each), $DURATION (PostgreSQL, loopback) =="
wrk -t"$CONNECTIONS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$HERE/refresh.lua" "$BASE" \
  | grep -E 'Requests/sec|Latency|50%|75%|90%|99%|Non-2xx|Socket errors|requests in|refused'
echo "rows in refresh_tokens: $(psql "$POSTGRES_URL/$DB" -tAc 'SELECT count(*) FROM refresh_tokens')"

echo "== resident memory after the run =="
for pair in "auth:$AUTH_PID" "settings:$SETTINGS_PID" "gateway:$GATEWAY_PID"; do
  name=${pair%%:*}; pid=${pair##*:}
  echo "$name: $(( $(ps -o rss= -p "$pid") / 1024 )) MiB RSS"
done
