#!/usr/bin/env bash
# Benchmark: cost of policy (auth + big lists + RE2 rules) on portier, all on 127.0.0.1, in one run.
# Not a test: it prints a table with the targets. See tests/bench/README.md ("policy.sh").
#
# Env knobs: BENCH_SECONDS (10) BENCH_WARMUP_SECONDS (2) BENCH_ROUNDS (2) BENCH_WRK_CONNECTIONS (50)
#            BENCH_DOMAINS (1000000) BENCH_REGEXES (10000) BENCH_LISTS_BENCH (1)
#            PORTIER (build/portier) LISTS_BENCH (build/lists_bench) BENCH_KEEP_TMP (0)

# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # shell options, PATH, HERE, ROOT, SECS, WARM, PORTIER_BIN, KEEP_TMP
ROUNDS=${BENCH_ROUNDS:-2}
WRK_CONNS=${BENCH_WRK_CONNECTIONS:-50}
N_DOMAINS=${BENCH_DOMAINS:-1000000}
N_REGEXES=${BENCH_REGEXES:-10000}
RUN_LISTS_BENCH=${BENCH_LISTS_BENCH:-1}
LISTS_BENCH_BIN=${LISTS_BENCH:-$ROOT/build/lists_bench}
BENCH_USER=bench
BENCH_PASS=bench-pass-123

log() { echo "[policy $(date +%H:%M:%S)] $*" >&2; }

# ------------------------------------------------------------------ packages (as run.sh)
TOOLS=(nginx wrk curl python3 openssl)
ensure_packages "${TOOLS[@]}"
[ -x "$PORTIER_BIN" ] || { log "FATAL: $PORTIER_BIN not found or not executable (ninja -C build)"; exit 1; }

# ------------------------------------------------------------------ processes and cleanup
bench_start portier-policy-bench

now_ns() { date +%s%N; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null; }
mb() { awk -v k="$1" 'BEGIN{ if (k=="") print ""; else printf "%.1f", k/1024 }'; }

NG_PORT=$(free_port)
BENCH_URL="http://127.0.0.1:$NG_PORT/1k"

# ------------------------------------------------------------------ 1. lists
log "1. generating $N_DOMAINS domains and $N_REGEXES regexes (gen_policy_lists.py)"
t0=$(now_ns)
if ! GEN_OUT=$(timeout 120 python3 "$HERE/gen_policy_lists.py" "$T/lists" "$N_DOMAINS" "$N_REGEXES" "$BENCH_URL" 2> "$T/gen.err"); then
    log "FATAL: list generation failed: $(cat "$T/gen.err")"; exit 1
fi
LISTED_DOMAIN=$(sed -n 's/^listed_domain=//p' <<<"$GEN_OUT")
REGEX_URL=$(sed -n 's/^regex_url=//p' <<<"$GEN_OUT")
log "    $(($(now_ns) / 1000000 - t0 / 1000000)) ms; domains.txt $(du -h "$T/lists/domains.txt" | cut -f1), regexes.txt $(du -h "$T/lists/regexes.txt" | cut -f1)"

# ------------------------------------------------------------------ 2. lists_bench
declare -A LB          # LB[row|column] = value, from lists_bench's table
LB_ROWS=()
LB_HWM=""
if [ "$RUN_LISTS_BENCH" = 1 ] && [ -x "$LISTS_BENCH_BIN" ]; then
    log "2. $LISTS_BENCH_BIN $N_DOMAINS $N_REGEXES (its own generator, same sizes)"
    timeout 180 "$LISTS_BENCH_BIN" "$N_DOMAINS" "$N_REGEXES" > "$T/lists_bench.out" 2> "$T/lists_bench.err" &
    LB_PID=$!
    PIDS+=("$LB_PID")
    wait "$LB_PID"; rc=$?
    sed 's/^/    /' "$T/lists_bench.out" >&2
    [ -s "$T/lists_bench.err" ] && sed 's/^/    stderr: /' "$T/lists_bench.err" >&2
    [ "$rc" = 0 ] || NOTES+=("lists_bench exited with status $rc: $(tail -c 300 "$T/lists_bench.err" | tr '\n' ' ')")
    # The table: a header line "list <col> <col> ...", then one line per row whose name may have
    # spaces ("domain list"): the last H-1 fields are the columns, the fields before them the name.
    # After it, a line per row splits its latency by outcome; its name is the fields before "matches:":
    #   regex list  matches: p50 1.56 us, p99 3.63 us; non-matches: p50 0.71 us, p99 1.92 us
    # which gives the columns hit_p50_us, hit_p99_us, miss_p50_us, miss_p99_us of that row (only for a
    # row of the table: the split line must not become a row of its own).
    while IFS=$'\t' read -r name col val; do
        [ -n "${LB[$name|_]:-}" ] || { LB[$name|_]=1; LB_ROWS+=("$name"); }
        LB[$name|$col]=$val
    done < <(awk '
        $1 == "list" && /compile_s/ { h = NF; for (i = 2; i <= NF; i++) col[i] = $i; inrow = 1; next }
        inrow && (/^targets:/ || NF == 0) { inrow = 0 }
        inrow && / matches: / && / non-matches: / {
            name = ""; k = 1
            while (k <= NF && $k != "matches:") { name = name (name == "" ? "" : " ") $k; k++ }
            if (!(name in seen)) next
            for (pre = "hit_"; k <= NF; k++) {
                if ($k == "non-matches:") pre = "miss_"
                if (($k == "p50" || $k == "p99") && k < NF) printf "%s\t%s%s_us\t%s\n", name, pre, $k, $(k + 1)
            }
            next
        }
        inrow && h && NF >= h {
            name = $1; for (i = 2; i <= NF - h + 1; i++) name = name " " $i
            seen[name] = 1
            for (j = 2; j <= h; j++) printf "%s\t%s\t%s\n", name, col[j], $(NF - h + j)
        }' "$T/lists_bench.out")
    LB_HWM=$(sed -n 's/.*peak VmHWM \([0-9.]*\) MB.*/\1/p' "$T/lists_bench.out" | head -1)
    ((${#LB_ROWS[@]})) || NOTES+=("lists_bench: could not parse its table (format changed?)")
elif [ "$RUN_LISTS_BENCH" = 1 ]; then
    NOTES+=("lists_bench: $LISTS_BENCH_BIN not found, rows from it are n/a")
    log "2. $LISTS_BENCH_BIN not found, skipped"
else
    log "2. lists_bench skipped (BENCH_LISTS_BENCH=0)"
fi

# ------------------------------------------------------------------ 3. nginx and portier A/B
mkdir -p "$T/www"
head -c 1024 /dev/zero | tr '\0' 'a' > "$T/www/1k"
start_nginx
log "3. nginx pid $NG_PID on 127.0.0.1:$NG_PORT"

printf '%s:%s\n' "$BENCH_USER" "$(openssl passwd -6 "$BENCH_PASS")" > "$T/users.htpasswd"
AUTH_HEADER="Basic $(printf '%s:%s' "$BENCH_USER" "$BENCH_PASS" | base64 -w0)"

# A: plain. B: auth required, both lists in deny rules, host/url RE2 rules, then an allow.
python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
common = {"workers": 1, "access_log": {"path": "off"}, "ssrf": {"allow": ["127.0.0.0/8"]}}
a = dict(common, listeners=[{"name": "plain", "listen": ["127.0.0.1:0"], "mode": "forward"}])
b = dict(common,
         listeners=[{"name": "policy", "listen": ["127.0.0.1:0"], "mode": "forward", "auth": "required"}],
         auth={"realm": "portier bench", "users_file": t + "/users.htpasswd"},
         lists={"ads": {"file": t + "/lists/domains.txt", "match": "domain"},
                "trackers": {"file": t + "/lists/regexes.txt", "match": "regex"}},
         rules=[
             {"id": "no-ads", "when": {"list": "ads"}, "action": "deny", "reason": "advertising", "category": "ads"},
             {"id": "no-trackers", "when": {"list": "trackers"}, "action": "deny", "reason": "tracking",
              "category": "tracking"},
             {"id": "no-games", "when": {"host": r"(^|\.)games\.example$"}, "action": "deny", "category": "games"},
             {"id": "no-exe", "when": {"url": r"\.(exe|msi|scr)(\?|$)"}, "action": "deny", "category": "downloads"},
             {"id": "bench-origin", "when": {"host": r"^127\.0\.0\.1$", "method": ["GET", "HEAD"]}, "action": "allow"},
         ],
         default_action="deny")
for name, cfg in (("A", a), ("B", b)):
    with open("%s/portier-%s.json" % (t, name), "w") as f:
        json.dump(cfg, f, indent=2)
PY

declare -A PORT PID READY_MS RSS0 ALIVE
NAME_A="A (plain)"; NAME_B="B (auth+lists+rules)"
name_of() { if [ "$1" = A ]; then echo "$NAME_A"; else echo "$NAME_B"; fi; }

start_portier() {   # key ; sets PORT PID READY_MS RSS0 ALIVE
    local key=$1 err="$T/portier-$1.stderr"
    ALIVE[$key]=0
    if ! launch_portier "$key" "$T/portier-$key.json" 60; then
        log "FATAL: portier $key did not become ready:"; cat "$err" >&2
        exit 1
    fi
    PID[$key]=$LP_PID
    PORT[$key]=$LP_PORT
    READY_MS[$key]=$LP_READY_MS
    sleep 0.2
    RSS0[$key]=$(rss_kib "${PID[$key]}")
    ALIVE[$key]=1
    log "    portier $(name_of "$key") pid ${PID[$key]} on 127.0.0.1:${PORT[$key]}: ready after ${READY_MS[$key]} ms, VmRSS $(mb "${RSS0[$key]}") MB"
}

check_alive() {   # key what
    local key=$1 rc
    [ "${ALIVE[$key]}" = 1 ] || return 1
    if ! kill -0 "${PID[$key]}" 2>/dev/null; then
        wait "${PID[$key]}" 2>/dev/null; rc=$?
        ALIVE[$key]=0
        NOTES+=("$(name_of "$key"): process EXITED (status $rc) during/after '$2'; stderr tail: $(tail -c 600 "$T/portier-$key.stderr" 2>/dev/null | tr '\n' ' ')")
        log "portier $key died during $2"
        return 1
    fi
}

start_portier A
start_portier B

# ------------------------------------------------------------------ proof that B's policy is active
CHECKS=()   # "what|got|want|ok"
check() {   # what want_code want_body_substring curl-args...
    local what=$1 want=$2 needle=$3 out code body ok=ok
    shift 3
    out=$(curl -sS --max-time 5 -w '\n%{http_code}' "$@" 2>&1)
    code=$(tail -1 <<<"$out"); body=$(sed '$d' <<<"$out")
    [ "$code" = "$want" ] || ok=FAILED
    if [ -n "$needle" ] && ! grep -qF -- "$needle" <<<"$body"; then ok=FAILED; fi
    CHECKS+=("$what|$code${needle:+ ($(grep -qF -- "$needle" <<<"$body" && echo "names $needle" || echo "no '$needle' in body"))}|$want${needle:+ naming $needle}|$ok")
    [ "$ok" = ok ] || NOTES+=("check '$what': got $code, want $want${needle:+ with '$needle' in the body}; body: $(head -c 300 <<<"$body" | tr '\n' ' ')")
    log "    check $what: $code $ok"
}
log "checks (one request each)"
check "A: GET /1k" 200 "" -o /dev/null -x "http://127.0.0.1:${PORT[A]}" "$BENCH_URL"
check "B: GET /1k with credentials" 200 "" -o /dev/null -x "http://127.0.0.1:${PORT[B]}" \
    -H "Proxy-Authorization: $AUTH_HEADER" "$BENCH_URL"
check "B: GET /1k without credentials" 407 "" -o /dev/null -x "http://127.0.0.1:${PORT[B]}" "$BENCH_URL"
check "B: listed domain" 403 no-ads -x "http://127.0.0.1:${PORT[B]}" -H "Proxy-Authorization: $AUTH_HEADER" \
    "http://$LISTED_DOMAIN/"
check "B: subdomain of listed domain" 403 no-ads -x "http://127.0.0.1:${PORT[B]}" \
    -H "Proxy-Authorization: $AUTH_HEADER" "http://www.$LISTED_DOMAIN/x"
check "B: URL on the regex list" 403 no-trackers -x "http://127.0.0.1:${PORT[B]}" \
    -H "Proxy-Authorization: $AUTH_HEADER" "$REGEX_URL"
check "B: host rule" 403 no-games -x "http://127.0.0.1:${PORT[B]}" -H "Proxy-Authorization: $AUTH_HEADER" \
    "http://www.games.example/"
check "B: url rule" 403 no-exe -x "http://127.0.0.1:${PORT[B]}" -H "Proxy-Authorization: $AUTH_HEADER" \
    "http://127.0.0.1:$NG_PORT/setup.exe"
check_alive A checks; check_alive B checks

# ------------------------------------------------------------------ 4. wrk, alternating A/B
CLK_TCK=$(getconf CLK_TCK 2>/dev/null || echo 100)

wrk_once() {   # key seconds
    local auth=""
    [ "$1" = B ] && auth=$AUTH_HEADER
    BENCH_HERE="$HERE" BENCH_TARGET="$BENCH_URL" BENCH_PROXY_AUTH="$auth" timeout $(($2 + 30)) \
        wrk -t1 -c"$WRK_CONNS" -d"$2s" --timeout 5s -s "$HERE/policy_wrk.lua" "http://127.0.0.1:${PORT[$1]}/" 2>&1
}

declare -A RPS P99 CPU   # "key" -> space-separated values, one per round
run_wrk() {   # key round
    local key=$1 r=$2 out line req dur p99 rps t0 t1 cpu errs e n
    check_alive "$key" "wrk round $r" || return
    [ "$WARM" != 0 ] && wrk_once "$key" "$WARM" > /dev/null
    t0=$(cpu_ticks_pid "${PID[$key]}")
    out=$(wrk_once "$key" "$SECS")
    t1=$(cpu_ticks_pid "${PID[$key]}")
    echo "$out" > "$T/wrk-$key-$r.out"
    line=$(grep '^BENCH ' <<<"$out" | head -1)
    if [ -z "$line" ]; then
        NOTES+=("$(name_of "$key") round $r: wrk gave no result: $(tail -c 300 <<<"$out" | tr '\n' ' ')")
        check_alive "$key" "wrk round $r"
        return
    fi
    req=$(field requests "$line"); dur=$(field duration_us "$line"); p99=$(field p99_us "$line")
    rps=$(awk -v r="$req" -v d="$dur" 'BEGIN{ if (d>0) printf "%.0f", r/(d/1e6) }')
    p99=$(awk -v p="$p99" 'BEGIN{ printf "%.2f", p/1000 }')
    cpu=$(awk -v a="$t0" -v b="$t1" -v n="$req" -v hz="$CLK_TCK" \
        'BEGIN{ if (a!="" && b!="" && n>0) printf "%.1f", (b-a)*1e6/hz/n }')
    RPS[$key]+="$rps "; P99[$key]+="$p99 "; CPU[$key]+="$cpu "
    errs=""
    for e in connect read write status timeout; do
        n=$(field "err_$e" "$line")
        [ -n "$n" ] && [ "$n" != 0 ] && errs+=" $e=$n"
    done
    [ -n "$errs" ] && NOTES+=("$(name_of "$key") round $r: wrk errors:$errs (status = non-2xx/3xx answers) of $req requests")
    grep -qi 'error\|socket errors' <<<"$out" && [ -z "$errs" ] && \
        NOTES+=("$(name_of "$key") round $r: wrk printed: $(grep -i 'error' <<<"$out" | head -2 | tr '\n' ' ')")
    log "    round $r $(name_of "$key"): $rps req/s, p99 $p99 ms, $cpu CPU us/req${errs:+, errors:$errs}"
    check_alive "$key" "wrk round $r"
}

log "4. 1 KiB GET, wrk -t1 -c$WRK_CONNS, ${SECS}s (+${WARM}s warm-up) x $ROUNDS rounds, A/B alternating"
for r in $(seq 1 "$ROUNDS"); do
    run_wrk A "$r"
    run_wrk B "$r"
done
RSS1_A=$(rss_kib "${PID[A]}"); RSS1_B=$(rss_kib "${PID[B]}")

median() { tr ' ' '\n' <<<"$1" | awk 'NF' | sort -g | awk '{ v[NR] = $1 }
    END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.10g\n", (v[NR/2] + v[NR/2 + 1]) / 2 }'; }
RPS_A=$(median "${RPS[A]:-}"); RPS_B=$(median "${RPS[B]:-}")
P99_A=$(median "${P99[A]:-}"); P99_B=$(median "${P99[B]:-}")
CPU_A=$(median "${CPU[A]:-}"); CPU_B=$(median "${CPU[B]:-}")
DROP=$(awk -v a="$RPS_A" -v b="$RPS_B" 'BEGIN{ if (a!="" && b!="" && a>0) printf "%.1f", 100*(a-b)/a }')

# ------------------------------------------------------------------ 5. table
le() { awk -v a="$1" -v b="$2" 'BEGIN{ exit !(a!="" && b!="" && a+0 <= b+0) }'; }
verdict_le() { [ -n "$1" ] || { echo "n/a"; return; }; le "$1" "$2" && echo met || echo MISSED; }
sum_lb() {   # column -> sum over lists_bench rows whose name contains "list"
    local n s=""
    for n in "${LB_ROWS[@]}"; do
        [[ "$n" == *list* ]] || continue
        s=$(awk -v s="$s" -v v="${LB[$n|$1]:-}" 'BEGIN{ if (v=="") print s; else printf "%.2f", s+v }')
    done
    echo "$s"
}
LB_COMPILE=$(sum_lb compile_s)
LB_RSS=$(sum_lb rss_match); [ -n "$LB_RSS" ] || LB_RSS=$(sum_lb rss_MB)
B_COMPILE=$(awk -v b="${READY_MS[B]}" 'BEGIN{ printf "%.2f", b/1000 }')
A_COMPILE=$(awk -v a="${READY_MS[A]}" 'BEGIN{ printf "%.2f", a/1000 }')
RSS_DIFF=$(awk -v a="${RSS0[A]}" -v b="${RSS0[B]}" 'BEGIN{ if (a!="" && b!="") printf "%.1f", (b-a)/1024 }')

fmt="%-50s %14s  %-10s %s\n"
echo
echo "portier policy benchmark  $(date -u +%Y-%m-%dT%H:%M:%SZ)  $(nproc) cores  $(uname -r)"
echo "  $("$PORTIER_BIN" --version 2>/dev/null || echo 'portier ?'), nginx $(nginx -v 2>&1 | sed 's/.*\///'), $(wrk -v 2>&1 | head -1 | awk '{print "wrk " $2}')"
echo "  lists: $N_DOMAINS domains + $N_REGEXES regexes (gen_policy_lists.py); B = auth required (SHA-512-crypt) + 2 list rules + host/url RE2 rules + allow"
echo "  wrk -t1 -c$WRK_CONNS -d${SECS}s (+${WARM}s warm-up), $ROUNDS rounds A/B alternating, medians; MB = MiB (VmRSS kB / 1024)"
echo "  CPU idle before the run: ${IDLE_START}%, after: $(cpu_idle_pct)% (below ~90% other work skews the figures)"
echo
printf "$fmt" "measurement" "value" "target" "verdict"
printf "$fmt" "-----------" "-----" "------" "-------"
printf "$fmt" "lists compile time, lists_bench (s)" "${LB_COMPILE:--}" "<= 10" "$(verdict_le "$LB_COMPILE" 10)"
printf "$fmt" "config compile time, portier B start->ready (s)" "$B_COMPILE" "<= 10" "$(verdict_le "$B_COMPILE" 10)"
printf "$fmt" "  (portier A start->ready, s)" "$A_COMPILE" "(info)" ""
printf "$fmt" "lists RSS, lists_bench after lookups (MB)" "${LB_RSS:--}" "<= 300" "$(verdict_le "$LB_RSS" 300)"
printf "$fmt" "lists RSS, portier VmRSS B - A after start (MB)" "${RSS_DIFF:--}" "<= 300" "$(verdict_le "$RSS_DIFF" 300)"
printf "$fmt" "  (VmRSS A / B after start, MB)" "$(mb "${RSS0[A]}") / $(mb "${RSS0[B]}")" "(info)" ""
printf "$fmt" "  (VmRSS A / B after the load, MB)" "$(mb "$RSS1_A") / $(mb "$RSS1_B")" "(info)" ""
[ -n "$LB_HWM" ] && printf "$fmt" "  (lists_bench peak VmHWM, MB)" "$LB_HWM" "(info)" ""
for n in "${LB_ROWS[@]}"; do
    v=${LB[$n|p99_us]:-}
    printf "$fmt" "match p99, lists_bench $n (us)" "${v:--}" "<= 5" "$(verdict_le "$v" 5)"
    printf "$fmt" "  (p50 / max, us)" "${LB[$n|p50_us]:--} / ${LB[$n|max_us]:--}" "(info)" ""
    [ -n "${LB[$n|hit_p99_us]:-}${LB[$n|miss_p99_us]:-}" ] &&
        printf "$fmt" "  (p99 of matches / non-matches, us)" "${LB[$n|hit_p99_us]:--} / ${LB[$n|miss_p99_us]:--}" "(info)" ""
    printf "$fmt" "  (compile s / rss_match MB)" "${LB[$n|compile_s]:--} / ${LB[$n|rss_match]:-${LB[$n|rss_MB]:--}}" "(info)" ""
done
((${#LB_ROWS[@]})) || printf "$fmt" "match p99, lists_bench (us)" "-" "<= 5" "n/a"
printf "$fmt" "1 KiB GET req/s, A plain" "${RPS_A:--}" "(info)" ""
printf "$fmt" "1 KiB GET req/s, B policy" "${RPS_B:--}" "(info)" ""
printf "$fmt" "req/s drop B vs A (%)" "${DROP:--}" "<= 5" "$(verdict_le "$DROP" 5)"
printf "$fmt" "p99 latency A / B (ms)" "${P99_A:--} / ${P99_B:--}" "(info)" ""
printf "$fmt" "portier CPU us/request A / B" "${CPU_A:--} / ${CPU_B:--}" "(info)" ""
printf "$fmt" "  (CPU per request, B vs A, %)" "$(awk -v a="$CPU_A" -v b="$CPU_B" \
    'BEGIN{ if (a!="" && b!="" && a>0) printf "%+.1f", 100*(b-a)/a; else print "-" }')" "(info)" ""
echo
echo "per round (req/s): A ${RPS[A]:-}| B ${RPS[B]:-}"
echo "per round (p99 ms): A ${P99[A]:-}| B ${P99[B]:-}"
echo
echo "policy checks on B (one curl each):"
for c in "${CHECKS[@]}"; do
    IFS='|' read -r what got want ok <<<"$c"
    printf "  %-34s got %-26s want %-22s %s\n" "$what" "$got" "$want" "$ok"
done
[ "$IDLE_START" != "?" ] && [ "$IDLE_START" -lt 90 ] && \
    NOTES+=("CPU only ${IDLE_START}% idle before the run: req/s, p99 and the drop are skewed by other work; the CPU us/request rows are less sensitive")
for k in A B; do
    [ "${ALIVE[$k]}" = 1 ] && ! kill -0 "${PID[$k]}" 2>/dev/null && NOTES+=("$(name_of "$k") exited before the end of the run")
done
if ((${#NOTES[@]})); then
    echo
    echo "notes:"
    for n in "${NOTES[@]}"; do echo "  - $n"; done
fi
