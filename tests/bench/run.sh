#!/usr/bin/env bash
# Benchmark: direct nginx vs squid vs portier, all on 127.0.0.1, in one run.
# Not a test: it prints a table with ratios and the targets. See tests/bench/README.md.
#
# Env knobs: BENCH_SECONDS (10) BENCH_WARMUP_SECONDS (2) BENCH_WRK_CONNECTIONS (50)
#            BENCH_TUNNEL_CONCURRENCY (20) BENCH_IDLE_TUNNELS (1000) BENCH_CONNECT_RUNS (3)
#            BENCH_ACCESS_LOG (1) PORTIER (build/portier) BENCH_KEEP_TMP (0) BENCH_PORTIER_CONFIG_EXTRA ()

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # shell options, PATH, HERE, ROOT, SECS, WARM, PORTIER_BIN, KEEP_TMP
WRK_CONNS=${BENCH_WRK_CONNECTIONS:-50}
TUN_CONC=${BENCH_TUNNEL_CONCURRENCY:-20}
IDLE_N=${BENCH_IDLE_TUNNELS:-1000}
CONNECT_RUNS=${BENCH_CONNECT_RUNS:-3}
ACCESS_LOG_VARIANT=${BENCH_ACCESS_LOG:-1}
PORTIER_EXTRA=${BENCH_PORTIER_CONFIG_EXTRA:-}   # extra top-level JSON keys, e.g. "origin_pool": {"max_idle_per_host": 64}

log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

# ------------------------------------------------------------------ packages
ensure_packages nginx squid wrk curl python3

# ------------------------------------------------------------------ processes and cleanup
bench_start portier-bench

# ------------------------------------------------------------------ nginx
NG_PORT=$(free_port)
mkdir -p "$T/www"
head -c 1024 /dev/zero | tr '\0' 'a' > "$T/www/1k"
head -c 102400 /dev/zero | tr '\0' 'b' > "$T/www/100k"
truncate -s 1G "$T/www/1g"   # sparse: no disk used, sendfile reads zero pages
cat "$T/www/1g" > /dev/null  # fill the page cache now, not during the first timed download
start_nginx
log "nginx pid $NG_PID on 127.0.0.1:$NG_PORT"

# ------------------------------------------------------------------ squid
if ! start_squid; then
    log "FATAL: squid did not start"; cat "$T/squid/stdout" "$T/squid/cache.log" >&2; exit 1
fi
log "squid pid $SQ_PID on 127.0.0.1:$SQ_PORT ($(squid -v | head -1))"

# ------------------------------------------------------------------ portier
# columns: direct squid p1 (1 worker) pN (workers 0 = all cores) p1log (1 worker, access log to file)
declare -A PORT PID ALIVE NAME
NAME[direct]="direct"; NAME[squid]="squid"; NAME[p1]="portier(1 worker)"
NAME[pN]="portier(all cores)"; NAME[p1log]="portier(1 worker, access log)"
PORT[direct]=$NG_PORT; PID[direct]=$NG_PID; ALIVE[direct]=1
PORT[squid]=$SQ_PORT;  PID[squid]=$SQ_PID;  ALIVE[squid]=1
NOTES=()

start_portier() {   # key workers access_log_path
    local key=$1 workers=$2 alog=$3 cfg="$T/portier-$1.json"
    ALIVE[$key]=0
    if [ ! -x "$PORTIER_BIN" ]; then
        NOTES+=("${NAME[$key]}: $PORTIER_BIN not found or not executable")
        return 1
    fi
    cat > "$cfg" <<EOF
{
  "workers": $workers,
  "listeners": [ {"name": "bench", "listen": ["127.0.0.1:0"], "mode": "forward"} ],
  "access_log": {"path": "$alog"},
  "forward": {"connect_ports": [443, $NG_PORT]},
  "ssrf": {"allow": ["127.0.0.0/8"]}${PORTIER_EXTRA:+,
  $PORTIER_EXTRA}
}
EOF
    if ! launch_portier "$key" "$cfg" 10; then
        PID[$key]=$LP_PID
        NOTES+=("${NAME[$key]}: did not become ready; stderr: $(tail -c 400 "$T/portier-$key.stderr" | tr '\n' ' ')")
        return 1
    fi
    PID[$key]=$LP_PID
    PORT[$key]=$LP_PORT
    ALIVE[$key]=1
    log "${NAME[$key]} pid ${PID[$key]} on 127.0.0.1:$LP_PORT"
}

# Marks a portier instance dead (with its exit status and stderr tail) if it has exited.
check_alive() {   # key what
    local key=$1 what=$2 rc
    [ "${ALIVE[$key]}" = 1 ] || return 1
    [ "$key" = direct ] && return 0
    if ! kill -0 "${PID[$key]}" 2>/dev/null; then
        wait "${PID[$key]}" 2>/dev/null; rc=$?
        ALIVE[$key]=0
        NOTES+=("${NAME[$key]}: process EXITED (status $rc) during/after '$what'; stderr tail: $(tail -c 600 "$T/portier-$key.stderr" 2>/dev/null | tr '\n' ' ')")
        log "${NAME[$key]} died during $what"
        return 1
    fi
    return 0
}

start_portier p1 1 off
start_portier pN 0 off
[ "$ACCESS_LOG_VARIANT" = 1 ] && start_portier p1log 1 "$T/portier-p1log-access.log"

KEYS_PROXY=(squid p1 pN)

# ------------------------------------------------------------------ sanity
sanity() {   # key
    local key=$1 out1 out2
    out1=$(curl -sS -o /dev/null --max-time 5 -x "http://127.0.0.1:${PORT[$key]}" \
        -w '%{http_code} %{size_download}' "http://127.0.0.1:$NG_PORT/1k" 2>&1)
    out2=$(curl -sS -o /dev/null --max-time 5 -p -x "http://127.0.0.1:${PORT[$key]}" \
        -w '%{http_connect} %{http_code} %{size_download}' "http://127.0.0.1:$NG_PORT/1k" 2>&1)
    [ "$out1" = "200 1024" ] || NOTES+=("${NAME[$key]}: sanity absolute-form GET /1k gave '$out1' (want '200 1024')")
    [ "$out2" = "200 200 1024" ] || NOTES+=("${NAME[$key]}: sanity CONNECT + GET /1k gave '$out2' (want '200 200 1024')")
    log "sanity ${NAME[$key]}: forward '$out1', connect '$out2'"
}
for k in squid p1 pN p1log; do
    [ "${ALIVE[$k]:-0}" = 1 ] && sanity "$k" && check_alive "$k" sanity
done

declare -A V    # V[row:key] = value

# ------------------------------------------------------------------ (e) idle tunnels (first: fresh processes)
idle_tunnels() {   # key
    local key=$1 out
    check_alive "$key" "idle tunnels" || return
    log "(e) $IDLE_N idle tunnels via ${NAME[$key]}"
    out=$(timeout 120 python3 "$HERE/tunnels.py" idle --proxy "127.0.0.1:${PORT[$key]}" \
        --target "127.0.0.1:$NG_PORT" --pid "${PID[$key]}" --count "$IDLE_N" 2> "$T/idle-$key.err")
    log "    $out"
    [ -s "$T/idle-$key.err" ] && NOTES+=("${NAME[$key]} idle tunnels: $(head -c 400 "$T/idle-$key.err" | tr '\n' ';')")
    local opened used
    opened=$(sed -n 's/.*opened=\([0-9]*\).*/\1/p' <<<"$out")
    used=$(sed -n 's/.* used=\([0-9]*\).*/\1/p' <<<"$out")
    if [ -n "$opened" ] && [ "$opened" -gt 0 ]; then
        V[idle:$key]=$(sed -n 's/.*per_tunnel_idle_kib=\([-0-9.]*\).*/\1/p' <<<"$out")
        V[used:$key]=$(sed -n 's/.*per_tunnel_used_kib=\([-0-9.]*\).*/\1/p' <<<"$out")
        [ "$opened" -lt "$IDLE_N" ] && NOTES+=("${NAME[$key]}: only $opened of $IDLE_N idle tunnels opened")
        [ "$used" -lt "$opened" ] && NOTES+=("${NAME[$key]}: only $used of $opened tunnels answered a GET")
        NOTES+=("${NAME[$key]} RSS: $(sed 's/.*\(rss_before_kib=[0-9]*\) \(rss_idle_kib=[0-9]*\) \(rss_used_kib=[0-9]*\).*/\1 \2 \3/' <<<"$out")")
    fi
    sleep 1   # let the proxy close the tunnels before the next load
    check_alive "$key" "idle tunnels"
}
for k in "${KEYS_PROXY[@]}"; do idle_tunnels "$k"; done

# ------------------------------------------------------------------ (a)(b) wrk
wrk_once() {   # key path seconds -> prints BENCH line
    local key=$1 path=$2 secs=$3 url target=""
    if [ "$key" = direct ]; then
        url="http://127.0.0.1:$NG_PORT$path"
    else
        url="http://127.0.0.1:${PORT[$key]}/"
        target="http://127.0.0.1:$NG_PORT$path"
    fi
    BENCH_TARGET="$target" timeout $((secs + 30)) wrk -t1 -c"$WRK_CONNS" -d"${secs}s" --timeout 5s \
        -s "$HERE/wrk_report.lua" "$url" 2>&1
}


CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
# CPU time (ticks, all threads) of the process that serves a column: nginx's worker for direct.
cpu_ticks() {   # key
    local pid=${PID[$1]} w
    if [ "$1" = direct ]; then
        w=$(pgrep -P "$NG_PID" | head -1)
        [ -n "$w" ] && pid=$w
    fi
    cpu_ticks_pid "$pid"
}
# connections nginx has accepted so far (stub_status), minus the one used to ask
nginx_accepts() {
    curl -s --max-time 2 "http://127.0.0.1:$NG_PORT/nginx_status" | awk 'NR==3 { print $1 - 1 }'
}
# sets C_US_PER_OP and C_ORIGIN_PER_K from counters taken before (t0 a0) and now, for ops done
cost_since() {   # key t0 a0 ops
    local t1 a1
    t1=$(cpu_ticks "$1"); a1=$(nginx_accepts)
    C_US_PER_OP=$(awk -v a="$2" -v b="$t1" -v n="$4" -v hz="$CLK_TCK" \
        'BEGIN{ if (a!="" && b!="" && n>0) printf "%.1f", (b-a)*1e6/hz/n }')
    C_ORIGIN_PER_K=$(awk -v a="$3" -v b="$a1" -v n="$4" \
        'BEGIN{ if (a!="" && b!="" && n>0) printf "%.1f", (b-a)*1000/n }')
}

wrk_bench() {   # key path label -> sets W_RPS W_P99MS W_MBS
    local key=$1 path=$2 label=$3 out line req dur p99 errs e
    W_RPS=""; W_P99MS=""; W_MBS=""; W_CPU=""; W_ORIGIN=""
    check_alive "$key" "$label" || return 1
    if [ "$WARM" != 0 ]; then wrk_once "$key" "$path" "$WARM" > /dev/null; fi
    local t0 a0
    t0=$(cpu_ticks "$key"); a0=$(nginx_accepts)
    out=$(wrk_once "$key" "$path" "$SECS")
    echo "$out" > "$T/wrk-$key-${path#/}.out"
    line=$(grep '^BENCH ' <<<"$out" | head -1)
    if [ -z "$line" ]; then
        NOTES+=("${NAME[$key]} $label: wrk gave no result: $(tail -c 300 <<<"$out" | tr '\n' ' ')")
        check_alive "$key" "$label"
        return 1
    fi
    req=$(field requests "$line"); dur=$(field duration_us "$line"); p99=$(field p99_us "$line")
    W_RPS=$(awk -v r="$req" -v d="$dur" 'BEGIN{ if (d>0) printf "%.0f", r/(d/1e6) }')
    W_P99MS=$(awk -v p="$p99" 'BEGIN{ printf "%.2f", p/1000 }')
    W_MBS=$(awk -v r="$req" -v d="$dur" -v s="$4" 'BEGIN{ if (d>0) printf "%.1f", r*s/(d/1e6)/1e6 }')
    cost_since "$key" "$t0" "$a0" "$req"
    W_CPU=$C_US_PER_OP; W_ORIGIN=$C_ORIGIN_PER_K
    errs=""
    for e in connect read write status timeout; do
        local n; n=$(field "err_$e" "$line")
        [ -n "$n" ] && [ "$n" != 0 ] && errs+=" $e=$n"
    done
    [ -n "$errs" ] && NOTES+=("${NAME[$key]} $label: wrk errors:$errs (status = non-2xx/3xx answers) of $req requests")
    log "    ${NAME[$key]} $label: $W_RPS req/s, p99 $W_P99MS ms, $W_MBS MB/s, ${W_CPU} CPU us/req, ${W_ORIGIN} origin conns/1k req${errs:+, errors:$errs}"
    check_alive "$key" "$label"
    return 0
}

log "(a) 1 KiB GET, wrk -t1 -c$WRK_CONNS, ${SECS}s (+${WARM}s warm-up)"
for k in direct "${KEYS_PROXY[@]}"; do
    if wrk_bench "$k" /1k "1 KiB GET" 1024; then
        V[rps1k:$k]=$W_RPS; V[p99:$k]=$W_P99MS; V[cpu1k:$k]=$W_CPU; V[orig1k:$k]=$W_ORIGIN
    fi
done
ALOG_RESULT=""
if [ "${ALIVE[p1log]:-0}" = 1 ]; then
    if wrk_bench p1log /1k "1 KiB GET (access log on)" 1024; then
        lines=$(wc -l < "$T/portier-p1log-access.log" 2>/dev/null || echo 0)
        ALOG_RESULT="$W_RPS req/s, p99 $W_P99MS ms; access log lines written: $lines"
        V[rps1klog:p1]=$W_RPS
    fi
fi

log "(b) 100 KiB GET, wrk -t1 -c$WRK_CONNS, ${SECS}s"
for k in direct "${KEYS_PROXY[@]}"; do
    if wrk_bench "$k" /100k "100 KiB GET" 102400; then
        V[mbs100k:$k]=$W_MBS; V[p99_100k:$k]=$W_P99MS; V[cpu100k:$k]=$W_CPU
    fi
done

# ------------------------------------------------------------------ (c) CONNECT throughput
log "(c) 1 GiB download with curl, best of $CONNECT_RUNS"
curl -s -o /dev/null --max-time 60 "http://127.0.0.1:$NG_PORT/1g"   # untimed warm-up
for k in direct "${KEYS_PROXY[@]}"; do
    check_alive "$k" "CONNECT 1 GiB" || continue
    best=""
    for i in $(seq 1 "$CONNECT_RUNS"); do
        if [ "$k" = direct ]; then
            out=$(curl -sS -o /dev/null --max-time 60 -w '%{http_code} %{size_download} %{speed_download}' \
                "http://127.0.0.1:$NG_PORT/1g" 2>&1)
        else
            out=$(curl -sS -o /dev/null --max-time 60 -p -x "http://127.0.0.1:${PORT[$k]}" \
                -w '%{http_code} %{size_download} %{speed_download}' "http://127.0.0.1:$NG_PORT/1g" 2>&1)
        fi
        read -r code size speed <<<"$(tail -1 <<<"$out")"
        if [ "$code" != 200 ] || [ "$size" != 1073741824 ]; then
            NOTES+=("${NAME[$k]} CONNECT 1 GiB run $i: '$(tr '\n' ' ' <<<"$out")' (want 200 and 1073741824 bytes)")
        fi
        mbs=$(awk -v s="${speed:-0}" 'BEGIN{ printf "%.1f", s/1e6 }')
        log "    ${NAME[$k]} run $i: $mbs MB/s ($code, $size bytes)"
        best=$(awk -v a="${best:-0}" -v b="$mbs" 'BEGIN{ print (b>a)?b:a }')
        check_alive "$k" "CONNECT 1 GiB" || break
    done
    [ -n "$best" ] && V[connect:$k]=$best
done

# ------------------------------------------------------------------ (d) fresh tunnels per second
RATE_TOOL=""
if command -v cc >/dev/null 2>&1 && cc -O2 -o "$T/tunnel_rate" "$HERE/tunnel_rate.c" 2> "$T/cc.err"; then
    RATE_TOOL="tunnel_rate.c (C, epoll, 1 process, $TUN_CONC concurrent)"
else
    RATE_TOOL="tunnels.py (Python asyncio, 2 processes x $((TUN_CONC / 2)) concurrent; Python may be the bottleneck)"
fi
rate_run() {   # key seconds -> prints result line
    local key=$1 secs=$2 mode=""
    [ "$key" = direct ] && mode=direct
    if [ -x "$T/tunnel_rate" ]; then
        timeout $((secs + 20)) "$T/tunnel_rate" 127.0.0.1 "${PORT[$key]}" "127.0.0.1:$NG_PORT" /1k \
            "$TUN_CONC" "$secs" $mode
    else
        local half=$((TUN_CONC / 2)) f1="$T/rate1" f2="$T/rate2"
        [ "$half" -ge 1 ] || half=1
        timeout $((secs + 20)) python3 "$HERE/tunnels.py" rate --proxy "127.0.0.1:${PORT[$key]}" \
            --target "127.0.0.1:$NG_PORT" ${mode:+--direct} --concurrency "$half" --seconds "$secs" > "$f1" &
        timeout $((secs + 20)) python3 "$HERE/tunnels.py" rate --proxy "127.0.0.1:${PORT[$key]}" \
            --target "127.0.0.1:$NG_PORT" ${mode:+--direct} --concurrency "$half" --seconds "$secs" > "$f2"
        wait
        awk '{ for (i=1;i<=NF;i++) { split($i,kv,"="); s[kv[1]]+=kv[2] } }
             END { printf "ok=%d errors=%d err_connect=%d err_proxy=%d err_response=%d err_timeout=%d seconds=%.3f rate=%.1f\n",
                   s["ok"], s["errors"], s["err_connect"], s["err_proxy"], s["err_response"], s["err_timeout"], s["seconds"]/NR, s["rate"] }' "$f1" "$f2"
    fi
}
log "(d) fresh tunnels/s, each with one GET /1k (Connection: close), tool: $RATE_TOOL"
for k in direct "${KEYS_PROXY[@]}"; do
    check_alive "$k" "fresh tunnels" || continue
    [ "$WARM" != 0 ] && rate_run "$k" "$WARM" > /dev/null
    t0=$(cpu_ticks "$k")
    out=$(rate_run "$k" "$SECS")
    rate=$(field rate "$out"); errs=$(field errors "$out")
    cost_since "$k" "$t0" "" "$(field ok "$out")"
    V[cputun:$k]=$C_US_PER_OP
    log "    ${NAME[$k]}: $out, ${C_US_PER_OP} CPU us/tunnel"
    [ -n "$rate" ] && V[tunnels:$k]=$(awk -v r="$rate" 'BEGIN{ printf "%.0f", r }')
    [ -n "$errs" ] && [ "$errs" != 0 ] && NOTES+=("${NAME[$k]} fresh tunnels: $out")
    check_alive "$k" "fresh tunnels"
    sleep 1
done

# ------------------------------------------------------------------ table
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="" || b=="" || b+0==0) print "-"; else printf "%.2f", a/b }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN{ exit !(a!="" && b!="" && a+0 >= b+0) }'; }

verdict() {   # row -> met / MISSED / n/a
    local row=$1 p=${V[$1:p1]:-} d=${V[$1:direct]:-} s=${V[$1:squid]:-}
    [ -n "$p" ] || { echo "n/a"; return; }
    case $row in
        rps1k)
            [ -n "$d" ] && [ -n "$s" ] || { echo "n/a"; return; }
            ge "$(ratio "$p" "$d")" 0.6 && ge "$(ratio "$p" "$s")" 3 && echo met || echo MISSED ;;
        p99)
            [ -n "$s" ] || { echo "n/a"; return; }
            ge "$s" "$p" && echo met || echo MISSED ;;
        mbs100k)
            [ -n "$d" ] || { echo "n/a"; return; }
            ge "$(ratio "$p" "$d")" 0.5 && echo met || echo MISSED ;;
        connect)
            [ -n "$d" ] || { echo "n/a"; return; }
            ge "$(ratio "$p" "$d")" 0.85 && echo met || echo MISSED ;;
        tunnels)
            [ -n "$d" ] || { echo "n/a"; return; }
            ge "$(ratio "$p" "$d")" 0.6 && echo met || echo MISSED ;;
        idle|used)
            ge 8 "$p" && echo met || echo MISSED ;;
        *) echo "" ;;
    esac
}

ROWS=(rps1k p99 cpu1k orig1k mbs100k p99_100k cpu100k connect tunnels cputun idle used)
declare -A LABEL TARGET
LABEL[rps1k]="(a) 1 KiB GET req/s";           TARGET[rps1k]=">=0.6x direct, >=3x squid"
LABEL[p99]="(a) 1 KiB GET p99 ms";            TARGET[p99]="<= squid"
LABEL[mbs100k]="(b) 100 KiB GET MB/s";        TARGET[mbs100k]=">=0.5x direct"
LABEL[p99_100k]="(b) 100 KiB GET p99 ms";     TARGET[p99_100k]="(info)"
LABEL[cpu1k]="(a) server CPU us/request";     TARGET[cpu1k]="(info)"
LABEL[orig1k]="(a) origin conns/1000 req";    TARGET[orig1k]="(info)"
LABEL[cpu100k]="(b) server CPU us/request";   TARGET[cpu100k]="(info)"
LABEL[cputun]="(d) server CPU us/tunnel";     TARGET[cputun]="(info)"
LABEL[connect]="(c) CONNECT 1 GiB MB/s";      TARGET[connect]=">=0.85x direct"
LABEL[tunnels]="(d) fresh tunnels/s";         TARGET[tunnels]=">=0.6x direct"
LABEL[idle]="(e) RSS KiB/idle tunnel";        TARGET[idle]="<=8 KiB"
LABEL[used]="(e) RSS KiB/tunnel after 1 GET"; TARGET[used]="<=8 KiB (info)"

echo
echo "portier benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) cores  $(uname -r)"
echo "  nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(squid -v | head -1 | sed 's/Squid Cache: Version /squid /'), $(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}'), $($PORTIER_BIN --version 2>/dev/null || echo 'portier ?')"
echo "  ${SECS}s per measurement (+${WARM}s warm-up), wrk -t1 -c$WRK_CONNS, $TUN_CONC concurrent fresh tunnels, $IDLE_N idle tunnels"
echo "  ratios and targets use portier(1 worker); MB = 10^6 bytes"
[ -n "$PORTIER_EXTRA" ] && echo "  portier config extra: $PORTIER_EXTRA"
echo "  server CPU = CPU time of the process serving the column (nginx worker for direct, else the proxy) / operations"
echo "  origin conns = connections nginx accepted during the run per 1000 requests (direct: wrk's own)"
echo "  CPU idle before the run: ${IDLE_START}%, after: $(cpu_idle_pct)% (below ~90% other work skews the figures)"
echo
fmt="%-31s %10s %10s %12s %12s %9s %9s  %-26s %s\n"
printf "$fmt" "measurement" "direct" "squid" "portier(1w)" "portier(all)" "p1/direct" "p1/squid" "target" "verdict"
printf "$fmt" "-------------------------------" "------" "-----" "-----------" "------------" "---------" "--------" "------" "-------"
for row in "${ROWS[@]}"; do
    d=${V[$row:direct]:-}; s=${V[$row:squid]:-}; p=${V[$row:p1]:-}; n=${V[$row:pN]:-}
    case $row in idle|used) d="n/a";; esac
    rd=$(ratio "$p" "$d"); rs=$(ratio "$p" "$s")
    [ "$row" = idle ] || [ "$row" = used ] && rd="-"
    [ "$row" = orig1k ] && rd="-" && rs="-"
    printf "$fmt" "${LABEL[$row]}" "${d:--}" "${s:--}" "${p:--}" "${n:--}" "$rd" "$rs" "${TARGET[$row]}" "$(verdict "$row")"
done
echo
[ -n "$ALOG_RESULT" ] && echo "portier(1 worker) with access log to a file, 1 KiB GET: $ALOG_RESULT ($(ratio "${V[rps1klog:p1]:-}" "${V[rps1k:p1]:-}")x of access log off)"
echo "(d) client: $RATE_TOOL"
if ((${#NOTES[@]})); then
    echo
    echo "notes:"
    for n in "${NOTES[@]}"; do echo "  - $n"; done
fi
for k in p1 pN p1log; do
    if [ -n "${PID[$k]:-}" ] && [ "${ALIVE[$k]:-0}" = 1 ] && ! kill -0 "${PID[$k]}" 2>/dev/null; then
        echo "  - ${NAME[$k]} exited before the end of the run"
    fi
done
