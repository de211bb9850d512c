#!/usr/bin/env bash
# Benchmark: what each portier hop of an egress chain costs, all on 127.0.0.1, in one run:
# fresh tunnels/s, time to first byte and CONNECT throughput direct vs. through 1, 2 (and 3) portiers,
# with two reference columns: squid as the 1 hop, and 2 portier hops joined by TLS.
# Not a test: it prints a table with the per-hop targets. See tests/bench/README.md ("egress.sh").
#
# Env knobs: BENCH_SECONDS (10) BENCH_WARMUP_SECONDS (2) BENCH_TUNNEL_CONCURRENCY (20)
#            BENCH_LATENCY_SECONDS (BENCH_SECONDS) BENCH_LATENCY_CONCURRENCY (1) BENCH_CONNECT_RUNS (3)
#            BENCH_HOPS (3) BENCH_SQUID (1) BENCH_TLS (1) PORTIER (build/portier) BENCH_KEEP_TMP (0)

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # shell options, PATH, HERE, ROOT, SECS, WARM, PORTIER_BIN, KEEP_TMP
TUN_CONC=${BENCH_TUNNEL_CONCURRENCY:-20}
LAT_SECS=${BENCH_LATENCY_SECONDS:-$SECS}
LAT_CONC=${BENCH_LATENCY_CONCURRENCY:-1}
CONNECT_RUNS=${BENCH_CONNECT_RUNS:-3}
HOPS=${BENCH_HOPS:-3}
WITH_SQUID=${BENCH_SQUID:-1}   # 1 = "squid 1 hop" reference column
WITH_TLS=${BENCH_TLS:-1}       # 1 = "2 hops, TLS" column (P2' reaches P1 over TLS)
MAX_DROP_PCT=15     # target: throughput lost per hop
MAX_TTFB_X=2        # target: time to first byte per hop, x the previous column

log() { echo "[egress $(date +%H:%M:%S)] $*" >&2; }

ensure_packages nginx curl python3
[ -x "$PORTIER_BIN" ] || { log "FATAL: $PORTIER_BIN not found or not executable (ninja -C build)"; exit 1; }
case $HOPS in 1|2|3) ;; *) log "FATAL: BENCH_HOPS must be 1, 2 or 3"; exit 1 ;; esac

# Installs a package for an optional column when its command is missing; never fatal, bounded in time.
try_install() {   # package command
    command -v "$2" >/dev/null 2>&1 && return 0
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo -n)
    log "installing $1 (optional column)"
    timeout 300 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >&2 || {
        timeout 300 "${sudo[@]}" apt-get update -qq >&2
        timeout 300 "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$1" >&2
    }
    command -v "$2" >/dev/null 2>&1
}
EARLY_NOTES=()
if [ "$WITH_SQUID" = 1 ] && ! try_install squid squid; then
    WITH_SQUID=0; EARLY_NOTES+=("squid is not installed and could not be installed: squid 1 hop column skipped")
fi
if [ "$WITH_TLS" = 1 ] && ! try_install openssl openssl; then
    WITH_TLS=0; EARLY_NOTES+=("openssl is not installed and could not be installed: 2 hops, TLS column skipped")
fi

bench_start portier-egress-bench
NOTES+=(${EARLY_NOTES[@]+"${EARLY_NOTES[@]}"})

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
# Reference columns: sq = squid alone (1 hop), t2 = P2' -> P1 where P2' reaches P1's TLS listener
# through the exit {"via": [{"url": "https://127.0.0.1:<P1 tls>", "ca_file": cert.pem}]}.
# Processes are keyed p1 p2 p3 p2t sq; CHAIN[column] lists those a column's tunnels cross.
declare -A PORT PID ALIVE V CHAIN ERRF   # V[row:column] = value
PORT[0]=$NG_PORT; CHAIN[0]=""
COLS=(0)
col_name() {
    case $1 in 0) echo direct ;; 1) echo "1 hop" ;; sq) echo "squid 1 hop" ;; t2) echo "2 hops, TLS" ;; *) echo "$1 hops" ;; esac
}
proc_name() { case $1 in sq) echo squid ;; p2t) echo "P2'" ;; *) echo "P${1#p}" ;; esac; }

TLS_PORT=""
if [ "$WITH_TLS" = 1 ]; then
    if ! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$T/key.pem" \
            -out "$T/cert.pem" -days 2 -subj /CN=localhost -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            > "$T/openssl.out" 2>&1; then
        WITH_TLS=0
        NOTES+=("openssl could not make the self-signed certificate: 2 hops, TLS column skipped; $(tail -c 300 "$T/openssl.out" | tr '\n' ' ')")
    fi
fi

write_hop_config() {   # n with_tls_listener -> $T/portier-p<n>.json
    local n=$1 egress="" tls_listener=""
    [ "$n" -gt 1 ] && egress=",
  \"egress\": {\"default\": \"up\", \"regions\": {\"up\": {\"exits\": [
    {\"name\": \"p$((n - 1))\", \"via\": [\"http://127.0.0.1:${PORT[$((n - 1))]}\"]}]}}}"
    [ "$2" = 1 ] && tls_listener=",
                 {\"name\": \"hop${n}tls\", \"listen\": [\"127.0.0.1:0\"], \"mode\": \"forward\",
                  \"tls\": {\"cert_file\": \"$T/cert.pem\", \"key_file\": \"$T/key.pem\"}}"
    cat > "$T/portier-p$n.json" <<JSON
{
  "workers": 1,
  "listeners": [ {"name": "hop$n", "listen": ["127.0.0.1:0"], "mode": "forward"}$tls_listener ],
  "access_log": {"path": "off"},
  "forward": {"connect_ports": [443, $NG_PORT]},
  "ssrf": {"allow": ["127.0.0.0/8"]}$egress
}
JSON
}
listener_port() {   # stderr_file listener_name
    sed -n "s/.*listener $2 listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p" "$1" | head -1
}

for n in $(seq 1 "$HOPS"); do
    with_tls=0
    [ "$n" = 1 ] && [ "$WITH_TLS" = 1 ] && with_tls=1
    write_hop_config "$n" "$with_tls"
    ok=0
    if launch_portier "p$n" "$T/portier-p$n.json" 10; then
        ok=1
    elif [ "$with_tls" = 1 ]; then   # the TLS listener may be what failed: keep the plain chain
        WITH_TLS=0
        NOTES+=("P1 with a TLS listener did not become ready, 2 hops, TLS column skipped; stderr: $(tail -c 400 "$T/portier-p1.stderr" | tr '\n' ' ')")
        write_hop_config 1 0
        launch_portier p1 "$T/portier-p1.json" 10 && ok=1
    fi
    if [ "$ok" != 1 ]; then
        NOTES+=("P$n did not become ready, no columns from $(col_name "$n") on; stderr: $(tail -c 400 "$T/portier-p$n.stderr" | tr '\n' ' ')")
        break
    fi
    PID[p$n]=$LP_PID; ALIVE[p$n]=1; ERRF[p$n]="$T/portier-p$n.stderr"
    PORT[$n]=$(listener_port "$T/portier-p$n.stderr" "hop$n"); PORT[$n]=${PORT[$n]:-$LP_PORT}
    CHAIN[$n]="${CHAIN[$((n - 1))]:+${CHAIN[$((n - 1))]} }p$n"
    if [ "$with_tls" = 1 ]; then
        TLS_PORT=$(listener_port "$T/portier-p1.stderr" hop1tls)
        [ -n "$TLS_PORT" ] || { WITH_TLS=0; NOTES+=("P1's TLS listener port not found in its stderr: 2 hops, TLS column skipped"); }
    fi
    log "P$n pid $LP_PID on 127.0.0.1:${PORT[$n]}$([ "$n" -gt 1 ] && echo ", exit via P$((n - 1))")${TLS_PORT:+$([ "$n" = 1 ] && echo ", TLS listener on 127.0.0.1:$TLS_PORT")}"
    COLS+=("$n")
done

# ------------------------------------------------------------------ reference: squid as the 1 hop
# Started as run.sh does it: own config in the temp dir, 1 worker, no cache, -N (foreground), stopped by PID.
if [ "$WITH_SQUID" = 1 ]; then
    start_squid
    squid_ok=$?
    PID[sq]=$SQ_PID
    ERRF[sq]="$T/squid/cache.log"
    if [ "$squid_ok" = 0 ]; then
        ALIVE[sq]=1; PORT[sq]=$SQ_PORT; CHAIN[sq]=sq
        COLS+=(sq)
        log "squid pid ${PID[sq]} on 127.0.0.1:$SQ_PORT ($(squid -v | head -1))"
    else
        NOTES+=("squid did not start, squid 1 hop column skipped: $(tail -c 400 "$T/squid/stdout" "$T/squid/cache.log" 2>/dev/null | tr '\n' ' ')")
    fi
fi

# ------------------------------------------------------------------ TLS: P2' -> P1's TLS listener
if [ "$WITH_TLS" = 1 ] && [ "${ALIVE[p1]:-0}" = 1 ]; then
    cat > "$T/portier-p2t.json" <<JSON
{
  "workers": 1,
  "listeners": [ {"name": "hop2t", "listen": ["127.0.0.1:0"], "mode": "forward"} ],
  "access_log": {"path": "off"},
  "forward": {"connect_ports": [443, $NG_PORT]},
  "ssrf": {"allow": ["127.0.0.0/8"]},
  "egress": {"default": "up", "regions": {"up": {"exits": [
    {"name": "p1tls", "via": [{"url": "https://127.0.0.1:$TLS_PORT", "ca_file": "$T/cert.pem"}]}]}}}
}
JSON
    if launch_portier p2t "$T/portier-p2t.json" 10; then
        PID[p2t]=$LP_PID; ALIVE[p2t]=1; ERRF[p2t]="$T/portier-p2t.stderr"
        PORT[t2]=$(listener_port "$T/portier-p2t.stderr" hop2t); PORT[t2]=${PORT[t2]:-$LP_PORT}
        CHAIN[t2]="p1 p2t"
        COLS+=(t2)
        log "P2' pid $LP_PID on 127.0.0.1:${PORT[t2]}, exit via https://127.0.0.1:$TLS_PORT (P1's TLS listener)"
    else
        NOTES+=("P2' (TLS exit) did not become ready, 2 hops, TLS column skipped; stderr: $(tail -c 400 "$T/portier-p2t.stderr" | tr '\n' ' ')")
    fi
fi

# True when every process column c goes through is still running; notes the first exit.
chain_alive() {   # column what
    local p rc
    for p in ${CHAIN[$1]}; do
        [ "${ALIVE[$p]}" = 1 ] || return 1
        if ! kill -0 "${PID[$p]}" 2>/dev/null; then
            wait "${PID[$p]}" 2>/dev/null; rc=$?
            ALIVE[$p]=0
            NOTES+=("$(proc_name "$p"): process EXITED (status $rc) during/after '$(col_name "$1") $2'; stderr tail: $(tail -c 600 "${ERRF[$p]}" 2>/dev/null | tr '\n' ' ')")
            log "$(proc_name "$p") died during $(col_name "$1") $2"
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
rate_run() {   # column concurrency seconds
    local mode=""
    [ "$1" = 0 ] && mode=direct
    timeout $(($3 + 20)) "$T/tunnel_rate" 127.0.0.1 "${PORT[$1]}" "127.0.0.1:$NG_PORT" /1k "$2" "$3" $mode latency
}
hop_ticks() { local p; for p in ${CHAIN[$1]}; do printf '%s ' "$(cpu_ticks_pid "${PID[$p]}")"; done; }   # column
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
        per_hop=""; total=0; i=0
        for p in ${CHAIN[$n]}; do
            d=$(( ${t1[i]:-0} - ${t0[i]:-0} )); i=$((i + 1))
            [ "$d" -gt 0 ] || NOTES+=("$(col_name "$n"): $(proc_name "$p") used no CPU during the fresh-tunnel run: is the chain taken?")
            per_hop+="${per_hop:+ + }$(proc_name "$p") $(awk -v d="$d" -v k="${okn:-0}" -v hz="$CLK_TCK" 'BEGIN{ if (k>0) printf "%.1f", d*1e6/hz/k }')"
            total=$((total + d))
        done
        [ "$n" != 0 ] && V[cputun:$n]=$(awk -v d="$total" -v k="${okn:-0}" -v hz="$CLK_TCK" 'BEGIN{ if (k>0) printf "%.1f", d*1e6/hz/k }')
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
# per hop: change from the column before the hop to the column after it
drop_pct() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="" || b=="" || a+0==0) print ""; else printf "%.1f", 100*(a-b)/a }'; }
times() { awk -v a="$1" -v b="$2" 'BEGIN{ if (a=="" || b=="" || a+0==0) print ""; else printf "%.2f", b/a }'; }
judge() {   # value max -> "value met|MISSED"
    [ -n "$1" ] || { echo "-"; return; }
    awk -v v="$1" -v m="$2" 'BEGIN{ printf "%s %s", v, (v+0 <= m+0) ? "met" : "MISSED" }'
}
with_unit() { if [ -n "$1" ]; then echo "$1$2"; else echo "-"; fi; }   # value unit -> "value<unit>" or "-"
has_col() { local c; for c in "${COLS[@]}"; do [ "$c" = "$1" ] && return 0; done; return 1; }

echo
echo "portier egress hop benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) cores  $(uname -r)"
echo "  $("$PORTIER_BIN" --version 2>/dev/null || echo 'portier ?'), nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(curl --version | head -1 | awk '{print "curl " $2}')$(has_col sq && squid -v | head -1 | sed 's/.*Version /, squid /')"
echo "  n hops = client -> Pn -> ... -> P1 -> nginx; each portier 1 worker, access log off; Pn>1 leaves through the exit via P(n-1)"
has_col sq && echo "  squid 1 hop = client -> squid -> nginx (reference; 1 worker, no cache, access log off)"
has_col t2 && echo "  2 hops, TLS = client -> P2' -> (TLS) -> P1's TLS listener -> nginx; P2' exit via https://127.0.0.1:<P1 tls>, self-signed P-256 cert"
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
row cputun    "(1) proxy CPU us/tunnel, all hops"
row ttfb_load "(1) time to first byte p50 ms, under load"
row ttfb50    "(2) time to first byte p50 ms"
row ttfb99    "(2) time to first byte p99 ms"
row ready50   "(2) tunnel ready p50 ms (direct: TCP conn.)"
row ready99   "(2) tunnel ready p99 ms (direct: TCP conn.)"
row mbs       "(3) CONNECT 1 GiB MB/s, best of $CONNECT_RUNS"
echo
# hops: "after:before:label"; hop n = column n vs n-1, then the references against what they add to
HOPS_CMP=()
for n in "${COLS[@]}"; do
    case $n in
        0) ;;
        sq) HOPS_CMP+=("sq:0:squid hop 1") ;;
        t2) has_col 1 && HOPS_CMP+=("t2:1:hop 2, TLS") ;;
        *) HOPS_CMP+=("$n:$((n - 1)):hop $n") ;;
    esac
done
hfmt="%-44s"; head=("(4) per hop: after vs. before the hop")
for h in "${HOPS_CMP[@]}"; do hfmt+=" %16s"; head+=("${h#*:*:}"); done
printf "$hfmt\n" "${head[@]}"
hop_row() {   # label fn key max|""
    local vals=() h a b v
    for h in "${HOPS_CMP[@]}"; do
        a=${h%%:*}; b=${h#*:}; b=${b%%:*}
        v=$($2 "${V[$3:$b]:-}" "${V[$3:$a]:-}")
        if [ -n "$4" ]; then vals+=("$(judge "$v" "$4")"); else vals+=("${v:--}"); fi
    done
    printf "$hfmt\n" "$1" "${vals[@]}"
}
hop_row "throughput drop % (target <= $MAX_DROP_PCT)" drop_pct mbs "$MAX_DROP_PCT"
hop_row "time to first byte p50 x (target <= $MAX_TTFB_X)" times ttfb50 "$MAX_TTFB_X"
hop_row "time to first byte p99 x (info)" times ttfb99 ""
hop_row "tunnel ready p50 x (info)" times ready50 ""
hop_row "fresh tunnels/s drop % (info)" drop_pct tunnels ""

# (5) the reference columns side by side with what they stand in for (info)
if has_col sq || has_col t2; then
    echo
    if has_col sq; then
        printf "%-44s %s\n" "(5) portier 1 hop / squid 1 hop (info)" \
            "time to first byte p50 $(with_unit "$(times "${V[ttfb50:sq]:-}" "${V[ttfb50:1]:-}")" x), fresh tunnels/s $(with_unit "$(times "${V[tunnels:sq]:-}" "${V[tunnels:1]:-}")" x), CONNECT MB/s $(with_unit "$(times "${V[mbs:sq]:-}" "${V[mbs:1]:-}")" x)"
    fi
    if has_col t2; then
        printf "%-44s %s\n" "(5) 2 hops, TLS vs. 2 hops plain (info)" \
            "throughput drop $(with_unit "$(drop_pct "${V[mbs:2]:-}" "${V[mbs:t2]:-}")" " %"), time to first byte p50 $(with_unit "$(times "${V[ttfb50:2]:-}" "${V[ttfb50:t2]:-}")" x), fresh tunnels/s drop $(with_unit "$(drop_pct "${V[tunnels:2]:-}" "${V[tunnels:t2]:-}")" " %")$(has_col 2 || echo " (no 2 hops column: BENCH_HOPS=1)")"
    fi
fi

echo
printf "(3) every download, MB/s:"
for n in "${SANE[@]}"; do printf "  %s: %s" "$(col_name "$n")" "${RUNS_MBS[$n]:--}"; done
echo
[ "$IDLE_START" != "?" ] && [ "$IDLE_START" -lt 90 ] && \
    NOTES+=("CPU only ${IDLE_START}% idle before the run: the figures are skewed by other work")
for p in p1 p2 p3 p2t sq; do
    [ "${ALIVE[$p]:-0}" = 1 ] && ! kill -0 "${PID[$p]}" 2>/dev/null && NOTES+=("$(proc_name "$p") exited before the end of the run")
done
if ((${#NOTES[@]})); then
    echo
    echo "notes:"
    for n in "${NOTES[@]}"; do echo "  - $n"; done
fi
