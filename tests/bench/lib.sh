# Shared by the benchmark scripts (run.sh, policy.sh, egress.sh): process cleanup, ports, CPU
# idleness and time, result parsing, nginx and portier start-up. The sourcing script defines log(),
# and sets NG_PORT before using them. Sourcing it sets the shell options, PATH, HERE (this folder),
# ROOT (the checkout) and the knobs every script has; bench_start then makes T (temp dir) and PIDS.

set -uo pipefail
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
export LC_ALL=C
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECS=${BENCH_SECONDS:-10}
WARM=${BENCH_WARMUP_SECONDS:-2}
PORTIER_BIN=${PORTIER:-$ROOT/build/portier}
KEEP_TMP=${BENCH_KEEP_TMP:-0}

cpu_idle_pct() {   # share of CPU time idle over one second, from /proc/stat
    local a b
    a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN{ na=split(a,x," "); split(b,y," "); t=0
        for (i=2;i<=na;i++) t+=y[i]-x[i]; idle=(y[5]-x[5])+(y[6]-x[6])
        if (t>0) printf "%.0f", 100*idle/t; else print "?" }'
}

# Raises the open files limit, takes the CPU idleness (IDLE_START), makes T (/tmp/NAME.XXXXXX), empty
# PIDS and NOTES, and stops every process in PIDS and removes T on exit.
bench_start() {   # name
    ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
    log "open files limit: $(ulimit -n)"
    IDLE_START=$(cpu_idle_pct)
    [ "$IDLE_START" != "?" ] && [ "$IDLE_START" -lt 90 ] && log "WARNING: CPU only ${IDLE_START}% idle before the run: figures will be skewed"
    T=$(mktemp -d "/tmp/$1.XXXXXX")
    chmod 755 "$T"   # squid drops to its own user and must reach its config and logs
    PIDS=()
    NOTES=()
    trap cleanup EXIT
    trap 'exit 130' INT TERM
}

cleanup() {
    local pid i alive
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for i in $(seq 1 50); do
        alive=0
        for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    wait 2>/dev/null
    if [ "$KEEP_TMP" = 1 ]; then log "kept $T"; else rm -rf "$T"; fi
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {   # port timeout_tenths
    local i
    for i in $(seq 1 "$2"); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# CPU time (user + system, all threads) of a process so far, in clock ticks (getconf CLK_TCK)
cpu_ticks_pid() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null; }

field() { sed -n "s/.*[ ]$1=\([-0-9.]*\).*/\1/p" <<<" $2" | head -1; }

# Writes $T/nginx/nginx.conf: one worker serving $T/www on 127.0.0.1:$NG_PORT with sendfile, no
# access log, long keep-alive, stub_status, and its temp paths inside $T.
write_nginx_conf() {
local temp_paths nginx_v m user_line
temp_paths="client_body_temp_path $T/nginx/tmp/body;"
nginx_v=$(nginx -V 2>&1)
for m in proxy fastcgi uwsgi scgi; do
    grep -q -- "--without-http_${m}_module" <<<"$nginx_v" || temp_paths+=" ${m}_temp_path $T/nginx/tmp/$m;"
done
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root root;"
cat > "$T/nginx/nginx.conf" <<EOF
$user_line
worker_processes 1;
worker_rlimit_nofile 65536;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log warn;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 120s;
    default_type application/octet-stream;
    $temp_paths
    server {
        listen 127.0.0.1:$NG_PORT backlog=4096;
        root $T/www;
        location / { }
        location = /nginx_status { stub_status; }
    }
}
EOF
}

# Writes the config and starts nginx serving $T/www in the foreground; sets NG_PID. Exits when it does not start.
start_nginx() {
    mkdir -p "$T/nginx/tmp"
    write_nginx_conf
    nginx -p "$T/nginx" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" -g 'daemon off;' \
        > "$T/nginx/stdout" 2>&1 &
    NG_PID=$!
    PIDS+=("$NG_PID")
    if ! wait_port "$NG_PORT" 100; then
        log "FATAL: nginx did not start"; cat "$T/nginx/stdout" "$T/nginx/error.log" >&2; exit 1
    fi
}

# Starts squid in the foreground (-N) with its own config in $T/squid: 1 worker, no cache, no access
# log, CONNECT allowed from loopback to $NG_PORT only. Sets SQ_PORT and SQ_PID (added to PIDS).
# Returns 1 when it does not listen within 15 s (it is then stopped); its logs are in $T/squid.
start_squid() {
    SQ_PORT=$(free_port)
    mkdir -p "$T/squid"
    chmod 777 "$T/squid"   # squid drops to its own user and must reach its config and logs
    cat > "$T/squid/squid.conf" <<SQUID
http_port 127.0.0.1:$SQ_PORT
visible_hostname portier-bench
workers 1
cache deny all
cache_mem 0 MB
access_log none
cache_store_log none
cache_log $T/squid/cache.log
pid_filename $T/squid/squid.pid
coredump_dir $T/squid
pinger_enable off
shutdown_lifetime 1 seconds
max_filedescriptors 65536
client_persistent_connections on
server_persistent_connections on
acl bench_src src 127.0.0.0/8
acl bench_port port $NG_PORT
acl CONNECT method CONNECT
http_access allow CONNECT bench_src bench_port
http_access deny CONNECT
http_access allow bench_src
http_access deny all
SQUID
    squid -N -f "$T/squid/squid.conf" > "$T/squid/stdout" 2>&1 &
    SQ_PID=$!
    PIDS+=("$SQ_PID")
    if wait_port "$SQ_PORT" 150 && kill -0 "$SQ_PID" 2>/dev/null; then return 0; fi
    kill -TERM "$SQ_PID" 2>/dev/null
    return 1
}

# Starts $PORTIER_BIN --config CFG (stdout, stderr in $T/portier-KEY.stdout, .stderr), adds it to PIDS
# and polls every 10 ms, at most SECONDS, for its "portier: info: ready" line. Sets LP_PID, LP_READY_MS (start
# to ready) and LP_PORT (its first listener on 127.0.0.1). Not ready: stops it and returns 1.
launch_portier() {   # key cfg seconds
    local err="$T/portier-$1.stderr" i t0
    LP_PORT=""
    t0=$(date +%s%N)
    "$PORTIER_BIN" --config "$2" > "$T/portier-$1.stdout" 2> "$err" &
    LP_PID=$!
    PIDS+=("$LP_PID")
    for i in $(seq 1 $(($3 * 100))); do
        grep -q 'portier: info: ready' "$err" 2>/dev/null && break
        kill -0 "$LP_PID" 2>/dev/null || break
        sleep 0.01
    done
    LP_READY_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
    LP_PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$err" | head -1)
    grep -q 'portier: info: ready' "$err" && [ -n "$LP_PORT" ] && return 0
    kill -TERM "$LP_PID" 2>/dev/null
    return 1
}

# Installs the Debian packages for the given commands when they are missing (nginx as nginx-light).
ensure_packages() {   # command...
    local missing=() c
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || missing+=("$c")
    done
    ((${#missing[@]})) || return 0
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    log "installing missing packages for: ${missing[*]}"
    "${sudo[@]}" apt-get update -qq || log "apt-get update failed"
    for c in "${missing[@]}"; do
        if [ "$c" = nginx ]; then
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light \
                || "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx
        else
            "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$c"
        fi
    done
    for c in "$@"; do
        command -v "$c" >/dev/null 2>&1 || { log "FATAL: $c still missing"; exit 1; }
    done
}
