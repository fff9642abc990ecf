-- wrk: POST /events/batch with 100 valid events each, from 1,000 distinct userIds in turn; counts
-- answers other than 201 (a 503 is a client told to back off and retry, as wrk then does).
wrk.method = "POST"
wrk.path = "/events/batch"
wrk.headers["Content-Type"] = "application/json"

local per_batch = 100
local users = 1000
local bodies = {}
for b = 0, users / per_batch * 2 - 1 do
  local events = {}
  for i = 1, per_batch do
    local user = (b * per_batch + i) % users
    events[i] = string.format('{"userId":"bench-user-%d","eventType":"PRODUCT_VIEW","payload":{"productId":"p-%d"}}', user, i)
  end
  bodies[#bodies + 1] = "[" .. table.concat(events, ",") .. "]"
end
local next_body = 0

function request()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end

created, unavailable, other = 0, 0, 0
function response(status, headers, body)
  if status == 201 then created = created + 1
  elseif status == 503 then unavailable = unavailable + 1
  else other = other + 1 end
end
function setup(thread) table.insert(threads, thread) end
threads = {}
function done(summary, latency, requests)
  local c, u, o = 0, 0, 0
  for _, t in ipairs(threads) do
    c = c + t:get("created"); u = u + t:get("unavailable"); o = o + t:get("other")
  end
  io.write(string.format("batches_201 %d\nbatches_503 %d\nbatches_other %d\n", c, u, o))
  io.write(string.format("events_201 %d\n", c * per_batch))
  io.write(string.format("events_per_s %.0f\n", c * per_batch / (summary.duration / 1e6)))
  io.write(string.format("p99_ms %.3f\n", latency:percentile(99) / 1000))
end
