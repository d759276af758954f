-- Shared by every workload script: wrk's own figures as one JSON line
-- ("BENCH_JSON {...}"), read by `benchctl.py record`. Latencies are wrk's
-- per-request histogram (microseconds), reported here in milliseconds.

local counter = 0
local threads = {}

-- Give each wrk thread a number so rotating scripts start at different offsets.
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  threads[#threads + 1] = thread
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local e = summary.errors
  -- validate_cold.lua sets `exhausted` in a thread that ran out of tokens: wrk still
  -- divides by the full duration, so such a rate is understated.
  local exhausted = 0
  for _, t in ipairs(threads) do
    if t:get("exhausted") then exhausted = exhausted + 1 end
  end
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_s":%.3f,"rps":%.1f,' ..
    '"p50_ms":%.3f,"p90_ms":%.3f,"p99_ms":%.3f,"max_ms":%.3f,' ..
    '"errors_status":%d,"errors_connect":%d,"errors_read":%d,"errors_write":%d,"errors_timeout":%d,' ..
    '"exhausted_threads":%d}\n',
    summary.requests, secs, summary.requests / secs,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000,
    e.status, e.connect, e.read, e.write, e.timeout, exhausted))
end

function env(name)
  local v = os.getenv(name)
  if v == nil or v == "" then
    error("environment variable " .. name .. " is not set")
  end
  return v
end
