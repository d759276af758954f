-- validate-trust: validate-hot with a trust-scoped subject (bench-user-0 impersonated by
-- bench-user-1 through a trust); the same cached path as validate-hot.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "GET"
wrk.headers["X-Auth-Token"] = env("BENCH_ADMIN_TOKEN")
wrk.headers["X-Subject-Token"] = env("BENCH_TRUST_TOKEN")
