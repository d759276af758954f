-- validate-appcred: validate-hot with an application-credential token as the subject
-- (bench-user-0's credential on bench-project-0): the same cached path.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local cred = env("BENCH_APPCRED_JSON")
wrk.method = "GET"
wrk.headers["X-Auth-Token"] = env("BENCH_ADMIN_TOKEN")
wrk.headers["X-Subject-Token"] = string.match(cred, '"token": *"([^"]+)"')
