-- wrk script: POST /v1/orders (or /v1/orders:batch with BENCH_BATCH > 0, or a
-- GET /v1/skus/<id> share given by BENCH_READ_PERCENT), each mutation with a
-- fresh Idempotency-Key; counts response statuses, and the problem codes of
-- error answers, per thread and prints one JSON line of results from done().
local threads = {}
local api_key = os.getenv("BENCH_KEY")
local skus = {}
for sku in string.gmatch(os.getenv("BENCH_SKUS") or "", "[^,]+") do skus[#skus + 1] = sku end
local sku_count = tonumber(os.getenv("BENCH_SKU_COUNT") or "0")
local sku_prefix = os.getenv("BENCH_SKU_PREFIX") or ""
local batch = tonumber(os.getenv("BENCH_BATCH") or "0")
local read_percent = tonumber(os.getenv("BENCH_READ_PERCENT") or "0")
-- Users take turns: user N's next order comes BENCH_USERS requests after its last.
local users = tonumber(os.getenv("BENCH_USERS") or "100000")
-- Distinct per wrk run, so runs against one server never reuse an idempotency key.
local run_id = os.getenv("BENCH_RUN") or tostring(os.time())

function setup(thread)
  thread:set("thread_id", #threads + 1)
  threads[#threads + 1] = thread
end

function init(args)
  counter = 0
  statuses = {}
  codes = {}
  math.randomseed(thread_id * 7919 + os.time())
end

local function pick_sku()
  if sku_count > 0 then return sku_prefix .. (math.random(sku_count) - 1) end
  return skus[math.random(#skus)]
end

local function order_item()
  counter = counter + 1
  local user = "u" .. ((thread_id * 1000003 + counter) % users)
  return string.format('{"sku":"%s","qty":1,"userId":"%s"', pick_sku(), user), run_id .. "-t" .. thread_id .. "-" .. counter
end

function request()
  if read_percent > 0 and math.random(100) <= read_percent then
    return wrk.format("GET", "/v1/skus/" .. pick_sku(), { ["Authorization"] = "Bearer " .. api_key })
  end
  local headers = { ["Authorization"] = "Bearer " .. api_key, ["Content-Type"] = "application/json" }
  if batch > 0 then
    local items = {}
    for i = 1, batch do
      local body, key = order_item()
      items[i] = body .. ',"idempotencyKey":"' .. key .. '"}'
    end
    return wrk.format("POST", "/v1/orders:batch", headers, '{"items":[' .. table.concat(items, ",") .. ']}')
  end
  local body, key = order_item()
  headers["Idempotency-Key"] = key
  return wrk.format("POST", "/v1/orders", headers, body .. "}")
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  -- Only error answers are read: a problem+json body names its code (e.g. overloaded).
  if status >= 400 then
    local code = string.match(body or "", '"code"%s*:%s*"([%w_]+)"') or "none"
    codes[code] = (codes[code] or 0) + 1
  end
end

-- One JSON object of the counts every thread kept in the table named `name`.
local function merged_json(name)
  local merged = {}
  for _, thread in ipairs(threads) do
    for key, count in pairs(thread:get(name)) do
      merged[tostring(key)] = (merged[tostring(key)] or 0) + count
    end
  end
  local parts = {}
  for key, count in pairs(merged) do parts[#parts + 1] = string.format('"%s":%d', key, count) end
  return "{" .. table.concat(parts, ",") .. "}"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"durationUs":%d,"p50Us":%d,"p99Us":%d,"p999Us":%d,"maxUs":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"timeout":%d},"statuses":%s,"codes":%s}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max, e.connect, e.read, e.write, e.timeout,
    merged_json("statuses"), merged_json("codes")))
end
