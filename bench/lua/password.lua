-- password: POST /v3/auth/tokens with the password method and a project scope,
-- rotating over bench-user-0 .. bench-user-(BENCH_PASSWORD_USERS-1), each scoped
-- to its own project (user i holds a role on bench-project-(i % BENCH_PROJECTS)).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

function init(args)
  users = tonumber(env("BENCH_PASSWORD_USERS"))
  projects = tonumber(env("BENCH_PROJECTS"))
  password = env("BENCH_USER_PASSWORD")
  i = ((tid or 0) * 17) % users
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  i = (i + 1) % users
  local body = string.format(
    '{"auth":{"identity":{"methods":["password"],"password":{"user":' ..
    '{"name":"bench-user-%d","domain":{"id":"default"},"password":"%s"}}},' ..
    '"scope":{"project":{"name":"bench-project-%d","domain":{"id":"default"}}}}}',
    i, password, i % projects)
  return wrk.format("POST", nil, headers, body)
end
