-- validate-many: one admin caller, the subject rotates through every token in
-- BENCH_TOKENS_FILE (one per line); each thread starts at its own offset.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function init(args)
  tokens = {}
  for line in io.lines(env("BENCH_TOKENS_FILE")) do
    if line ~= "" then tokens[#tokens + 1] = line end
  end
  if #tokens == 0 then error("no tokens in " .. env("BENCH_TOKENS_FILE")) end
  idx = ((tid or 0) * 7919) % #tokens
  headers = { ["X-Auth-Token"] = env("BENCH_ADMIN_TOKEN") }
end

function request()
  idx = idx % #tokens + 1
  headers["X-Subject-Token"] = tokens[idx]
  return wrk.format("GET", nil, headers, nil)
end
