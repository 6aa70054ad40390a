#!/usr/bin/env bash
# Smoke-test the topology run.sh started, from the outside, the way a client and an operator
# would. Prints one line per check; exits non-zero if any failed.
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE=${SHOPKEEPER_LOCAL_DIR:-$REPO/var/local-deploy}
HTTP_PORT=${SHOPKEEPER_LOCAL_HTTP_PORT:-8088}
APP_PORT=${SHOPKEEPER_LOCAL_APP_PORT:-8101}
PROMETHEUS_PORT=${SHOPKEEPER_LOCAL_PROMETHEUS_PORT:-9099}
EDGE_SYSLOG_PORT=${SHOPKEEPER_LOCAL_EDGE_SYSLOG_PORT:-1514}
PYTHON=${SHOPKEEPER_PYTHON:-$REPO/.venv/bin/python}
EDGE=http://127.0.0.1:$HTTP_PORT
failures=0

check() {  # description, then a command that succeeds when the check passes
  local what=$1
  shift
  if "$@"; then echo "PASS  $what"; else echo "FAIL  $what"; failures=$((failures + 1)); fi
}
status_of() { curl -s -o /dev/null -w '%{http_code}' "$@"; }
json_field() { "$PYTHON" -c "import json,sys; print(json.load(sys.stdin)$1)"; }

check "GET /health/live through nginx is 200" test "$(status_of "$EDGE/health/live")" = 200
ready=$(curl -s "$EDGE/health/ready")
check "GET /health/ready through nginx is 200 ($ready)" test "$(status_of "$EDGE/health/ready")" = 200

email="smoke-$(date +%s)-$RANDOM@example.com"
register=$(curl -s -w '\n%{http_code}' -H 'Content-Type: application/json' \
  -d "{\"email\": \"$email\", \"password\": \"smoke-test-pass-1\"}" "$EDGE/api/v1/auth/register")
check "POST /api/v1/auth/register through nginx is 201" test "$(tail -n1 <<<"$register")" = 201
token=$(curl -s -d "username=$email" -d "password=smoke-test-pass-1" "$EDGE/api/v1/auth/token" | json_field "['access_token']" 2>/dev/null)
check "POST /api/v1/auth/token through nginx issues a token" test -n "$token"
me=$(curl -s -H "Authorization: Bearer $token" "$EDGE/api/v1/users/me" | json_field "['email']" 2>/dev/null)
check "GET /api/v1/users/me answers for the new user" test "$me" = "$email"

check "the request id the client sends comes back" \
  bash -c "curl -s -D - -o /dev/null -H 'X-Request-ID: smoke-check-42' '$EDGE/health/live' | grep -qi '^x-request-id: smoke-check-42'"
check "nginx makes a request id when the client sends none" \
  bash -c "curl -s -D - -o /dev/null '$EDGE/health/live' | grep -qiE '^x-request-id: [0-9a-f]{32}'"
check "/metrics is not served through nginx (404)" test "$(status_of "$EDGE/metrics")" = 404
check "/metrics/ is not served through nginx either (404)" test "$(status_of "$EDGE/metrics/")" = 404
check "/metrics answers on the private port" \
  bash -c "curl -s 'http://127.0.0.1:$APP_PORT/metrics' | grep -q 'shopkeeper_http_requests_total{method=\"POST\",route=\"/api/v1/auth/register\",status=\"201\"}'"
check "a body over 1 MiB is refused by nginx (413)" \
  test "$(head -c 1100000 /dev/zero | tr '\0' 'a' | status_of -H 'Content-Type: application/json' --data-binary @- "$EDGE/api/v1/auth/register")" = 413
check "JSON responses are gzipped for clients that accept it" \
  bash -c "curl -s -D - -o /dev/null -H 'Accept-Encoding: gzip' '$EDGE/openapi.json' | grep -qi '^content-encoding: gzip'"

# The client address must survive the proxy: connect from 127.0.0.2 while claiming to be
# 203.0.113.9 in X-Forwarded-For; the app must log 127.0.0.2 (nginx overwrote the header and
# gunicorn trusted nginx's), not 127.0.0.1 (nginx itself) and not the forged address.
curl -s -o /dev/null --interface 127.0.0.2 -H 'X-Forwarded-For: 203.0.113.9' \
  -d "username=nobody-$RANDOM@example.com" -d "password=wrong-password" "$EDGE/admin/login"
sleep 0.5
check "the app sees the real client address behind nginx (127.0.0.2)" \
  bash -c "tail -n 50 '$STATE/log/api.log' | grep 'admin_login_refused' | tail -n1 | grep -q '\"client\": \"127.0.0.2\"'"

# Straight to gunicorn from an address it does not trust: the forged header is ignored.
curl -s -o /dev/null --interface 127.0.0.2 -H 'X-Forwarded-For: 203.0.113.9' \
  -d "username=nobody-$RANDOM@example.com" -d "password=wrong-password" "http://127.0.0.1:$APP_PORT/admin/login"
sleep 0.5
check "a forged X-Forwarded-For from an untrusted peer is ignored" \
  bash -c "tail -n 50 '$STATE/log/api.log' | grep 'admin_login_refused' | tail -n1 | grep -q '\"client\": \"127.0.0.2\"'"

admin_email=$(grep '^SHOPKEEPER_ADMIN_EMAIL=' "$STATE/shopkeeper.env" | cut -d= -f2-)
admin_password=$(cat "$STATE/admin_password")
jar=$(mktemp)
check "the bootstrap staff user logs in to /admin through nginx" \
  test "$(status_of -c "$jar" --data-urlencode "username=$admin_email" --data-urlencode "password=$admin_password" "$EDGE/admin/login")" = 302
check "the admin login redirects to this host and port, not nginx's own port" \
  bash -c "curl -s -D - -o /dev/null --data-urlencode 'username=$admin_email' --data-urlencode 'password=$admin_password' '$EDGE/admin/login' | grep -qi '^location: $EDGE/admin/'"
check "admin pages link their assets through this host and port" \
  bash -c "curl -s -b '$jar' '$EDGE/admin/user/list' | grep -q 'href=\"$EDGE/admin/statics/css/'"
check "the admin user list shows the new customer" \
  bash -c "curl -s -b '$jar' '$EDGE/admin/user/list' | grep -q '$email'"
rm -f "$jar"

# A whole checkout through the edge: staff stocks a product, a customer orders it, the worker
# sends the confirmation mail from the OrderPlaced event via RabbitMQ.
staff_token=$(curl -s --data-urlencode "username=$admin_email" --data-urlencode "password=$admin_password" "$EDGE/api/v1/auth/token" | json_field "['access_token']" 2>/dev/null)
run_id=$(date +%s)$RANDOM
post() { curl -s -w '\n%{http_code}' -H 'Content-Type: application/json' "$@"; }
code_of() { tail -n1 <<<"$1"; }
body_of() { sed '$d' <<<"$1"; }
warehouse=$(post -H "Authorization: Bearer $staff_token" -d "{\"code\": \"W$run_id\", \"name\": \"Smoke $run_id\"}" "$EDGE/api/v1/warehouses")
product=$(post -H "Authorization: Bearer $staff_token" -d "{\"name\": \"Smoke lamp $run_id\", \"variants\": [{\"sku\": \"SMOKE-$run_id\", \"price\": {\"amount\": 2500, \"currency\": \"USD\"}}]}" "$EDGE/api/v1/products")
stock=$(post -X PUT -H "Authorization: Bearer $staff_token" -d '{"on_hand": 10}' "$EDGE/api/v1/stock/SMOKE-$run_id/W$run_id")
check "staff creates a warehouse, a product and its stock ($(code_of "$warehouse") $(code_of "$product") $(code_of "$stock"))" \
  test "$(code_of "$warehouse") $(code_of "$product") $(code_of "$stock")" = "201 201 200"
cart_id=$(post -X POST -H "Authorization: Bearer $token" "$EDGE/api/v1/carts" | sed '$d' | json_field "['id']" 2>/dev/null)
added=$(post -H "Authorization: Bearer $token" -d "{\"sku\": \"SMOKE-$run_id\", \"quantity\": 2}" "$EDGE/api/v1/carts/$cart_id/items")
confirmations() { grep -c '"template": "order_confirmation"' "$STATE/log/worker.log" 2>/dev/null || true; }
confirmations_before=$(confirmations)
order=$(post -H "Authorization: Bearer $token" -H "Idempotency-Key: smoke-$run_id" \
  -d "{\"cart_id\": \"$cart_id\", \"shipping_address\": {\"name\": \"Ada\", \"line1\": \"1 Engine Way\", \"city\": \"London\", \"postal_code\": \"N1\", \"country\": \"GB\"}}" \
  "$EDGE/api/v1/orders")
order_status=$(body_of "$order" | json_field "['status']" 2>/dev/null)
check "a customer's cart becomes an order, pending payment ($(code_of "$added") $(code_of "$order") $order_status)" \
  test "$(code_of "$added") $(code_of "$order") $order_status" = "200 201 pending_payment"
reserved=$(curl -s -H "Authorization: Bearer $staff_token" "$EDGE/api/v1/stock/SMOKE-$run_id" | json_field "['reserved']" 2>/dev/null)
check "the order reserved its stock (reserved $reserved)" test "$reserved" = 2
mailed=false
for _ in $(seq 1 60); do
  if (($(confirmations) > confirmations_before)); then
    mailed=true
    break
  fi
  sleep 0.5
done
check "the worker sent the order confirmation (OrderPlaced -> RabbitMQ -> worker)" $mailed

ws_result=$("$PYTHON" - "$HTTP_PORT" <<'PY' 2>&1
import asyncio, sys
import websockets

async def main() -> None:
    url = f"ws://127.0.0.1:{sys.argv[1]}/api/v1/ws/admin?token=not-a-token"
    try:
        async with websockets.connect(url, open_timeout=5) as socket:
            await asyncio.wait_for(socket.recv(), 5)
    except websockets.ConnectionClosed as closed:
        print(f"upgraded, closed {closed.rcvd.code if closed.rcvd else None}")
    except websockets.InvalidStatus as refused:
        print(f"refused {refused.response.status_code}")

asyncio.run(main())
PY
)
check "WebSocket upgrade passes nginx; a bad token is closed with 4401 ($ws_result)" \
  test "$ws_result" = "upgraded, closed 4401"

# Logs through the whole production path: a shipper's NDJSON through nginx -> a gateway ->
# the RabbitMQ stream -> `logs writer` -> the store; a tail session (WebSocket through nginx)
# sees the line; LogQL through nginx finds it; a syslog line through nginx's stream port too.
logs_key=$(post -H "Authorization: Bearer $staff_token" \
  -d "{\"name\": \"smoke $run_id\", \"scopes\": [\"logs:write\", \"logs:read\"], \"tenant\": \"default\"}" \
  "$EDGE/api/v1/keys" | head -n1 | json_field "['key']" 2>/dev/null)
check "an admin creates a logs key through nginx" test -n "$logs_key"
logs_result=$("$PYTHON" - "$HTTP_PORT" "$EDGE_SYSLOG_PORT" "$logs_key" "$run_id" <<'PY' 2>&1
import asyncio, json, socket, sys, time, urllib.parse
import httpx, websockets

port, syslog_port, key, run_id = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
edge = f"http://127.0.0.1:{port}/api/v1/logs"
auth = {"Authorization": f"Bearer {key}"}
word = f"smoke{run_id}"

async def found(client: httpx.AsyncClient, query: str) -> bool:
    for _ in range(60):
        answer = await client.get(f"{edge}/loki/api/v1/query_range", params={"query": query, "since": "10m"}, headers=auth)
        if answer.status_code == 200 and answer.json()["data"]["result"]:
            return True
        await asyncio.sleep(0.5)
    return False

async def main() -> None:
    results = []
    tail_url = f"ws://127.0.0.1:{port}/api/v1/logs/loki/api/v1/tail?" + urllib.parse.urlencode(
        {"query": f'{{service="smoke"}} |= "{word}"', "token": key})
    async with httpx.AsyncClient(timeout=10) as client, websockets.connect(tail_url, open_timeout=10) as tail:
        await asyncio.sleep(1)
        line = {"service": "smoke", "level": "info", "message": f"order placed {word}"}
        sent = await client.post(f"{edge}/ingest", content=json.dumps(line) + "\n", headers={**auth, "Content-Type": "application/x-ndjson"})
        results.append(f"ingest {sent.status_code // 100}xx")
        try:
            while True:
                frame = json.loads(await asyncio.wait_for(tail.recv(), 20))
                if any(word in value[1] for stream in frame.get("streams", []) for value in stream["values"]):
                    results.append("tail ok")
                    break
        except (asyncio.TimeoutError, websockets.ConnectionClosed) as exc:
            results.append(f"tail missed ({type(exc).__name__})")
        results.append("query ok" if await found(client, f'{{service="smoke"}} |= "{word}"') else "query missed")
        with socket.create_connection(("127.0.0.1", syslog_port), timeout=5) as conn:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            conn.sendall(f"<14>1 {stamp} web-1 smokeapp - - - syslog {word}\n".encode())
        results.append("syslog ok" if await found(client, f'{{service="smokeapp"}} |= "{word}"') else "syslog missed")
    print(", ".join(results))

asyncio.run(main())
PY
)
check "logs: NDJSON through nginx, the buffer and the writer; tail, query and syslog see it ($logs_result)" \
  test "$logs_result" = "ingest 2xx, tail ok, query ok, syslog ok"

# The crawl workers joined the frontier and beat: every one of them is listed alive.
crawl_workers=$(curl -s -H "Authorization: Bearer $staff_token" "$EDGE/api/v1/crawl/workers" |
  "$PYTHON" -c 'import json,sys; print(sum(w["state"] == "alive" for w in json.load(sys.stdin)))' 2>/dev/null)
expected_crawl_workers=$(ls "$STATE"/run/crawl-worker-*.pid 2>/dev/null | wc -l)
check "the crawl workers are alive ($crawl_workers of $expected_crawl_workers)" \
  test "${crawl_workers:-0}" = "$expected_crawl_workers"

sleep 6  # one scrape interval, so Prometheus has seen the traffic above
targets=$(curl -s "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/targets")
check "Prometheus scrapes the API target and finds it up" \
  bash -c "$PYTHON -c 'import json,sys; t=json.load(sys.stdin)[\"data\"][\"activeTargets\"]; sys.exit(not any(x[\"labels\"][\"job\"]==\"shopkeeper-api\" and x[\"health\"]==\"up\" for x in t))' <<<'$targets'"
orders_counted=$(curl -s "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/query" \
  --data-urlencode 'query=sum(shopkeeper_orders_created_total)' | json_field "['data']['result'][0]['value'][1]" 2>/dev/null)
check "Prometheus counts the order (shopkeeper_orders_created_total ${orders_counted:-none})" \
  test "${orders_counted:-0}" != 0
check "Prometheus scrapes the crawl workers and finds them up" \
  bash -c "$PYTHON -c 'import json,sys; t=json.load(sys.stdin)[\"data\"][\"activeTargets\"]; c=[x for x in t if x[\"labels\"][\"job\"]==\"shopkeeper-crawl-worker\"]; sys.exit(not c or any(x[\"health\"]!=\"up\" for x in c))' <<<'$targets'"
stored=$(curl -s "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/query" \
  --data-urlencode 'query=sum(shopkeeper_logs_lines_stored_total)' | json_field "['data']['result'][0]['value'][1]" 2>/dev/null)
check "Prometheus sees the log writer store lines (shopkeeper_logs_lines_stored_total ${stored:-none})" \
  test "${stored:-0}" != 0
series=$(curl -s "http://127.0.0.1:$PROMETHEUS_PORT/api/v1/query" \
  --data-urlencode 'query=sum(shopkeeper_http_requests_total{route="/api/v1/auth/register"})' | json_field "['data']['result'][0]['value'][1]" 2>/dev/null)
check "Prometheus has the request counter for /api/v1/auth/register (value ${series:-none})" test -n "$series"

echo "$failures failed"
exit $((failures > 0))
