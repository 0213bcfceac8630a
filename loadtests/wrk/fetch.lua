-- Fetch: 100 records a request from partition 0, at offsets 0, 100, ... in turn.
-- Arguments: <key> <topic> <records held> [max_records]
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

function init(args)
  local held = tonumber(args[3])
  local per = tonumber(args[4] or "100")
  local headers = common.headers(args[1], nil)
  local requests = {}
  for offset = 0, held - per, per do
    local path = string.format(
      "/v1/topics/%s/partitions/0/records?offset=%d&max_records=%d", args[2], offset, per
    )
    requests[#requests + 1] = wrk.format("GET", path, headers)
  end
  common.prepare(requests)
end

request = common.request
done = common.done
