-- Shared by the phase scripts (loaded with dofile): the arguments, the request
-- bodies, and the one line of JSON that loadtests.wrk_runner reads back.
--
-- Every phase script is run as `wrk -s <phase>.lua <url> -- <key> <topic> ...`:
-- the first argument is the API key, the second the topic. The bodies are built
-- once per wrk thread in init(), so request() only hands back a ready string
-- and the load generator's own cost per request stays the same on both sides.

local common = {}

-- One record value of about `bytes` bytes of compact JSON: {"payload":"xxx..."}.
function common.value(bytes)
  return '{"payload":"' .. string.rep("x", bytes - 14) .. '"}'
end

-- A produce body of `count` records. `key_of(i)` gives record i's key (nil:
-- unkeyed); `headers` is a JSON array of [name, value] pairs for every record
-- (nil: none).
function common.produce_body(count, value, key_of, headers)
  local parts = {}
  for i = 0, count - 1 do
    local record = '{'
    local key = key_of and key_of(i)
    if key then
      record = record .. '"key":"' .. key .. '",'
    end
    if headers then
      record = record .. '"headers":' .. headers .. ','
    end
    parts[#parts + 1] = record .. '"value":' .. value .. '}'
  end
  return '{"records":[' .. table.concat(parts, ',') .. ']}'
end

-- The request line and headers every phase sends.
function common.headers(key, content_type)
  local headers = { ["Authorization"] = "Bearer " .. key }
  if content_type then
    headers["Content-Type"] = content_type
  end
  return headers
end

-- Prepared requests, handed out in turn by common.request. wrk decides whether
-- a script's requests change by looking for a global request() when it loads
-- the script, before any init(), so a phase sets `request = common.request` at
-- the top level and fills the list in init() (the state that wrk first loads to
-- check the script never runs init, and gets wrk's default request).
local prepared = nil
local turn = 0

function common.prepare(requests)
  prepared = requests
end

function common.request()
  if prepared == nil then
    return wrk.format()
  end
  turn = turn % #prepared + 1
  return prepared[turn]
end

-- Quantiles written by done(): a point in the middle of every 1% of the
-- distribution and of every 0.1% of its top 1%, each standing for that share of
-- the requests, so that runs cut into slices can be merged by weight.
local function quantile_points()
  local points = {}
  for k = 0, 98 do
    points[#points + 1] = { k + 0.5, 1.0 }
  end
  for k = 0, 9 do
    points[#points + 1] = { 99.05 + k * 0.1, 0.1 }
  end
  return points
end

-- wrk's done(): one line `WRK_JSON {...}` on stdout, latencies in microseconds.
-- errors.status counts responses with a status of 400 and above (wrk's own
-- count); the runner fails a phase on any error of any kind.
function common.done(summary, latency, requests)
  local e = summary.errors
  local quantiles = {}
  for _, point in ipairs(quantile_points()) do
    quantiles[#quantiles + 1] = string.format(
      "[%.2f,%.2f,%d]", point[1], point[2], latency:percentile(point[1])
    )
  end
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"latency_us":{"min":%d,"mean":%.1f,"max":%d,"p50":%d,"p99":%d},'
      .. '"quantiles":[%s]}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency.mean, latency.max,
    latency:percentile(50), latency:percentile(99),
    table.concat(quantiles, ",")
  ))
end

return common
