#!/usr/bin/env bash
# Benchmark: portier as a reverse proxy vs nginx and HAProxy as reverse proxies, all on 127.0.0.1,
# in one run: 1 KiB keep-alive GET req/s and p99 latency (wrk) against one backend nginx,
# direct (the ceiling), through each proxy, and through each proxy with TLS termination.
# Not a test: it prints a table with ratios. See tests/bench/README.md ("reverse.sh").
#
# Env knobs: BENCH_SECONDS (10) BENCH_WARMUP_SECONDS (2) BENCH_CONNECTIONS (50) BENCH_ROUNDS (3)
#            BENCH_WORKERS (1) BENCH_TLS (1) BENCH_HAPROXY (1) BENCH_PERF (0)
#            BENCH_BUSY_PCT (10) BENCH_BUSY_RETRIES (2)
#            PORTIER_BIN or PORTIER (build/portier of this checkout) BENCH_KEEP_TMP (0)
#            BENCH_PORTIER_CONFIG_EXTRA ()

# shellcheck disable=SC2059   # the table's printf formats are fixed strings kept in variables
_PORTIER_BIN_ENV=${PORTIER_BIN:-}
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # shell options, PATH, HERE, ROOT, SECS, WARM, PORTIER_BIN, KEEP_TMP
PORTIER_BIN=${_PORTIER_BIN_ENV:-$PORTIER_BIN}
CONNS=${BENCH_CONNECTIONS:-${BENCH_WRK_CONNECTIONS:-50}}
ROUNDS=${BENCH_ROUNDS:-3}
WORKERS=${BENCH_WORKERS:-1}
WITH_TLS=${BENCH_TLS:-1}
WITH_HAPROXY=${BENCH_HAPROXY:-1}
WITH_PERF=${BENCH_PERF:-0}
BUSY_PCT=${BENCH_BUSY_PCT:-10}           # a run with this share (%) of the CPU used by other processes is "disturbed"
BUSY_RETRIES=${BENCH_BUSY_RETRIES:-2}    # disturbed runs are repeated up to this many times
PORTIER_EXTRA=${BENCH_PORTIER_CONFIG_EXTRA:-}   # extra top-level JSON keys, e.g. "origin_pool": {"max_idle_per_host": 64}
BODY_SIZE=1024

log() { echo "[reverse $(date +%H:%M:%S)] $*" >&2; }

for knob in SECS:BENCH_SECONDS CONNS:BENCH_CONNECTIONS ROUNDS:BENCH_ROUNDS WORKERS:BENCH_WORKERS BUSY_PCT:BENCH_BUSY_PCT; do
    var=${knob%%:*}; v=${!var}
    [[ $v =~ ^[1-9][0-9]{0,4}$ ]] || { log "FATAL: ${knob#*:} must be a positive integer, got '$v'"; exit 2; }
done
[[ $WARM =~ ^[0-9]{1,4}$ ]] || { log "FATAL: BENCH_WARMUP_SECONDS must be an integer >= 0, got '$WARM'"; exit 2; }
[[ $BUSY_RETRIES =~ ^[0-9]$ ]] || { log "FATAL: BENCH_BUSY_RETRIES must be 0 to 9, got '$BUSY_RETRIES'"; exit 2; }

# ------------------------------------------------------------------ packages
ensure_packages nginx wrk curl python3
[ -x "$PORTIER_BIN" ] || { log "FATAL: $PORTIER_BIN not found or not executable (build it, or set PORTIER_BIN)"; exit 1; }

# Installs a package for optional columns when its command is missing; never fatal, bounded in time.
reverse_try_install() {   # package command
    command -v "$2" >/dev/null 2>&1 && return 0
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    log "installing $1"
    timeout 300 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >&2 || {
        timeout 300 "${sudo[@]}" apt-get update -qq >&2
        timeout 300 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >&2
    }
    command -v "$2" >/dev/null 2>&1
}
EARLY_NOTES=()
if [ "$WITH_HAPROXY" = 1 ] && ! reverse_try_install haproxy haproxy; then
    WITH_HAPROXY=0; EARLY_NOTES+=("haproxy is not installed and could not be installed: haproxy rows skipped")
fi
if [ "$WITH_TLS" = 1 ] && ! reverse_try_install openssl openssl; then
    WITH_TLS=0; EARLY_NOTES+=("openssl is not installed and could not be installed: TLS rows skipped")
fi
if [ "$WITH_PERF" = 1 ] && ! command -v perf >/dev/null 2>&1; then
    WITH_PERF=0; EARLY_NOTES+=("BENCH_PERF=1 but perf is not installed: no profile")
fi

bench_start portier-reverse-bench
NOTES+=(${EARLY_NOTES[@]+"${EARLY_NOTES[@]}"})
FAILED=0   # 1 = some target answered something else than the 1 KiB file: exit status 1

# ------------------------------------------------------------------ backend nginx
NG_PORT=$(free_port)
mkdir -p "$T/www"
head -c "$BODY_SIZE" /dev/urandom | base64 -w0 | head -c "$BODY_SIZE" > "$T/www/1k"   # not one repeated byte
start_nginx
log "backend nginx pid $NG_PID on 127.0.0.1:$NG_PORT"

# ------------------------------------------------------------------ certificate
if [ "$WITH_TLS" = 1 ]; then
    if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/key.pem" \
            -out "$T/cert.pem" -days 2 -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            > "$T/openssl.out" 2>&1; then
        WITH_TLS=0
        NOTES+=("openssl could not make the self-signed certificate: TLS rows skipped; $(tail -c 300 "$T/openssl.out" | tr '\n' ' ')")
    else
        cat "$T/cert.pem" "$T/key.pem" > "$T/haproxy.pem"
    fi
fi

# ------------------------------------------------------------------ proxies
# Targets: direct, then per proxy (portier nginx haproxy) a plain and a TLS target ("<proxy>_tls").
# PROC[target] = the process key serving it; PID/ERRF per process key.
declare -A PORT PID ERRF ALIVE PROC NAME
NAME[direct]="direct"; PROC[direct]=backend; PID[backend]=$NG_PID; ALIVE[backend]=1
ERRF[backend]="$T/nginx/error.log"; PORT[direct]=$NG_PORT
TARGETS=(direct)

add_targets() {   # proxy plain_port tls_port
    PROC[$1]=$1; NAME[$1]=$1; PORT[$1]=$2; TARGETS+=("$1")
    if [ -n "$3" ]; then
        PROC[$1_tls]=$1; NAME[$1_tls]="$1 TLS"; PORT[$1_tls]=$3; TARGETS+=("$1_tls")
    fi
}
listener_port() {   # stderr_file listener_name
    sed -n "s/.*listener $2 listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p" "$1" | head -1
}

# portier: one process, a plain and (BENCH_TLS=1) a TLS reverse listener, one route to a one-backend pool.
write_portier_conf() {   # with_tls
    local tls_listener=""
    [ "$1" = 1 ] && tls_listener=",
    {\"name\": \"revtls\", \"listen\": [\"127.0.0.1:0\"], \"mode\": \"reverse\",
     \"tls\": {\"cert_file\": \"$T/cert.pem\", \"key_file\": \"$T/key.pem\"}}"
    cat > "$T/portier.json" <<JSON
{
  "workers": $WORKERS,
  "listeners": [
    {"name": "rev", "listen": ["127.0.0.1:0"], "mode": "reverse"}$tls_listener
  ],
  "access_log": {"path": "off"},
  "timeouts": {"header_ms": 10000, "keepalive_ms": 60000, "connect_ms": 5000, "response_ms": 60000},
  "reverse": {
    "routes": [ {"name": "all", "pool": "backend"} ],
    "pools": { "backend": {"backends": ["127.0.0.1:$NG_PORT"]} }
  }${PORTIER_EXTRA:+,
  $PORTIER_EXTRA}
}
JSON
}
start_portier() {
    local tls=$WITH_TLS ok=0 tp=""
    write_portier_conf "$tls"
    if launch_portier rev "$T/portier.json" 10; then
        ok=1
    elif [ "$tls" = 1 ]; then
        NOTES+=("portier with a TLS listener did not become ready, started without it (no portier TLS row); stderr: $(tail -c 400 "$T/portier-rev.stderr" | tr '\n' ' ')")
        tls=0
        write_portier_conf 0
        launch_portier rev "$T/portier.json" 10 && ok=1
    fi
    PID[portier]=$LP_PID; ERRF[portier]="$T/portier-rev.stderr"
    if [ "$ok" != 1 ]; then
        FAILED=1
        NOTES+=("FAILED: portier did not become ready, no portier rows; stderr: $(tail -c 600 "$T/portier-rev.stderr" | tr '\n' ' ')")
        log "FAILED: portier did not start: $(tail -c 600 "$T/portier-rev.stderr")"
        return 1
    fi
    ALIVE[portier]=1
    [ "$tls" = 1 ] && tp=$(listener_port "$T/portier-rev.stderr" revtls)
    [ "$tls" = 1 ] && [ -z "$tp" ] && NOTES+=("portier's TLS listener port not found in its stderr: no portier TLS row")
    add_targets portier "$(listener_port "$T/portier-rev.stderr" rev)" "$tp"
    [ -n "${PORT[portier]}" ] || PORT[portier]=$LP_PORT
    log "portier pid $LP_PID ($WORKERS worker(s)) on 127.0.0.1:${PORT[portier]}${tp:+, TLS on 127.0.0.1:$tp}"
}

# nginx as a reverse proxy: its own prefix $T/rproxy, an upstream block with idle keep-alive connections.
start_nginx_proxy() {
    local d="$T/rproxy" p tp="" temp_paths nginx_v m user_line tls_conf=""
    mkdir -p "$d/tmp"
    p=$(free_port)
    temp_paths="client_body_temp_path $d/tmp/body;"
    nginx_v=$(nginx -V 2>&1)
    for m in proxy fastcgi uwsgi scgi; do
        grep -q -- "--without-http_${m}_module" <<<"$nginx_v" || temp_paths+=" ${m}_temp_path $d/tmp/$m;"
    done
    user_line=""
    [ "$(id -u)" -eq 0 ] && user_line="user root root;"
    if [ "$WITH_TLS" = 1 ]; then
        if grep -q -- '--with-http_ssl_module' <<<"$nginx_v"; then
            tp=$(free_port)
            tls_conf="listen 127.0.0.1:$tp ssl backlog=4096;
        ssl_certificate $T/cert.pem;
        ssl_certificate_key $T/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:SSL:1m;"
        else
            NOTES+=("this nginx has no http_ssl_module: no nginx TLS row")
        fi
    fi
    cat > "$d/nginx.conf" <<EOF
$user_line
worker_processes $WORKERS;
worker_rlimit_nofile $(ulimit -n);
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections 16384; multi_accept on; }
http {
    access_log off;
    tcp_nodelay on;
    keepalive_requests 10000000;
    keepalive_timeout 60s;
    client_header_timeout 10s;
    $temp_paths
    upstream backend {
        server 127.0.0.1:$NG_PORT;
        keepalive 128;
        keepalive_requests 10000000;
        keepalive_timeout 30s;
    }
    server {
        listen 127.0.0.1:$p backlog=4096;
        $tls_conf
        location / {
            proxy_pass http://backend;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Forwarded-Proto \$scheme;
            proxy_set_header X-Forwarded-Host \$http_host;
            proxy_set_header Forwarded "for=\$remote_addr;proto=\$scheme;host=\"\$http_host\"";
            proxy_connect_timeout 5s;
            proxy_send_timeout 60s;
            proxy_read_timeout 60s;
        }
    }
}
EOF
    nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" -g 'daemon off;' > "$d/stdout" 2>&1 &
    PID[nginx]=$!; ERRF[nginx]="$d/error.log"
    PIDS+=("${PID[nginx]}")
    if ! wait_port "$p" 100 || ! kill -0 "${PID[nginx]}" 2>/dev/null; then
        FAILED=1
        NOTES+=("FAILED: nginx (reverse proxy) did not start: $(tail -c 400 "$d/stdout" "$d/error.log" 2>/dev/null | tr '\n' ' ')")
        kill -TERM "${PID[nginx]}" 2>/dev/null
        return 1
    fi
    [ -n "$tp" ] && ! wait_port "$tp" 50 && { NOTES+=("nginx's TLS port does not answer: no nginx TLS row"); tp=""; }
    ALIVE[nginx]=1
    add_targets nginx "$p" "$tp"
    log "nginx (reverse proxy) pid ${PID[nginx]} ($WORKERS worker process(es)) on 127.0.0.1:$p${tp:+, TLS on 127.0.0.1:$tp}"
}

# HAProxy: foreground (-db), one frontend with a plain and a TLS bind, http-reuse to one server, no log.
start_haproxy() {
    local d="$T/haproxy" p tp="" tls_bind=""
    mkdir -p "$d"
    p=$(free_port)
    if [ "$WITH_TLS" = 1 ]; then
        tp=$(free_port)
        tls_bind="bind 127.0.0.1:$tp ssl crt $T/haproxy.pem alpn http/1.1 ssl-min-ver TLSv1.2"
    fi
    cat > "$d/haproxy.cfg" <<EOF
global
    nbthread $WORKERS
    maxconn 4096
    tune.ssl.default-dh-param 2048

defaults
    mode http
    option http-keep-alive
    timeout http-request 10s
    timeout http-keep-alive 60s
    timeout client 60s
    timeout connect 5s
    timeout server 60s

frontend fe
    bind 127.0.0.1:$p
    $tls_bind
    option forwardfor
    http-request set-header X-Forwarded-Proto %[ssl_fc,iif(https,http)]
    http-request set-header X-Forwarded-Host %[req.hdr(host)]
    http-request set-header Forwarded "for=%[src];proto=%[ssl_fc,iif(https,http)];host=\"%[req.hdr(host)]\""
    default_backend be

backend be
    http-reuse always
    server s1 127.0.0.1:$NG_PORT
EOF
    if ! haproxy -c -f "$d/haproxy.cfg" > "$d/check.out" 2>&1; then
        FAILED=1
        NOTES+=("FAILED: haproxy refuses its config: $(tail -c 400 "$d/check.out" | tr '\n' ' ')")
        return 1
    fi
    haproxy -db -f "$d/haproxy.cfg" > "$d/stdout" 2> "$d/stderr" &
    PID[haproxy]=$!; ERRF[haproxy]="$d/stderr"
    PIDS+=("${PID[haproxy]}")
    if ! wait_port "$p" 100 || ! kill -0 "${PID[haproxy]}" 2>/dev/null; then
        FAILED=1
        NOTES+=("FAILED: haproxy did not start: $(tail -c 400 "$d/stderr" | tr '\n' ' ')")
        kill -TERM "${PID[haproxy]}" 2>/dev/null
        return 1
    fi
    [ -n "$tp" ] && ! wait_port "$tp" 50 && { NOTES+=("haproxy's TLS port does not answer: no haproxy TLS row"); tp=""; }
    ALIVE[haproxy]=1
    add_targets haproxy "$p" "$tp"
    log "haproxy pid ${PID[haproxy]} (nbthread $WORKERS) on 127.0.0.1:$p${tp:+, TLS on 127.0.0.1:$tp}"
}

start_portier
start_nginx_proxy
[ "$WITH_HAPROXY" = 1 ] && start_haproxy

# ------------------------------------------------------------------ checks
url_of() {   # target path
    case $1 in
        *_tls) echo "https://127.0.0.1:${PORT[$1]}$2" ;;
        *) echo "http://127.0.0.1:${PORT[$1]}$2" ;;
    esac
}
is_tls() { [[ $1 == *_tls ]]; }

# True while the process serving target t runs; notes its exit (status, stderr tail) once.
alive() {   # target what
    local p=${PROC[$1]} rc
    [ "${ALIVE[$p]:-0}" = 1 ] || return 1
    if ! kill -0 "${PID[$p]}" 2>/dev/null; then
        wait "${PID[$p]}" 2>/dev/null; rc=$?
        ALIVE[$p]=0
        FAILED=1
        NOTES+=("FAILED: $p process EXITED (status $rc) during/after '$2'; stderr tail: $(tail -c 800 "${ERRF[$p]}" 2>/dev/null | tr '\n' ' ')")
        log "FAILED: $p died during $2"
        return 1
    fi
}

declare -A BAD   # BAD[target] = 1: answered something else than the file; left out from then on
# One GET of /1k with curl; the body must be the file, byte for byte, with status 200.
check_body() {   # target what
    local t=$1 out code size tls_args=()
    is_tls "$t" && tls_args=(--cacert "$T/cert.pem")
    out=$(curl -sS --max-time 5 ${tls_args[@]+"${tls_args[@]}"} -D "$T/check-$t.head" -o "$T/check-$t.body" \
        -w '%{http_code} %{size_download}' "$(url_of "$t" /1k)" 2>&1)
    read -r code size <<<"$(tail -1 <<<"$out")"
    if [ "$code" = 200 ] && [ "$size" = "$BODY_SIZE" ] && cmp -s "$T/check-$t.body" "$T/www/1k"; then
        return 0
    fi
    BAD[$t]=1
    FAILED=1
    local msg
    msg="FAILED: ${NAME[$t]} $2: GET $(url_of "$t" /1k) answered '$(tr '\n' ' ' <<<"$out")' (want '200 $BODY_SIZE' and the file's bytes)"
    [ "$size" = "$BODY_SIZE" ] && [ "$code" = 200 ] && msg+=", same size but different bytes"
    msg+="; head: $(head -c 300 "$T/check-$t.head" 2>/dev/null | tr '\r\n' '  '); body starts: $(head -c 120 "$T/check-$t.body" 2>/dev/null | tr -c '[:print:]' '.')"
    NOTES+=("$msg")
    log "$msg"
    alive "$t" "$2"
    return 1
}

# Negotiated TLS version and cipher per TLS target (shown in the header: all should match).
declare -A TLSINFO
for t in "${TARGETS[@]}"; do
    is_tls "$t" || continue
    TLSINFO[$t]=$(curl -sv --max-time 5 --cacert "$T/cert.pem" -o /dev/null "$(url_of "$t" /1k)" 2>&1 \
        | sed -n 's/^\* SSL connection using //p' | head -1)
done

for t in "${TARGETS[@]}"; do
    check_body "$t" "first check" && log "check ${NAME[$t]}: 200, $BODY_SIZE bytes, same bytes as the file"
done

# ------------------------------------------------------------------ measurements
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
# CPU ticks (user + system, all threads) of what serves a target: the proxy process (nginx: its
# workers), for direct the backend nginx's workers.
cpu_ticks() {   # target
    local p=${PROC[$1]} pid sum=0 w n
    pid=${PID[$p]}
    if [ "$p" = backend ] || [ "$p" = nginx ]; then
        for w in $(pgrep -P "$pid"); do n=$(cpu_ticks_pid "$w"); sum=$((sum + ${n:-0})); done
        echo "$sum"
    else
        cpu_ticks_pid "$pid"
    fi
}
# connections accepted and requests served so far by the backend (stub_status), minus the asking one
backend_counts() {
    curl -s --max-time 2 "http://127.0.0.1:$NG_PORT/nginx_status" | awk 'NR==3 { print $1 - 1, $3 - 1 }'
}

# CPU ticks of the whole machine since boot: busy (user nice system irq softirq steal) and all
machine_ticks() { awk 'NR == 1 { print $2 + $3 + $4 + $7 + $8 + $9, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat; }
# CPU time of this shell's finished children (bash `times`, second line), in ticks
children_ticks() {   # file written by `times`
    awk -v hz="$CLK_TCK" 'NR == 2 { t = 0; for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
        printf "%.0f", t * hz }' "$1"
}
backend_ticks() { local w sum=0 n; for w in $(pgrep -P "$NG_PID"); do n=$(cpu_ticks_pid "$w"); sum=$((sum + ${n:-0})); done; echo "$sum"; }

wrk_once() {   # target seconds
    BENCH_TARGET="" timeout $(($2 + 30)) wrk -t1 -c"$CONNS" -d"$2s" --timeout 5s \
        -s "$HERE/wrk_report.lua" "$(url_of "$1" /1k)" 2>&1
}

declare -A R   # R[metric:target] = space-separated per-round values
# One measurement of target t (round r, attempt a): checks, warm-up, timed wrk run. Sets MEAS to
# "rps p99ms cpu conns bytes_per_answer other" and MEAS_OTHER; returns 1 when there is no result.
measure() {   # target round attempt
    local t=$1 r=$2 a=$3 out line req dur p99 rps p99ms c0 c1 a0 q0 a1 q1 b0 b1 m0 mt0 m1 mt1 other cpu conns breq bpr errs e n
    alive "$t" "round $r" || return 1
    check_body "$t" "check before round $r" || return 1
    [ "$WARM" != 0 ] && wrk_once "$t" "$WARM" > /dev/null
    c0=$(cpu_ticks "$t"); read -r a0 q0 <<<"$(backend_counts)"; b0=$(backend_ticks)
    read -r m0 mt0 < <(machine_ticks); times > "$T/times0"
    out=$(wrk_once "$t" "$SECS")
    times > "$T/times1"; read -r m1 mt1 < <(machine_ticks)
    c1=$(cpu_ticks "$t"); read -r a1 q1 <<<"$(backend_counts)"; b1=$(backend_ticks)
    # share of the machine's CPU time used by anything but wrk, the backend and this proxy
    [ "$t" = direct ] && b1=$b0
    other=$(awk -v m="$((m1 - m0))" -v mt="$((mt1 - mt0))" -v p="$((c1 - c0))" -v b="$((b1 - b0))" \
        -v w="$(( $(children_ticks "$T/times1") - $(children_ticks "$T/times0") ))" \
        'BEGIN{ o = m - p - b - w; if (o < 0) o = 0; if (mt > 0) printf "%.0f", 100 * o / mt }')
    echo "$out" > "$T/wrk-$t-$r.$a.out"
    line=$(grep '^BENCH ' <<<"$out" | head -1)
    if [ -z "$line" ]; then
        NOTES+=("${NAME[$t]} round $r: wrk gave no result: $(tail -c 300 <<<"$out" | tr '\n' ' ')")
        alive "$t" "round $r"
        return 1
    fi
    req=$(field requests "$line"); dur=$(field duration_us "$line"); p99=$(field p99_us "$line")
    rps=$(awk -v r="$req" -v d="$dur" 'BEGIN{ if (d>0) printf "%.0f", r/(d/1e6) }')
    p99ms=$(awk -v p="$p99" 'BEGIN{ printf "%.2f", p/1000 }')
    cpu=$(awk -v a="$c0" -v b="$c1" -v n="$req" -v hz="$CLK_TCK" 'BEGIN{ if (a!="" && b!="" && n>0) printf "%.1f", (b-a)*1e6/hz/n }')
    conns=$(awk -v a="$a0" -v b="$a1" -v n="$req" 'BEGIN{ if (a!="" && b!="" && n>0) printf "%.2f", (b-a)*1000/n }')
    breq=$(awk -v a="$q0" -v b="$q1" -v n="$req" 'BEGIN{ if (a!="" && b!="" && n>0) printf "%.3f", (b-a)/n }')
    bpr=$(awk -v b="$(field bytes "$line")" -v n="$req" 'BEGIN{ if (n>0) printf "%.0f", b/n }')
    MEAS="$rps $p99ms ${cpu:--} ${conns:--} ${bpr:--} ${other:-0}"; MEAS_OTHER=${other:-0}
    errs=""
    for e in connect read write status timeout; do
        n=$(field "err_$e" "$line")
        [ -n "$n" ] && [ "$n" != 0 ] && errs+=" $e=$n"
    done
    if [ -n "$errs" ]; then
        NOTES+=("${NAME[$t]} round $r: wrk errors:$errs (status = non-2xx/3xx answers) of $req requests")
        [[ $errs == *status=* ]] && FAILED=1
    fi
    # every answer should have come from the backend (a proxy that answers by itself is not measured)
    if [ "$t" != direct ] && [ -n "$breq" ] && awk -v b="$breq" 'BEGIN{ exit !(b < 0.98) }'; then
        FAILED=1
        NOTES+=("FAILED: ${NAME[$t]} round $r: the backend served only $breq requests per request wrk counted")
    fi
    log "  round $r ${NAME[$t]}: $rps req/s, p99 $p99ms ms, ${cpu:-?} CPU us/req, backend: ${conns:-?} conns/1k req, ${breq:-?} req/req, $bpr bytes/answer, ${other:-?}% CPU elsewhere${errs:+, wrk errors:$errs}"
    alive "$t" "round $r" || return 1
    check_body "$t" "check after round $r"
}

log "1 KiB keep-alive GET, wrk -t1 -c$CONNS, ${SECS}s (+${WARM}s warm-up) x $ROUNDS round(s); targets: ${TARGETS[*]}"
for r in $(seq 1 "$ROUNDS"); do
    order=("${TARGETS[@]}")
    if ((r % 2 == 0)); then   # even rounds run the targets in reverse order
        order=()
        for ((i = ${#TARGETS[@]} - 1; i >= 0; i--)); do order+=("${TARGETS[$i]}"); done
    fi
    log "round $r of $ROUNDS: ${order[*]}"
    for t in "${order[@]}"; do
        [ "${BAD[$t]:-0}" = 1 ] && continue
        # a run during which other processes took CPU is repeated (bounded); the least disturbed one is kept
        best=""; best_other=""
        for a in $(seq 0 "$BUSY_RETRIES"); do
            measure "$t" "$r" "$a" || break
            if [ -z "$best" ] || [ "$MEAS_OTHER" -lt "$best_other" ]; then best=$MEAS; best_other=$MEAS_OTHER; fi
            [ "$MEAS_OTHER" -lt "$BUSY_PCT" ] && break
            if [ "$a" -lt "$BUSY_RETRIES" ]; then
                log "    ${NAME[$t]}: ${MEAS_OTHER}% of the CPU went elsewhere, measuring again in 3 s"
                sleep 3
            fi
        done
        if [ -n "$best" ] && [ "${BAD[$t]:-0}" != 1 ]; then
            read -r v_rps v_p99 v_cpu v_conns v_bpr v_other <<<"$best"
            R[rps:$t]+="$v_rps "; R[p99:$t]+="$v_p99 "; R[cpu:$t]+="$v_cpu "; R[conns:$t]+="$v_conns "
            R[bpr:$t]+="$v_bpr "; R[other:$t]+="$v_other "
            [ "$v_other" -ge "$BUSY_PCT" ] && \
                NOTES+=("${NAME[$t]} round $r: ${v_other}% of the machine's CPU time went to other processes during the kept run (figures skewed)")
        fi
        sleep 0.5   # let the closed connections settle
    done
done

# ------------------------------------------------------------------ optional profile of portier
PERF_OUT=()
perf_top() {   # data sort_keys lines
    timeout 120 perf report -i "$1" --no-children --stdio --sort "$2" -g none 2>/dev/null \
        | grep -v '^#' | grep -v '^[[:space:]]*$' | sed 's/[[:space:]-]*$//' | cut -c1-160 | head -"$3"
}
if [ "$WITH_PERF" = 1 ]; then
    for t in portier portier_tls; do
        if [ -z "${PORT[$t]:-}" ] || [ "${BAD[$t]:-0}" = 1 ] || ! alive "$t" profile; then continue; fi
        log "perf: profiling ${NAME[$t]} (pid ${PID[portier]}) during one ${SECS}s wrk run"
        timeout $((SECS + 30)) perf record -F 999 -g -o "$T/perf-$t.data" -p "${PID[portier]}" -- sleep "$SECS" \
            > "$T/perf-$t.record" 2>&1 &
        perf_pid=$!
        PIDS+=("$perf_pid")
        wrk_once "$t" "$SECS" > "$T/wrk-$t-perf.out"
        wait "$perf_pid"
        PERF_OUT+=("${NAME[$t]} ($(sed -n 's/.*(\([0-9]* samples\)).*/\1/p' "$T/perf-$t.record")), self time by binary:")
        while IFS= read -r l; do PERF_OUT+=("  $l"); done < <(perf_top "$T/perf-$t.data" dso 8)
        PERF_OUT+=("  top 25 symbols by self time (perf report --no-children --sort dso,symbol):")
        while IFS= read -r l; do PERF_OUT+=("  $l"); done < <(perf_top "$T/perf-$t.data" dso,symbol 25)
    done
fi

# ------------------------------------------------------------------ table
median() {   # values... ("-" ignored)
    printf '%s\n' "$@" | grep -v '^-$' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 }
        END { if (NR == 0) print "-"; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="" || b=="" || a=="-" || b=="-" || b+0==0) print "-"; else printf "%.2f", a/b }'; }
# The median of the rounds' own ratios (a's value in round k over b's in round k): the two targets
# of one round ran within a minute of each other, so a machine that drifts over the run moves both.
paired_ratio() {   # "a per round" "b per round" ("-" when the rounds do not pair up)
    local m
    # shellcheck disable=SC2046   # one ratio per word
    m=$(median $(awk -v a="$1" -v b="$2" 'BEGIN {
        na = split(a, x, " "); nb = split(b, y, " ")
        if (na != nb) exit
        for (i = 1; i <= na; i++) if (x[i] != "-" && y[i] != "-" && y[i] + 0 != 0) print x[i] / y[i] }'))
    [ "$m" = "-" ] && { echo "-"; return; }
    printf '%.2f' "$m"
}
declare -A M
for t in "${TARGETS[@]}"; do
    for m in rps p99 cpu conns bpr other; do
        # shellcheck disable=SC2086
        M[$m:$t]=$(median ${R[$m:$t]:-})
    done
    [ "${M[rps:$t]}" != "-" ] && M[rps:$t]=$(printf '%.0f' "${M[rps:$t]}")
    [ "${M[p99:$t]}" != "-" ] && M[p99:$t]=$(printf '%.2f' "${M[p99:$t]}")
done

echo
echo "portier reverse proxy benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) cores  $(uname -r)"
echo "  $("$PORTIER_BIN" --version 2>/dev/null | head -1 || echo 'portier ?') ($PORTIER_BIN), nginx $(nginx -v 2>&1 | sed 's/.*\///')$([ "$WITH_HAPROXY" = 1 ] && haproxy -v 2>/dev/null | head -1 | awk '{ print ", haproxy " $3 }'), $(wrk -v 2>&1 | head -1 | awk '{ print "wrk " $2 }')"
echo "  1 KiB keep-alive GET: wrk -t1 -c$CONNS -d${SECS}s (+${WARM}s warm-up), $ROUNDS round(s), median per target; odd rounds in table order, even rounds reversed"
echo "  backend: nginx, 1 worker, sendfile, access log off; every proxy: $WORKERS worker(s)/thread(s), access log off, keep-alive to the backend"
for t in "${TARGETS[@]}"; do
    [ -n "${TLSINFO[$t]:-}" ] && echo "  ${NAME[$t]}: ${TLSINFO[$t]}"
done
echo "  CPU idle before the run: ${IDLE_START}%, after: $(cpu_idle_pct)% (below ~90% other work skews the figures)"
echo
fmt="%-14s %10s %8s %9s %11s %10s %12s %9s  %s\n"
printf "$fmt" target "req/s" "p99 ms" "% direct" "CPU us/req" "bytes/ans" "bk conns/1k" "elsewhere" "per round req/s | p99 ms | elsewhere %"
for t in "${TARGETS[@]}"; do
    if [ "${BAD[$t]:-0}" = 1 ]; then
        printf "%-14s %s\n" "${NAME[$t]}" "FAILED (wrong answer, see notes)"
        continue
    fi
    pct=$(awk -v a="${M[rps:$t]}" -v b="${M[rps:direct]}" 'BEGIN{ if (a=="-" || b=="-" || b+0==0) print "-"; else printf "%.0f%%", 100*a/b }')
    printf "$fmt" "${NAME[$t]}" "${M[rps:$t]}" "${M[p99:$t]}" "$pct" "${M[cpu:$t]}" "${M[bpr:$t]}" "${M[conns:$t]}" \
        "${M[other:$t]}%" "${R[rps:$t]:-- }| ${R[p99:$t]:-- }| ${R[other:$t]:-- }"
done
echo
rfmt="%-26s %10s %10s\n"
printf "$rfmt" "ratio (median / median)" plain TLS
for ref in nginx haproxy; do
    [ -n "${PORT[$ref]:-}" ] || continue
    printf "$rfmt" "portier/$ref req/s" "$(ratio "${M[rps:portier]:-}" "${M[rps:$ref]:-}")" \
        "$(ratio "${M[rps:portier_tls]:-}" "${M[rps:${ref}_tls]:-}")"
    printf "$rfmt" "portier/$ref p99" "$(ratio "${M[p99:portier]:-}" "${M[p99:$ref]:-}")" \
        "$(ratio "${M[p99:portier_tls]:-}" "${M[p99:${ref}_tls]:-}")"
done
printf "$rfmt" "ratio (median of rounds)" plain TLS
for ref in nginx haproxy; do
    [ -n "${PORT[$ref]:-}" ] || continue
    for m in rps p99; do
        printf "$rfmt" "portier/$ref ${m/rps/req/s}" "$(paired_ratio "${R[$m:portier]:-}" "${R[$m:$ref]:-}")" \
            "$(paired_ratio "${R[$m:portier_tls]:-}" "${R[$m:${ref}_tls]:-}")"
    done
done
echo "  req/s above 1 = portier serves more; p99 below 1 = portier answers sooner"
echo "  median of rounds: the median of each round's own ratio; the targets of a round run close together in time,"
echo "    so it is less moved by a machine whose speed drifts during the run than the ratio of the medians"
echo "  CPU us/req: user+system time of the proxy process (nginx: its workers; direct: the backend's worker) / requests"
echo "  bk conns/1k: connections the backend accepted per 1000 requests (near 0 = backend connections reused)"
echo "  elsewhere: share of the machine's CPU time used by other processes than wrk, the backend and the proxy during the run;"
echo "    a run with $BUSY_PCT% or more is repeated (at most $BUSY_RETRIES times) and the least disturbed one kept"
echo "  bytes/ans: bytes wrk read per answer, head included (the body is $BODY_SIZE bytes; checked with curl before and after every run)"

if ((${#PERF_OUT[@]})); then
    echo
    printf '%s\n' "${PERF_OUT[@]}"
fi
[ "$IDLE_START" != "?" ] && [ "$IDLE_START" -lt 90 ] && \
    NOTES+=("CPU only ${IDLE_START}% idle before the run: the figures are skewed by other work")
if ((${#NOTES[@]})); then
    echo
    echo "notes:"
    for n in "${NOTES[@]}"; do echo "  - $n"; done
fi
if [ "$FAILED" = 1 ]; then
    log "FAILED: a target answered something else than the 1 KiB file, a proxy exited or did not start (see notes)"
    exit 1
fi
exit 0
