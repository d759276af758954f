-- rescope: POST /v3/auth/tokens with the token method, an unscoped token of
-- bench-user-0 -> project bench-project-0 (the response carries the catalog, as
-- by default).
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format(
  '{"auth":{"identity":{"methods":["token"],"token":{"id":"%s"}},' ..
  '"scope":{"project":{"name":"bench-project-0","domain":{"id":"default"}}}}}',
  env("BENCH_UNSCOPED_TOKEN"))
