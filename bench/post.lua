-- wrk: POST /events/generate with valid bodies from BENCH_USERS distinct userIds (default 1,000;
-- 1 for the single-key row), taken in turn; counts answers other than 201.
wrk.method = "POST"
wrk.path = "/events/generate"
wrk.headers["Content-Type"] = "application/json"

local users = tonumber(os.getenv("BENCH_USERS") or "1000")
local bodies = {}
for i = 1, users do
  bodies[i] = string.format('{"userId":"bench-user-%d","eventType":"PRODUCT_VIEW","payload":{"productId":"p-42"}}', i)
end
local next_body = 0

function request()
  next_body = next_body % users + 1
  return wrk.format(nil, nil, nil, bodies[next_body])
end

not_created = 0
function response(status, headers, body)
  if status ~= 201 then not_created = not_created + 1 end
end
-- wrk runs response() in per-thread Lua states; their counts are summed in done().
function setup(thread) table.insert(threads, thread) end
threads = {}
function done(summary, latency, requests)
  local total = 0
  for _, t in ipairs(threads) do total = total + t:get("not_created") end
  io.write(string.format("not_201 %d\n", total))
  io.write(string.format("p50_ms %.3f\np99_ms %.3f\n", latency:percentile(50) / 1000, latency:percentile(99) / 1000))
  io.write(string.format("rps %.0f\n", summary.requests / (summary.duration / 1e6)))
  io.write(string.format("requests %d\n", summary.requests))
end
