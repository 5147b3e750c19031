-- bench/wrk.lua: one request of the canned server, sent over and over by
-- `wrk -t1 -c1 -d5s -s bench/wrk.lua URL` (scenario b, the limit of one
-- keep-alive connection). bench/bench.py sets:
--   BENCH_WRK_METHOD  GET or PUT
--   BENCH_WRK_BODY    the JSON body (PUT), sent with Content-Type: application/json
--   BENCH_WRK_AUTH    the Authorization header (Basic base64(token:)), as a worker sends it
-- and reads the line "BENCH_WRK_JSON {...}" that done() prints.
wrk.method = os.getenv("BENCH_WRK_METHOD") or "GET"
local body = os.getenv("BENCH_WRK_BODY")
if body ~= nil and body ~= "" then
    wrk.body = body
    wrk.headers["Content-Type"] = "application/json"
end
local auth = os.getenv("BENCH_WRK_AUTH")
if auth ~= nil and auth ~= "" then
    wrk.headers["Authorization"] = auth
end

-- No response() callback: it would slow wrk down (a Lua call per answer).
-- An answer with a status of 400 or more counts in summary.errors.status.
function done(summary, latency, requests)
    local e = summary.errors
    io.write(string.format(
        "BENCH_WRK_JSON {\"requests\": %d, \"duration_us\": %d, \"bytes\": %d, " ..
        "\"errors\": %d, \"bad_status\": %d, \"latency_mean_us\": %.3f, " ..
        "\"latency_p50_us\": %d, \"latency_p90_us\": %d, \"latency_p99_us\": %d, " ..
        "\"latency_max_us\": %d}\n",
        summary.requests, summary.duration, summary.bytes,
        e.connect + e.read + e.write + e.timeout, e.status,
        latency.mean, latency:percentile(50), latency:percentile(90),
        latency:percentile(99), latency.max))
end
