-- Produce: 100 unkeyed records of ~100 B in one JSON batch (the one-partition phase).
-- Arguments: <key> <topic> [records]
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

function init(args)
  local records = tonumber(args[3] or "100")
  wrk.method = "POST"
  wrk.path = "/v1/topics/" .. args[2] .. "/records"
  wrk.headers = common.headers(args[1], "application/json")
  wrk.body = common.produce_body(records, common.value(100))
end

done = common.done
