-- wrk: POST /events/generate with a valid body; counts answers other than 201.
wrk.method = "POST"
wrk.path = "/events/generate"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"userId":"bench-user","eventType":"PRODUCT_VIEW","payload":{"productId":"p-42"}}'

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
end
