#!/usr/bin/env bash
# Interop check, run by tests/e2e/outside_clients.rs (packages: tests/interop/requirements.txt): start the real `latchkey auth` binary and drive it with a stock
# gRPC client (Python grpcio, protos from server reflection) and a standard JWT library (PyJWT).
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'kill "${pid:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export LATCHKEY_SYNC_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
export LATCHKEY_SEAL_KEY=$(python3 -c 'import secrets,base64; print(base64.b64encode(secrets.token_bytes(32)).decode())')
export LATCHKEY_AUTH_LISTEN=127.0.0.1:$port
export LATCHKEY_DATABASE_URL="sqlite://$work/latchkey.db?mode=rwc"
binary=${LATCHKEY_BIN:-target/debug/latchkey}
"$binary" auth >"$work/auth.log" 2>&1 &
pid=$!
for _ in $(seq 1 50); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null && break
  sleep 0.2
done
python3 tests/interop/stock_client.py "127.0.0.1:$port" "$LATCHKEY_SYNC_SECRET"
if grep -qF "$LATCHKEY_SYNC_SECRET" "$work/auth.log"; then echo "sync secret found in auth's log" >&2; exit 1; fi
echo "interop: ok"
