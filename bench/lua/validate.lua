-- validate-hot / validate-nocatalog: one admin caller, one subject token, over and
-- over (the URL carries ?nocatalog for validate-nocatalog).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "GET"
wrk.headers["X-Auth-Token"] = env("BENCH_ADMIN_TOKEN")
wrk.headers["X-Subject-Token"] = env("BENCH_SUBJECT_TOKEN")
