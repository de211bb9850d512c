# Shared by the benchmark scripts (run.sh, policy.sh): process cleanup, ports, CPU idleness,
# result parsing and the nginx config. The sourcing script defines log(), and sets T (temp dir),
# PIDS (processes it started), KEEP_TMP and NG_PORT before using them.

cpu_idle_pct() {   # share of CPU time idle over one second, from /proc/stat
    local a b
    a=$(head -1 /proc/stat); sleep 1; b=$(head -1 /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN{ na=split(a,x," "); split(b,y," "); t=0
        for (i=2;i<=na;i++) t+=y[i]-x[i]; idle=(y[5]-x[5])+(y[6]-x[6])
        if (t>0) printf "%.0f", 100*idle/t; else print "?" }'
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
