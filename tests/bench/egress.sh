#!/usr/bin/env bash
# Benchmark: what each portier hop of an egress chain costs, all on 127.0.0.1, in one run:
# fresh tunnels/s, time to first byte and CONNECT throughput direct vs. through 1, 2 (and 3) portiers.
# Not a test: it prints a table with the per-hop targets. See tests/bench/README.md ("egress.sh").
#
# Env knobs: BENCH_SECONDS (10) BENCH_WARMUP_SECONDS (2) BENCH_TUNNEL_CONCURRENCY (20)
#            BENCH_LATENCY_SECONDS (BENCH_SECONDS) BENCH_LATENCY_CONCURRENCY (1) BENCH_CONNECT_RUNS (3)
#            BENCH_HOPS (3) PORTIER (build/portier) BENCH_KEEP_TMP (0)

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # shell options, PATH, HERE, ROOT, SECS, WARM, PORTIER_BIN, KEEP_TMP
TUN_CONC=${BENCH_TUNNEL_CONCURRENCY:-20}
LAT_SECS=${BENCH_LATENCY_SECONDS:-$SECS}
LAT_CONC=${BENCH_LATENCY_CONCURRENCY:-1}
CONNECT_RUNS=${BENCH_CONNECT_RUNS:-3}
HOPS=${BENCH_HOPS:-3}
MAX_DROP_PCT=15     # target: throughput lost per hop
MAX_TTFB_X=2        # target: time to first byte per hop, x the previous column

log() { echo "[egress $(date +%H:%M:%S)] $*" >&2; }

ensure_packages nginx curl python3
[ -x "$PORTIER_BIN" ] || { log "FATAL: $PORTIER_BIN not found or not executable (ninja -C build)"; exit 1; }
case $HOPS in 1|2|3) ;; *) log "FATAL: BENCH_HOPS must be 1, 2 or 3"; exit 1 ;; esac

bench_start portier-egress-bench

# ------------------------------------------------------------------ nginx
NG_PORT=$(free_port)
mkdir -p "$T/www"
head -c 1024 /dev/zero | tr '\0' 'a' > "$T/www/1k"
truncate -s 1G "$T/www/1g"   # sparse: no disk used, sendfile reads zero pages
cat "$T/www/1g" > /dev/null  # fill the page cache now, not during the first timed download
start_nginx
log "nginx pid $NG_PID on 127.0.0.1:$NG_PORT"

# ------------------------------------------------------------------ the chain
# Column 0 is direct (nginx itself); column n is portier Pn: P1 leaves directly, Pn (n > 1) through
# the exit {"via": ["http://127.0.0.1:<P(n-1)>"]} of its default region. A client of Pn crosses n hops.
declare -A PORT PID ALIVE V   # V[row:n] = value
PORT[0]=$NG_PORT; PID[0]=$NG_PID; ALIVE[0]=1
COLS=(0)
col_name() { case $1 in 0) echo direct ;; 1) echo "1 hop" ;; *) echo "$1 hops" ;; esac; }

for n in $(seq 1 "$HOPS"); do
    egress=""
    [ "$n" -gt 1 ] && egress=",
  \"egress\": {\"default\": \"up\", \"regions\": {\"up\": {\"exits\": [
    {\"name\": \"p$((n - 1))\", \"via\": [\"http://127.0.0.1:${PORT[$((n - 1))]}\"]}]}}}"
    cat > "$T/portier-p$n.json" <<EOF
{
  "workers": 1,
  "listeners": [ {"name": "hop$n", "listen": ["127.0.0.1:0"], "mode": "forward"} ],
  "access_log": {"path": "off"},
  "forward": {"connect_ports": [443, $NG_PORT]},
  "ssrf": {"allow": ["127.0.0.0/8"]}$egress
}
EOF
    if ! launch_portier "p$n" "$T/portier-p$n.json" 10; then
        NOTES+=("P$n did not become ready, no columns from $(col_name "$n") on; stderr: $(tail -c 400 "$T/portier-p$n.stderr" | tr '\n' ' ')")
        break
    fi
    PID[$n]=$LP_PID; PORT[$n]=$LP_PORT; ALIVE[$n]=1
    log "P$n pid $LP_PID on 127.0.0.1:$LP_PORT$([ "$n" -gt 1 ] && echo ", exit via P$((n - 1))")"
    COLS+=("$n")
done

# True when every portier column n goes through (P1..Pn) is still running; notes the first exit.
chain_alive() {   # n what
    local i rc
    for i in $(seq 1 "$1"); do
        [ "${ALIVE[$i]}" = 1 ] || return 1
        if ! kill -0 "${PID[$i]}" 2>/dev/null; then
            wait "${PID[$i]}" 2>/dev/null; rc=$?
            ALIVE[$i]=0
            NOTES+=("P$i: process EXITED (status $rc) during/after '$2'; stderr tail: $(tail -c 600 "$T/portier-p$i.stderr" 2>/dev/null | tr '\n' ' ')")
            log "P$i died during $2"
            return 1
        fi
    done
}

# ------------------------------------------------------------------ sanity: one CONNECT + GET per column
proxy_args() { [ "$1" = 0 ] || echo "-p -x http://127.0.0.1:${PORT[$1]}"; }
SANE=()
for n in "${COLS[@]}"; do
    # shellcheck disable=SC2046
    out=$(curl -sS -o /dev/null --max-time 5 $(proxy_args "$n") -w '%{http_connect} %{http_code} %{size_download}' \
        "http://127.0.0.1:$NG_PORT/1k" 2>&1)
    log "sanity $(col_name "$n"): CONNECT + GET /1k: '$out'"
    want="200 200 1024"; [ "$n" = 0 ] && want="000 200 1024"   # direct: no CONNECT
    if [ "$out" = "$want" ]; then
        SANE+=("$n")
    else
        NOTES+=("$(col_name "$n"): sanity CONNECT + GET /1k gave '$(tr '\n' ' ' <<<"$out")' (want '$want'); column skipped")
    fi
    chain_alive "$n" sanity
done

# ------------------------------------------------------------------ (1)(2) fresh tunnels and latency
HAVE_RATE=0
if command -v cc >/dev/null 2>&1 && cc -O2 -o "$T/tunnel_rate" "$HERE/tunnel_rate.c" 2> "$T/cc.err"; then
    HAVE_RATE=1
else
    NOTES+=("no C compiler (cc) or tunnel_rate.c did not build: rows (1) and (2) are n/a; $(head -c 300 "$T/cc.err" 2>/dev/null | tr '\n' ' ')")
fi
rate_run() {   # n concurrency seconds
    local mode=""
    [ "$1" = 0 ] && mode=direct
    timeout $(($3 + 20)) "$T/tunnel_rate" 127.0.0.1 "${PORT[$1]}" "127.0.0.1:$NG_PORT" /1k "$2" "$3" $mode latency
}
hop_ticks() { local i; for i in $(seq 1 "$1"); do printf '%s ' "$(cpu_ticks_pid "${PID[$i]}")"; done; }
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)
us() { awk -v u="$1" 'BEGIN{ if (u!="") printf "%.2f", u/1000 }'; }   # microseconds -> ms

if [ "$HAVE_RATE" = 1 ]; then
    log "(1) fresh tunnels/s: $TUN_CONC concurrent, ${SECS}s (+${WARM}s warm-up), CONNECT + GET /1k (Connection: close)"
    for n in "${SANE[@]}"; do
        chain_alive "$n" "fresh tunnels" || continue
        [ "$WARM" != 0 ] && rate_run "$n" "$TUN_CONC" "$WARM" > /dev/null
        read -ra t0 <<<"$(hop_ticks "$n")"
        out=$(rate_run "$n" "$TUN_CONC" "$SECS")
        read -ra t1 <<<"$(hop_ticks "$n")"
        okn=$(field ok "$out")
        V[tunnels:$n]=$(awk -v r="$(field rate "$out")" 'BEGIN{ if (r!="") printf "%.0f", r }')
        V[ttfb_load:$n]=$(us "$(field ttfb_p50_us "$out")")
        per_hop=""; total=0
        for i in $(seq 1 "$n"); do
            d=$(( ${t1[i-1]:-0} - ${t0[i-1]:-0} ))
            [ "$d" -gt 0 ] || NOTES+=("$(col_name "$n"): P$i used no CPU during the fresh-tunnel run: is the chain taken?")
            per_hop+="${per_hop:+ + }P$i $(awk -v d="$d" -v k="${okn:-0}" -v hz="$CLK_TCK" 'BEGIN{ if (k>0) printf "%.1f", d*1e6/hz/k }')"
            total=$((total + d))
        done
        [ "$n" -gt 0 ] && V[cputun:$n]=$(awk -v d="$total" -v k="${okn:-0}" -v hz="$CLK_TCK" 'BEGIN{ if (k>0) printf "%.1f", d*1e6/hz/k }')
        [ "$(field errors "$out")" = 0 ] || NOTES+=("$(col_name "$n") fresh tunnels: ${out:-no output}")
        log "    $(col_name "$n"): $out${per_hop:+; CPU us/tunnel $per_hop}"
        chain_alive "$n" "fresh tunnels"
        sleep 1   # let TIME_WAIT and the proxies settle
    done

    log "(2) latency: $LAT_CONC client(s) in a loop, ${LAT_SECS}s, fresh connection + CONNECT + GET /1k each"
    for n in "${SANE[@]}"; do
        chain_alive "$n" latency || continue
        out=$(rate_run "$n" "$LAT_CONC" "$LAT_SECS")
        V[ttfb50:$n]=$(us "$(field ttfb_p50_us "$out")")
        V[ttfb99:$n]=$(us "$(field ttfb_p99_us "$out")")
        V[ready50:$n]=$(us "$(field ready_p50_us "$out")")
        V[ready99:$n]=$(us "$(field ready_p99_us "$out")")
        [ "$(field errors "$out")" = 0 ] || NOTES+=("$(col_name "$n") latency: ${out:-no output}")
        log "    $(col_name "$n"): $out"
        chain_alive "$n" latency
    done
fi

# ------------------------------------------------------------------ (3) CONNECT throughput
log "(3) 1 GiB download with curl, best of $CONNECT_RUNS"
declare -A RUNS_MBS
curl -s -o /dev/null --max-time 60 "http://127.0.0.1:$NG_PORT/1g"   # untimed warm-up
for n in "${SANE[@]}"; do
    chain_alive "$n" "CONNECT 1 GiB" || continue
    best=""
    for i in $(seq 1 "$CONNECT_RUNS"); do
        # shellcheck disable=SC2046
        out=$(curl -sS -o /dev/null --max-time 60 $(proxy_args "$n") -w '%{http_code} %{size_download} %{speed_download}' \
            "http://127.0.0.1:$NG_PORT/1g" 2>&1)
        read -r code size speed <<<"$(tail -1 <<<"$out")"
        [ "$code" = 200 ] && [ "$size" = 1073741824 ] || \
            NOTES+=("$(col_name "$n") 1 GiB run $i: '$(tr '\n' ' ' <<<"$out")' (want 200 and 1073741824 bytes)")
        mbs=$(awk -v s="${speed:-0}" 'BEGIN{ printf "%.1f", s/1e6 }')
        log "    $(col_name "$n") run $i: $mbs MB/s"
        best=$(awk -v a="${best:-0}" -v b="$mbs" 'BEGIN{ print (b>a)?b:a }')
        RUNS_MBS[$n]+="$mbs "
        chain_alive "$n" "CONNECT 1 GiB" || break
    done
    [ -n "$best" ] && V[mbs:$n]=$best
done

# ------------------------------------------------------------------ table
# per hop n: change from column n-1 to column n
drop_pct() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="" || b=="" || a+0==0) print ""; else printf "%.1f", 100*(a-b)/a }'; }
times() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="" || b=="" || a+0==0) print ""; else printf "%.2f", b/a }'; }
judge() {   # value max -> "value met|MISSED"
    [ -n "$1" ] || { echo "-"; return; }
    awk -v v="$1" -v m="$2" 'BEGIN{ printf "%s %s", v, (v+0 <= m+0) ? "met" : "MISSED" }'
}

echo
echo "portier egress hop benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) cores  $(uname -r)"
echo "  $("$PORTIER_BIN" --version 2>/dev/null || echo 'portier ?'), nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(curl --version | head -1 | awk '{print "curl " $2}')"
echo "  n hops = client -> Pn -> ... -> P1 -> nginx; each portier 1 worker, access log off; Pn>1 leaves through the exit via P(n-1)"
echo "  (1) $TUN_CONC concurrent, ${SECS}s (+${WARM}s warm-up); (2) $LAT_CONC client(s), ${LAT_SECS}s; (3) best of $CONNECT_RUNS; MB = 10^6 bytes"
echo "  everything shares $(nproc) cores: n hops run n+2 busy processes (client, nginx, P1..Pn)"
echo "  CPU idle before the run: ${IDLE_START}%, after: $(cpu_idle_pct)% (below ~90% other work skews the figures)"
echo
fmt="%-44s"; head=("measurement")
for n in "${COLS[@]}"; do fmt+=" %12s"; head+=("$(col_name "$n")"); done
printf "$fmt\n" "${head[@]}"
row() {   # key label
    local vals=() n
    for n in "${COLS[@]}"; do vals+=("${V[$1:$n]:--}"); done
    printf "$fmt\n" "$2" "${vals[@]}"
}
row tunnels   "(1) fresh tunnels/s"
row cputun    "(1) portier CPU us/tunnel, all hops"
row ttfb_load "(1) time to first byte p50 ms, under load"
row ttfb50    "(2) time to first byte p50 ms"
row ttfb99    "(2) time to first byte p99 ms"
row ready50   "(2) tunnel ready p50 ms (direct: TCP conn.)"
row ready99   "(2) tunnel ready p99 ms (direct: TCP conn.)"
row mbs       "(3) CONNECT 1 GiB MB/s, best of $CONNECT_RUNS"
echo
hfmt="%-44s"; head=("(4) per hop: n hops vs. n-1")
for n in "${COLS[@]:1}"; do hfmt+=" %16s"; head+=("hop $n"); done
printf "$hfmt\n" "${head[@]}"
hop_row() {   # label fn key max|""
    local vals=() n v
    for n in "${COLS[@]:1}"; do
        v=$($2 "${V[$3:$((n - 1))]:-}" "${V[$3:$n]:-}")
        if [ -n "$4" ]; then vals+=("$(judge "$v" "$4")"); else vals+=("${v:--}"); fi
    done
    printf "$hfmt\n" "$1" "${vals[@]}"
}
hop_row "throughput drop % (target <= $MAX_DROP_PCT)" drop_pct mbs "$MAX_DROP_PCT"
hop_row "time to first byte p50 x (target <= $MAX_TTFB_X)" times ttfb50 "$MAX_TTFB_X"
hop_row "time to first byte p99 x (info)" times ttfb99 ""
hop_row "tunnel ready p50 x (info)" times ready50 ""
hop_row "fresh tunnels/s drop % (info)" drop_pct tunnels ""

echo
printf "(3) every download, MB/s:"
for n in "${SANE[@]}"; do printf "  %s: %s" "$(col_name "$n")" "${RUNS_MBS[$n]:--}"; done
echo
[ "$IDLE_START" != "?" ] && [ "$IDLE_START" -lt 90 ] && \
    NOTES+=("CPU only ${IDLE_START}% idle before the run: the figures are skewed by other work")
for n in "${COLS[@]:1}"; do
    [ "${ALIVE[$n]}" = 1 ] && ! kill -0 "${PID[$n]}" 2>/dev/null && NOTES+=("P$n exited before the end of the run")
done
if ((${#NOTES[@]})); then
    echo
    echo "notes:"
    for n in "${NOTES[@]}"; do echo "  - $n"; done
fi
