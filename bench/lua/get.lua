-- discovery: a plain GET of the URL given to wrk (GET /v3).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
