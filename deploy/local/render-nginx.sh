#!/usr/bin/env bash
# Print deploy/nginx.conf adapted to a local run: upstream on 127.0.0.1:APP_PORT, listening on
# 127.0.0.1:HTTP_PORT, logs and temp files under STATE_DIR. Used by run.sh and the tests.
#   render-nginx.sh STATE_DIR APP_PORT HTTP_PORT > nginx.conf
set -euo pipefail
[[ $# -eq 3 ]] || { echo "usage: $0 STATE_DIR APP_PORT HTTP_PORT" >&2; exit 2; }
STATE=$1 APP_PORT=$2 HTTP_PORT=$3
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

sed -e "s#server api:8000;#server 127.0.0.1:$APP_PORT;#" \
    -e "s#listen 80 default_server;#listen 127.0.0.1:$HTTP_PORT default_server;#" \
    -e "s#include mime.types;#include /etc/nginx/mime.types;#" \
    -e "s#error_log /dev/stderr warn;#error_log $STATE/log/nginx-error.log warn;#" \
    -e "s#access_log /dev/stdout shopkeeper;#access_log $STATE/log/nginx-access.log shopkeeper;#" \
    -e "s#^http {#http {\n    client_body_temp_path $STATE/nginx/body;\n    proxy_temp_path $STATE/nginx/proxy;\n    fastcgi_temp_path $STATE/nginx/fastcgi;\n    uwsgi_temp_path $STATE/nginx/uwsgi;\n    scgi_temp_path $STATE/nginx/scgi;#" \
    "$HERE/../nginx.conf"
