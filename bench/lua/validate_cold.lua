-- validate-cold: every request validates a subject token never seen before (the
-- validation cache's miss path). Each thread takes its own slice of
-- BENCH_COLD_TOKENS_FILE, sends every token once and stops when its slice is done
-- (or when wrk's -d duration ends, whichever comes first).
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
    -- the last token).
    wrk.thread:stop()
    idx = #tokens
  end
  headers["X-Subject-Token"] = tokens[idx]
  return wrk.format("GET", nil, headers, nil)
end
