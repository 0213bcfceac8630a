-- Produce: 100 records of ~100 B, each with its own key (user ids), in one batch.
-- 64 bodies are prepared with keys user-0 .. user-6399 and sent in turn, so that
-- a topic of up to 1,024 partitions has every partition written.
-- Arguments: <key> <topic> [headers per record]
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local common = dofile(here .. "common.lua")

local BODIES = 64
local RECORDS = 100

function init(args)
  local path = "/v1/topics/" .. args[2] .. "/records"
  local headers = common.headers(args[1], "application/json")
  local header_count = tonumber(args[3] or "0")
  local record_headers = nil
  if header_count > 0 then
    local pairs_ = {}
    for h = 1, header_count do
      pairs_[#pairs_ + 1] = string.format('["h%d","value-%d"]', h, h)
    end
    record_headers = "[" .. table.concat(pairs_, ",") .. "]"
  end
  local value = common.value(100)
  local requests = {}
  for b = 0, BODIES - 1 do
    local function key_of(i)
      return "user-" .. (b * RECORDS + i)
    end
    local body = common.produce_body(RECORDS, value, key_of, record_headers)
    requests[#requests + 1] = wrk.format("POST", path, headers, body)
  end
  common.prepare(requests)
end

request = common.request
done = common.done
