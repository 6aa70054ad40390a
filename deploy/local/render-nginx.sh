#!/usr/bin/env bash
# Print deploy/nginx.conf adapted to a local run: upstream on 127.0.0.1:APP_PORT, listening on
# 127.0.0.1:HTTP_PORT, logs and temp files under STATE_DIR. Used by run.sh and the tests.
#   render-nginx.sh STATE_DIR APP_PORT HTTP_PORT [SYSLOG_PORT EDGE_SYSLOG_PORT] > nginx.conf
# With the two syslog ports (and Debian's stream module, libnginx-mod-stream, installed) nginx
# forwards syslog from 127.0.0.1:EDGE_SYSLOG_PORT (TCP and UDP) to the receiver on SYSLOG_PORT;
# without them the stream block is left out.
set -euo pipefail
[[ $# -eq 3 || $# -eq 5 ]] || { echo "usage: $0 STATE_DIR APP_PORT HTTP_PORT [SYSLOG_PORT EDGE_SYSLOG_PORT]" >&2; exit 2; }
STATE=$1 APP_PORT=$2 HTTP_PORT=$3 SYSLOG_PORT=${4:-} EDGE_SYSLOG_PORT=${5:-}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STREAM_MODULE=${SHOPKEEPER_NGINX_STREAM_MODULE:-/usr/lib/nginx/modules/ngx_stream_module.so}

syslog=()
if [[ -n $SYSLOG_PORT && -f $STREAM_MODULE ]]; then
  echo "load_module $STREAM_MODULE;"
  syslog=(-e "s#server logs-syslog:5514;#server 127.0.0.1:$SYSLOG_PORT;#"
          -e "s#listen 514;#listen 127.0.0.1:$EDGE_SYSLOG_PORT;#"
          -e "s#listen 514 udp;#listen 127.0.0.1:$EDGE_SYSLOG_PORT udp;#")
else
  [[ -z $SYSLOG_PORT ]] || echo "render-nginx.sh: no stream module at $STREAM_MODULE: syslog is not proxied" >&2
  syslog=(-e "/^# --- syslog/,/^# --- end syslog ---/d")
fi

sed -e "s#server api:8000;#server 127.0.0.1:$APP_PORT;#" \
    -e "s#listen 80 default_server;#listen 127.0.0.1:$HTTP_PORT default_server;#" \
    -e "s#include mime.types;#include /etc/nginx/mime.types;#" \
    -e "s#error_log /dev/stderr warn;#error_log $STATE/log/nginx-error.log warn;#" \
    -e "s#access_log /dev/stdout shopkeeper;#access_log $STATE/log/nginx-access.log shopkeeper;#" \
    -e "s#^http {#http {\n    client_body_temp_path $STATE/nginx/body;\n    proxy_temp_path $STATE/nginx/proxy;\n    fastcgi_temp_path $STATE/nginx/fastcgi;\n    uwsgi_temp_path $STATE/nginx/uwsgi;\n    scgi_temp_path $STATE/nginx/scgi;#" \
    "${syslog[@]}" \
    "$HERE/../nginx.conf"
