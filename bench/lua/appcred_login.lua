-- appcred-login: POST /v3/auth/tokens with the application_credential method (id +
-- secret): one argon2id verification per login, like password.
dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local cred = env("BENCH_APPCRED_JSON")
local id = string.match(cred, '"id": *"([^"]+)"')
local secret = string.match(cred, '"secret": *"([^"]+)"')
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = string.format(
  '{"auth":{"identity":{"methods":["application_credential"],' ..
  '"application_credential":{"id":"%s","secret":"%s"}}}}', id, secret)
