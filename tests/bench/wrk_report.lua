-- wrk script for tests/bench/run.sh.
-- BENCH_TARGET (env): when set to an absolute URL ("http://127.0.0.1:8080/1k"), the request
-- target becomes that URL (absolute-form, as sent to a forward proxy) and Host is the URL's
-- authority; wrk itself connects to the address given on its command line (the proxy).
-- done() prints one machine-readable line that run.sh parses.
local target = os.getenv("BENCH_TARGET")
if target ~= nil and target ~= "" then
  wrk.path = target
  wrk.headers["Host"] = target:match("^%a+://([^/]+)")
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d bytes=%d p50_us=%d p99_us=%d max_us=%d " ..
    "err_connect=%d err_read=%d err_write=%d err_status=%d err_timeout=%d\n",
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status, e.timeout))
end
