-- Produce: one JSON batch read from a file, the same body on every request.
-- Arguments: <key> <topic> <path of the body>
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

function init(args)
  local file = assert(io.open(args[3], "rb"))
  wrk.body = file:read("*a")
  file:close()
  wrk.method = "POST"
  wrk.path = "/v1/topics/" .. args[2] .. "/records"
  wrk.headers = common.headers(args[1], "application/json")
end

done = common.done
