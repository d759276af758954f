-- validate-cold: every request validates a subject token never seen before (the
-- validation cache's miss path). Each thread takes its own slice of
-- BENCH_COLD_TOKENS_FILE and sends every token once. The file must outlast the
-- run: a thread that runs out stops, but wrk still divides by the full duration,
-- so the row is flagged "tokens ran out" (raise BENCH_COLD_TOKENS).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function init(args)
  local all = {}
  for line in io.lines(env("BENCH_COLD_TOKENS_FILE")) do
    if line ~= "" then all[#all + 1] = line end
  end
  local n = tonumber(env("BENCH_WRK_THREADS"))
  tokens = {}
  for i = (tid or 0) + 1, #all, n do tokens[#tokens + 1] = all[i] end
  if #tokens == 0 then error("no cold tokens for thread " .. tostring(tid)) end
  idx = 0
  headers = { ["X-Auth-Token"] = env("BENCH_ADMIN_TOKEN") }
end

function request()
  idx = idx + 1
  if idx > #tokens then
    -- Slice exhausted: stop this thread (the few requests already queued repeat
    -- the last token) and say so in the results.
    exhausted = true
    wrk.thread:stop()
    idx = #tokens
  end
  headers["X-Subject-Token"] = tokens[idx]
  return wrk.format("GET", nil, headers, nil)
end
