-- Produce: one unkeyed record of ~100 B a request.
-- Arguments: <key> <topic>
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

function init(args)
  wrk.method = "POST"
  wrk.path = "/v1/topics/" .. args[2] .. "/records"
  wrk.headers = common.headers(args[1], "application/json")
  wrk.body = common.produce_body(1, common.value(100))
end

done = common.done
