-- wrk script for tests/bench/policy.sh: wrk_report.lua (absolute-form target from BENCH_TARGET,
-- one parseable BENCH line from done()) plus, when BENCH_PROXY_AUTH is set, that value as the
-- Proxy-Authorization header of every request ("Basic <base64 user:pass>").
-- BENCH_HERE (env) is the directory of wrk_report.lua.
dofile((os.getenv("BENCH_HERE") or ".") .. "/wrk_report.lua")
local auth = os.getenv("BENCH_PROXY_AUTH")
if auth ~= nil and auth ~= "" then
  wrk.headers["Proxy-Authorization"] = auth
end
