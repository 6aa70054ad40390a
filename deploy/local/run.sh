#!/usr/bin/env bash
# The production topology on one Debian machine, without Docker:
#   nginx (127.0.0.1:HTTP_PORT) -> `shopkeeper serve --workers N` (gunicorn + uvicorn workers)
#   `shopkeeper worker` and `shopkeeper scheduler` (when this version has them) on RabbitMQ,
#   `shopkeeper crawl worker` x SHOPKEEPER_LOCAL_CRAWL_WORKERS on the Redis (or SQL) frontier,
#   logs: `logs chdb-server` (owns chDB) <- `logs writer` <- RabbitMQ stream <- gateways, syslog,
#   PostgreSQL (migrated first), Redis when one answers, Prometheus scraping the API.
# Idempotent: run it again to re-render configs and reload nginx/Prometheus; processes already
# running are left alone (deploy/local/stop.sh, then run.sh, restarts them).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE=${SHOPKEEPER_LOCAL_DIR:-$REPO/var/local-deploy}
HTTP_PORT=${SHOPKEEPER_LOCAL_HTTP_PORT:-8088}
APP_PORT=${SHOPKEEPER_LOCAL_APP_PORT:-8101}
PROMETHEUS_PORT=${SHOPKEEPER_LOCAL_PROMETHEUS_PORT:-9099}
CHDB_PORT=${SHOPKEEPER_LOCAL_CHDB_PORT:-8124}  # chDB's ClickHouse HTTP interface (logs store)
SYSLOG_PORT=${SHOPKEEPER_LOCAL_SYSLOG_PORT:-5515}  # `shopkeeper logs syslog`, behind nginx
EDGE_SYSLOG_PORT=${SHOPKEEPER_LOCAL_EDGE_SYSLOG_PORT:-1514}  # nginx's syslog port (TCP and UDP)
LOGS_METRICS_PORT=${SHOPKEEPER_LOCAL_LOGS_METRICS_PORT:-9105}  # the writer; the syslog receiver +1
CRAWL_WORKERS=${SHOPKEEPER_LOCAL_CRAWL_WORKERS:-2}
CRAWL_METRICS_PORT=${SHOPKEEPER_LOCAL_CRAWL_METRICS_PORT:-9110}  # worker i serves on this + i
WEB_WORKERS=${SHOPKEEPER_WEB_WORKERS:-2}
PGHOST=${PGHOST:-127.0.0.1}
PGPORT=${PGPORT:-5432}
PGUSER=${PGUSER:-postgres}
DB_NAME=${SHOPKEEPER_LOCAL_DB:-shopkeeper_local}
REDIS_URL=${SHOPKEEPER_LOCAL_REDIS_URL:-redis://127.0.0.1:6379/5}
BROKER_URL=${SHOPKEEPER_LOCAL_BROKER_URL:-amqp://guest:guest@127.0.0.1:5672/}
SHOPKEEPER=${SHOPKEEPER_BIN:-$REPO/.venv/bin/shopkeeper}
export PGHOST PGPORT PGUSER

log() { echo "run.sh: $*" >&2; }
die() { log "$*"; exit 1; }
answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
host_of() { local rest=${1#*://}; rest=${rest#*@}; echo "${rest%%[:/]*}"; }
port_of() { local rest=${1#*://}; rest=${rest#*@}; rest=${rest%%/*}; echo "${rest##*:}"; }

wait_http() {  # url, what, process pid file; a busy 2-core machine can take a while to boot
  for _ in $(seq 1 240); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    [[ -n ${3:-} ]] && ! alive "$3" && die "$2 exited; see $STATE/log/"
    sleep 0.5
  done
  die "$2 did not answer at $1; see $STATE/log/"
}

start_process() {  # name, command...: in its own session, so stop.sh can end the whole group
  local name=$1 pidfile=$STATE/run/$1.pid
  shift
  if alive "$pidfile"; then
    log "$name already running (pid $(cat "$pidfile"))"
    return 0
  fi
  (cd "$STATE" && exec setsid "$@" >>"$STATE/log/$name.log" 2>&1 </dev/null) &
  echo $! >"$pidfile"
  log "$name started (pid $!)"
}

# --- packages ----------------------------------------------------------------------------------
packages=()
command -v nginx >/dev/null || packages+=(nginx)
# nginx's stream module forwards the syslog port.
[[ -f /usr/lib/nginx/modules/ngx_stream_module.so ]] || packages+=(libnginx-mod-stream)
command -v prometheus >/dev/null || packages+=(prometheus)
command -v psql >/dev/null || packages+=(postgresql-client)
command -v curl >/dev/null || packages+=(curl)
if ((${#packages[@]})); then
  log "installing ${packages[*]}"
  as_root apt-get update -q
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${packages[@]}"
fi
[[ -x $SHOPKEEPER ]] || { log "installing the Python environment (make install)"; make -C "$REPO" install; }

mkdir -p "$STATE"/{log,run,var,nginx,prometheus/data}

# --- PostgreSQL ----------------------------------------------------------------------------------
if ! answers "$PGHOST" "$PGPORT"; then
  if [[ $PGHOST == 127.0.0.1 || $PGHOST == localhost ]]; then
    if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
      log "installing PostgreSQL"
      as_root apt-get update -q
      as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
    fi
    log "starting PostgreSQL"
    as_root pg_ctlcluster --skip-systemctl-redirect "$(find /etc/postgresql -mindepth 1 -maxdepth 1 -printf "%f\n" | sort -V | tail -1)" main start || true
    for _ in $(seq 1 30); do answers "$PGHOST" "$PGPORT" && break; sleep 1; done
  fi
  answers "$PGHOST" "$PGPORT" || die "PostgreSQL does not answer at $PGHOST:$PGPORT"
fi
if [[ -z $(psql -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'") ]]; then
  createdb "$DB_NAME"
  log "created database $DB_NAME"
fi

# --- configuration ---------------------------------------------------------------------------
# Generated once and kept, so a re-run keeps sessions, tokens and the admin password valid.
secret() {
  [[ -s $STATE/$1 ]] || (umask 077 && head -c 64 /dev/urandom | base64 -w0 | tr -d '/+=' | cut -c1-48 >"$STATE/$1")
  cat "$STATE/$1"
}
has_command() { "$SHOPKEEPER" "$1" --help >/dev/null 2>&1; }
run_worker=false
run_scheduler=false
if answers "$(host_of "$BROKER_URL")" "$(port_of "$BROKER_URL")"; then
  has_command worker && run_worker=true
  has_command scheduler && run_scheduler=true
fi

{
  echo "SHOPKEEPER_ENVIRONMENT=production"
  echo "SHOPKEEPER_HOST=127.0.0.1"
  echo "SHOPKEEPER_PORT=$APP_PORT"
  echo "SHOPKEEPER_PUBLIC_URL=http://127.0.0.1:$HTTP_PORT"
  echo "SHOPKEEPER_VAR_DIR=$STATE/var"
  echo "SHOPKEEPER_DATABASE_URL=postgresql+asyncpg://$PGUSER${PGPASSWORD:+:$PGPASSWORD}@$PGHOST:$PGPORT/$DB_NAME"
  # A small pool: 4 processes (2 gunicorn workers, worker, scheduler) x (pool + overflow) must
  # fit beside whatever else uses this PostgreSQL.
  echo "SHOPKEEPER_DATABASE_POOL_SIZE=${SHOPKEEPER_LOCAL_POOL_SIZE:-3}"
  echo "SHOPKEEPER_SECRET_KEY=$(secret secret_key)"
  echo "SHOPKEEPER_ADMIN_EMAIL=${SHOPKEEPER_ADMIN_EMAIL:-admin@shopkeeper.local}"
  echo "SHOPKEEPER_ADMIN_PASSWORD=$(secret admin_password)"
  echo "SHOPKEEPER_FORWARDED_ALLOW_IPS=127.0.0.1"
  echo "SHOPKEEPER_LOG_JSON=true"
  if answers "$(host_of "$REDIS_URL")" "$(port_of "$REDIS_URL")"; then
    echo "SHOPKEEPER_REDIS_URL=$REDIS_URL"
    # The crawl frontier in Redis, shared by the crawl workers below (else: the database).
    echo "SHOPKEEPER_CRAWL_FRONTIER=redis"
  fi
  # Crawl workers run as their own processes, not inside the API's gunicorn workers.
  echo "SHOPKEEPER_CRAWL_INPROCESS_WORKER=false"
  # Logs: one process owns the chDB directory and serves ClickHouse's HTTP interface; every
  # other process reaches the store through it. With RabbitMQ, the gateways (serve's workers)
  # publish ingest to the stream and `logs writer` stores it; syslog has its own receiver.
  echo "SHOPKEEPER_LOGS_CLICKHOUSE_URL=http://127.0.0.1:$CHDB_PORT"
  echo "SHOPKEEPER_LOGS_SYSLOG_PORT=0"
  if answers "$(host_of "$BROKER_URL")" "$(port_of "$BROKER_URL")"; then
    echo "SHOPKEEPER_LOGS_BUFFER_URL=$BROKER_URL"
    if [[ -n ${SHOPKEEPER_LOGS_BUFFER_STREAM:-} ]]; then
      echo "SHOPKEEPER_LOGS_BUFFER_STREAM=$SHOPKEEPER_LOGS_BUFFER_STREAM"
    fi
  fi
  if $run_worker; then
    echo "SHOPKEEPER_BROKER_URL=$BROKER_URL"
    # The scheduler (or, without one, serve) owns the periodic jobs and the outbox relay.
    $run_scheduler || echo "SHOPKEEPER_RUN_BACKGROUND_IN_PROCESS=true"
  fi
} >"$STATE/shopkeeper.env.new"
chmod 600 "$STATE/shopkeeper.env.new"
mv "$STATE/shopkeeper.env.new" "$STATE/shopkeeper.env"
set -a
# shellcheck disable=SC1091
. "$STATE/shopkeeper.env"
set +a

# --- the application -----------------------------------------------------------------------------
(cd "$STATE" && "$SHOPKEEPER" migrate) >>"$STATE/log/migrate.log" 2>&1 || die "migration failed; see $STATE/log/migrate.log"
log "database $DB_NAME migrated"

start_process chdb-server "$SHOPKEEPER" logs chdb-server --path "$STATE/var/logs" --port "$CHDB_PORT"
wait_http "http://127.0.0.1:$CHDB_PORT/ping" "the chDB server" "$STATE/run/chdb-server.pid"
start_process api "$SHOPKEEPER" serve --workers "$WEB_WORKERS"
wait_http "http://127.0.0.1:$APP_PORT/health/live" "shopkeeper serve" "$STATE/run/api.pid"
if $run_worker; then start_process worker "$SHOPKEEPER" worker; else log "no worker: this version has no 'shopkeeper worker' or RabbitMQ does not answer"; fi
if $run_scheduler; then start_process scheduler "$SHOPKEEPER" scheduler; else log "no scheduler: this version has no 'shopkeeper scheduler' or RabbitMQ does not answer"; fi
if [[ -n ${SHOPKEEPER_LOGS_BUFFER_URL:-} ]]; then
  start_process logs-writer "$SHOPKEEPER" logs writer --metrics-port "$LOGS_METRICS_PORT"
fi
start_process logs-syslog "$SHOPKEEPER" logs syslog --host 127.0.0.1 --port "$SYSLOG_PORT" \
  --metrics-port "$((LOGS_METRICS_PORT + 1))"
for i in $(seq 1 "$CRAWL_WORKERS"); do
  start_process "crawl-worker-$i" "$SHOPKEEPER" crawl worker --name "local-$i" --metrics-port "$((CRAWL_METRICS_PORT + i))"
done

# --- nginx: deploy/nginx.conf with local addresses and paths ---------------------------------
"$HERE/render-nginx.sh" "$STATE" "$APP_PORT" "$HTTP_PORT" "$SYSLOG_PORT" "$EDGE_SYSLOG_PORT" >"$STATE/nginx/nginx.conf"
nginx_args=(-p "$STATE/nginx" -c "$STATE/nginx/nginx.conf" -g "pid $STATE/run/nginx.pid;")
nginx "${nginx_args[@]}" -t -q 2>>"$STATE/log/nginx-error.log" || die "nginx configuration invalid; see $STATE/log/nginx-error.log"
if alive "$STATE/run/nginx.pid"; then
  nginx "${nginx_args[@]}" -s reload 2>>"$STATE/log/nginx-error.log"
  log "nginx reloaded"
else
  nginx "${nginx_args[@]}"
  log "nginx started on 127.0.0.1:$HTTP_PORT"
fi
wait_http "http://127.0.0.1:$HTTP_PORT/health/live" "nginx"

# --- Prometheus: the compose config's job, pointed at the local API ---------------------------
cat >"$STATE/prometheus/prometheus.yml" <<YAML
global:
  scrape_interval: 5s
  evaluation_interval: 5s
scrape_configs:
  - job_name: shopkeeper-api
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:$APP_PORT"]
        labels:
          service: api
  - job_name: shopkeeper-crawl-worker
    metrics_path: /metrics
    static_configs:
      - targets: [$(if [[ -n ${SHOPKEEPER_LOGS_BUFFER_URL:-} ]]; then
  start_process logs-writer "$SHOPKEEPER" logs writer --metrics-port "$LOGS_METRICS_PORT"
fi
start_process logs-syslog "$SHOPKEEPER" logs syslog --host 127.0.0.1 --port "$SYSLOG_PORT" \
  --metrics-port "$((LOGS_METRICS_PORT + 1))"
for i in $(seq 1 "$CRAWL_WORKERS"); do printf '"127.0.0.1:%s"%s' "$((CRAWL_METRICS_PORT + i))" "$([[ $i -lt $CRAWL_WORKERS ]] && echo ', ')"; done)]
        labels:
          service: crawl-worker
  - job_name: shopkeeper-logs
    metrics_path: /metrics
    static_configs:
      - targets: ["127.0.0.1:$((LOGS_METRICS_PORT + 1))"$([[ -n ${SHOPKEEPER_LOGS_BUFFER_URL:-} ]] && echo ", \"127.0.0.1:$LOGS_METRICS_PORT\"")]
        labels:
          service: logs
YAML
if alive "$STATE/run/prometheus.pid"; then
  kill -HUP "$(cat "$STATE/run/prometheus.pid")"
  log "prometheus reloaded"
else
  start_process prometheus prometheus \
    --config.file="$STATE/prometheus/prometheus.yml" \
    --storage.tsdb.path="$STATE/prometheus/data" \
    --storage.tsdb.retention.time=2d \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT"
fi
wait_http "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" "prometheus" "$STATE/run/prometheus.pid"

cat >&2 <<DONE
run.sh: up.
  API through nginx  http://127.0.0.1:$HTTP_PORT   (docs /docs, admin /admin)
  admin login        $SHOPKEEPER_ADMIN_EMAIL / password in $STATE/admin_password
  gunicorn direct    http://127.0.0.1:$APP_PORT   (metrics /metrics; nginx answers 404 there)
  logs               ingest/query http://127.0.0.1:$HTTP_PORT/api/v1/logs, syslog 127.0.0.1:$EDGE_SYSLOG_PORT (TCP/UDP),
                     store: chDB served on 127.0.0.1:$CHDB_PORT${SHOPKEEPER_LOGS_BUFFER_URL:+, buffer: RabbitMQ stream -> logs writer}
  crawl workers      $CRAWL_WORKERS (GET /api/v1/crawl/workers; metrics on :$((CRAWL_METRICS_PORT + 1))...)
  prometheus         http://127.0.0.1:$PROMETHEUS_PORT/targets
  logs               $STATE/log/
  smoke test         deploy/local/check.sh      stop: deploy/local/stop.sh
DONE
