#!/usr/bin/env bash
# Stop what deploy/local/run.sh started (only those processes, by their pid files). Idempotent.
# The database, its data and the generated secrets stay; `--purge` also drops the local state.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
STATE=${SHOPKEEPER_LOCAL_DIR:-$REPO/var/local-deploy}

log() { echo "stop.sh: $*" >&2; }

stop() {  # name: TERM to its process group (gunicorn and its workers), KILL after 30 s
  local name=$1 pidfile=$STATE/run/$1.pid pid
  [[ -f $pidfile ]] || return 0
  pid=$(cat "$pidfile")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name did not stop in 30 s; killing"
      kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
    fi
    log "$name stopped"
  fi
  rm -f "$pidfile"
}

if [[ -f $STATE/run/nginx.pid ]] && kill -0 "$(cat "$STATE/run/nginx.pid")" 2>/dev/null; then
  # nginx daemonizes itself: quit gracefully through its own signal handling.
  nginx -p "$STATE/nginx" -c "$STATE/nginx/nginx.conf" -g "pid $STATE/run/nginx.pid;" -s quit 2>/dev/null
  for _ in $(seq 1 60); do [[ -f $STATE/run/nginx.pid ]] || break; sleep 0.5; done
  log "nginx stopped"
fi
rm -f "$STATE/run/nginx.pid"

# The edge first, then the processes behind it.
for name in api scheduler worker logs-syslog logs-writer prometheus; do stop "$name"; done
for pidfile in "$STATE"/run/crawl-worker-*.pid; do
  [[ -e $pidfile ]] && stop "$(basename "$pidfile" .pid)"
done
# Last: everything above reads or writes the log store through it.
stop chdb-server

if [[ ${1:-} == --purge ]]; then
  rm -rf "$STATE"
  log "removed $STATE (the PostgreSQL database stays; dropdb it if you want it gone)"
fi
