#!/usr/bin/env bash
# Crawls the real limiters servers run, not our models of them: nginx's
# `limit_req` and HAProxy's `http_req_rate` stick table, each started here
# on 127.0.0.1 (an ephemeral port, a temporary directory) and stopped at
# the end. Each line is one crawl by `examples/crawl/ --url`, with the
# library's default policy: what it got of the configured rate and what
# share of its requests were refused.
#
#   bash benches/real_limiters.sh            # every case, ~10 minutes
#   CASES='nginx:20:5:1' bash benches/real_limiters.sh
#
# A case is `nginx:RATE:BURST:RA[:delay|:503|:403]` (RA: `1` adds
# `Retry-After: 1` to refusals, `none` adds nothing; `delay` drops
# `nodelay`; `503` keeps nginx's default status; `403` refuses with
# `limit_req_status 403`, a bare 403 without RA) or
# `haproxy:LIMIT:PERIOD_S` (deny 429 when `sc_http_req_rate(0) gt LIMIT`,
# the rate counted over PERIOD_S seconds, refused requests included) or
# `haproxy-ban:LIMIT:PERIOD_S:BAN_S` (HAProxy's documented abuse pattern:
# past LIMIT over PERIOD_S a `gpc0` flag is set, and every request is
# denied with 429 while it is; each request renews the stick table's
# entry, so the flag clears only after BAN_S without a request; not among
# the default cases: the flag the opening sets off takes about two minutes
# to clear, and the reading it leaves is tested five minutes later) or
# `flask:LIMIT:PERIOD_S:STRATEGY[:headers]` (Flask-Limiter, the Python
# library, served by waitress: LIMIT per PERIOD_S seconds, STRATEGY
# `fixed-window`, its default, or `moving-window`; `headers` turns on its
# `X-RateLimit-*` and `Retry-After` headers, rounded up to whole seconds;
# without them a bare 429) or `traefik:AVERAGE:BURST` (Traefik's
# `rateLimit` middleware as it runs: a token bucket of Go's
# `golang.org/x/time/rate`, the library Traefik uses, AVERAGE a second
# and BURST tokens; a request whose token is due within half an interval
# is served that late, any other refused with `Retry-After` rounded up to
# whole seconds and `X-Retry-In` the exact wait; built here from the
# Debian packages golang-go and golang-golang-x-time-dev).
# SECS (30) sets how long each crawl should take at the allowed rate.
# BACKEND_MS (unset) puts an application behind nginx and HAProxy that
# takes that long to answer (Python's threaded HTTP server, started here),
# and makes Flask's view take as long, as in a real deployment: refusals
# come back at once, the requests let through a backend's time later.
# Unset, nginx and HAProxy answer 200 themselves, as fast as they refuse.
# Installs nginx-light and haproxy (Debian packages) when they are missing,
# Flask-Limiter with waitress (PyPI) into a virtual environment under
# target/ for the flask cases, and Go with `x/time/rate` for the traefik
# cases.
set -euo pipefail
cd "$(dirname "$0")/.."

for pkg in nginx:nginx-light haproxy:haproxy; do
    if ! command -v "${pkg%%:*}" >/dev/null && ! [ -x "/usr/sbin/${pkg%%:*}" ]; then
        apt-get install -y "${pkg#*:}" >/dev/null
    fi
done
export PATH="$PATH:/usr/sbin"

SECS=${SECS:-30}
CASES=${CASES:-"nginx:5:0:1 nginx:5:5:1 nginx:20:0:none nginx:20:5:1 nginx:20:20:none:503
nginx:100:0:1 nginx:100:10:none nginx:100:10:1:delay nginx:300:30:1
haproxy:10:1 haproxy:50:1 haproxy:200:1 haproxy:20:10 haproxy:100:10 haproxy:30:60"}

VENV=target/flask-limiter-venv
if [[ "$CASES" == *flask:* ]] && ! [ -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet flask flask-limiter waitress
fi

if [[ "$CASES" == *traefik:* ]] && ! { command -v go >/dev/null && [ -d /usr/share/gocode/src/golang.org/x/time/rate ]; }; then
    apt-get install -y golang-go golang-golang-x-time-dev >/dev/null
fi

# CRAWL=path/to/crawl compares another build (an older commit's).
if [ -z "${CRAWL:-}" ]; then
    cargo build --release --quiet --example crawl
    CRAWL=target/release/examples/crawl
fi
DIR=$(mktemp -d)
PID=
stop() {
    if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    PID=
}
trap 'stop; rm -rf "$DIR"' EXIT
chmod 755 "$DIR"
echo ok > "$DIR/ok.txt"

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

BACKEND=
BACKEND_PID=
if [ -n "${BACKEND_MS:-}" ]; then
    BACKEND=$(port)
    python3 - "$BACKEND" "$BACKEND_MS" <<'EOF' 2>>"$DIR/backend.log" &
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Slow(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        time.sleep(float(sys.argv[2]) / 1000)
        self.send_response(200)
        self.send_header("Content-Length", "3")
        self.end_headers()
        self.wfile.write(b"ok\n")
    def log_message(self, *args):
        pass

ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Slow).serve_forever()
EOF
    BACKEND_PID=$!
    trap 'stop; kill "$BACKEND_PID" 2>/dev/null || true; rm -rf "$DIR"' EXIT
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$BACKEND") 2>/dev/null && break
        sleep 0.1
    done
fi

nginx_conf() { # port rate burst ra mode
    local nodelay=nodelay status=429
    [ "${5:-}" = delay ] && nodelay=
    [ "${5:-}" = 503 ] && status=503
    [ "${5:-}" = 403 ] && status=403
    local burst=
    [ "$3" != 0 ] && burst="burst=$3"
    local ra='""'
    [ "$4" = 1 ] && ra=1
    cat <<EOF
worker_processes 1;
pid $DIR/nginx.pid;
error_log $DIR/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $DIR/body;
    proxy_temp_path $DIR/proxy;
    fastcgi_temp_path $DIR/fastcgi;
    map \$status \$retry_after { $status $ra; default ""; }
    limit_req_zone \$server_name zone=one:1m rate=$2r/s;
    limit_req_status $status;
    server {
        listen 127.0.0.1:$1;
        server_name limited;
        root $DIR;
        keepalive_requests 1000000;
        location / {
            limit_req zone=one $burst $nodelay;
            add_header Retry-After \$retry_after always;
            $(if [ -n "$BACKEND" ]; then echo "proxy_pass http://127.0.0.1:$BACKEND;"; else echo "try_files /ok.txt =404;"; fi)
        }
    }
}
EOF
}

haproxy_head() { # port
    cat <<EOF
global
    maxconn 8192
defaults
    mode http
    timeout client 30s
    timeout server 30s
    timeout connect 1s
frontend limited
    bind 127.0.0.1:$1
EOF
}

haproxy_serve() { # what a request the limiter lets through gets
    if [ -n "$BACKEND" ]; then
        printf '    default_backend app\nbackend app\n    server app 127.0.0.1:%s\n' "$BACKEND"
    else
        echo "    http-request return status 200 content-type text/plain string ok"
    fi
}

haproxy_conf() { # port limit period
    haproxy_head "$1"
    cat <<EOF
    stick-table type integer size 1k expire 10m store http_req_rate(${3}s)
    http-request track-sc0 int(1)
    http-request deny deny_status 429 if { sc_http_req_rate(0) gt $2 }
EOF
    haproxy_serve
}

haproxy_ban_conf() { # port limit period ban
    haproxy_head "$1"
    cat <<EOF
    stick-table type integer size 1k expire ${4}s store http_req_rate(${3}s),gpc0
    http-request track-sc0 int(1)
    http-request sc-inc-gpc0(0) if { sc_http_req_rate(0) gt $2 }
    http-request deny deny_status 429 if { sc_get_gpc0(0) gt 0 }
EOF
    haproxy_serve
}

flask_app() { # port limit period strategy headers
    local headers=False
    [ "${5:-}" = headers ] && headers=True
    cat <<EOF
import time
import waitress
from flask import Flask
from flask_limiter import Limiter

app = Flask(__name__)
Limiter(lambda: "one", app=app, default_limits=["$2 per $3 second"], strategy="$4",
        storage_uri="memory://", headers_enabled=$headers)

@app.route("/page/<path:p>")
def page(p):
    time.sleep(${BACKEND_MS:-0} / 1000)
    return "ok"

waitress.serve(app, host="127.0.0.1", port=$1, threads=16, connection_limit=256, _quiet=True)
EOF
}

traefik_app() { # port average burst
    cat <<EOF
package main

import (
	"fmt"
	"math"
	"net/http"
	"time"

	"golang.org/x/time/rate"
)

func main() {
	var average float64 = $2
	bucket := rate.NewLimiter(rate.Limit(average), $3)
	// Traefik serves late what comes within half an interval (of the
	// whole requests a second; 500 ms under one) and refuses the rest.
	late := 500 * time.Millisecond
	if average >= 1 {
		late = time.Second / time.Duration(2*int64(average))
	}
	backend := time.Duration(${BACKEND_MS:-0}) * time.Millisecond
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		reservation := bucket.Reserve()
		wait := reservation.Delay()
		if wait > late {
			reservation.Cancel()
			w.Header().Set("Retry-After", fmt.Sprintf("%.0f", math.Ceil(wait.Seconds())))
			w.Header().Set("X-Retry-In", wait.String())
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		time.Sleep(wait + backend)
		w.Write([]byte("ok\\n"))
	})
	http.ListenAndServe("127.0.0.1:$1", nil)
}
EOF
}

printf '%-28s %9s %9s %8s %9s %8s\n' case allowed ok/s "of rate" refused share
for case in $CASES; do
    IFS=: read -r kind a b c d <<<"$case"
    p=$(port)
    if [ "$kind" = nginx ]; then
        nginx_conf "$p" "$a" "$b" "$c" "${d:-}" > "$DIR/nginx.conf"
        nginx -p "$DIR" -c "$DIR/nginx.conf" -g 'daemon off;' 2>>"$DIR/error.log" &
        PID=$!
        allowed=$a
        extra=$b
    elif [ "$kind" = flask ]; then
        flask_app "$p" "$a" "$b" "$c" "${d:-}" > "$DIR/app.py"
        "$VENV/bin/python" "$DIR/app.py" 2>>"$DIR/error.log" &
        PID=$!
        allowed=$(python3 -c "print($a / $b)")
        extra=$a
    elif [ "$kind" = traefik ]; then
        mkdir -p "$DIR/traefik"
        traefik_app "$p" "$a" "$b" > "$DIR/traefik/main.go"
        (cd "$DIR/traefik" && GOPATH=/usr/share/gocode GO111MODULE=off GOCACHE="$DIR/gocache" go build -o server main.go)
        "$DIR/traefik/server" 2>>"$DIR/error.log" &
        PID=$!
        allowed=$a
        extra=$b
    elif [ "$kind" = haproxy-ban ]; then
        haproxy_ban_conf "$p" "$a" "$b" "$c" > "$DIR/haproxy.cfg"
        haproxy -f "$DIR/haproxy.cfg" -db 2>>"$DIR/error.log" &
        PID=$!
        allowed=$(python3 -c "print($a / $b)")
        extra=$a
    else
        haproxy_conf "$p" "$a" "$b" > "$DIR/haproxy.cfg"
        haproxy -f "$DIR/haproxy.cfg" -db 2>>"$DIR/error.log" &
        PID=$!
        allowed=$(python3 -c "print($a / $b)")
        extra=$a
    fi
    for _ in $(seq 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && break
        sleep 0.1
    done
    # SECS at the rate, and what the limiter lets through at once.
    n=$(python3 -c "print(int($allowed * $SECS) + $extra)")
    out=$("$CRAWL" --quiet --url "http://127.0.0.1:$p/page/" --requests "$n" 2>/dev/null)
    stop
    python3 - "$case" "$allowed" "$out" <<'EOF'
import json, sys
case, allowed, out = sys.argv[1], float(sys.argv[2]), json.loads(sys.argv[3])
# A bare 403 (`limit_req_status 403`) is a refusal here: `other`.
ok, thr = out["ok"], out["throttled"] + out.get("other", 0)
print(f"{case:28} {allowed:8.2f}/s {out['ok_per_s']:8.2f} {100 * out['ok_per_s'] / allowed:7.1f} % {thr:9} {100 * thr / max(1, ok + thr):7.2f} %")
EOF
done
