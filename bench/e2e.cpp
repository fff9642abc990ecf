// Paced load for the end-to-end figure: POSTs at a steady rate from several connections and
// prints, per acknowledged event, "eventId <TAB> epoch microseconds of the 201".
#include <atomic>
#include <chrono>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>
#include <nlohmann/json.hpp>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: bench_e2e PORT RATE_PER_SECOND SECONDS\n";
    return 2;
  }
  int port = std::atoi(argv[1]);
  int rate = std::atoi(argv[2]);
  int seconds = std::atoi(argv[3]);
  constexpr int connections = 8;
  using clock = std::chrono::steady_clock;
  auto start = clock::now() + std::chrono::milliseconds{100};
  long total = static_cast<long>(rate) * seconds;
  std::atomic<long> next{0}, errors{0};
  std::mutex out;
  std::vector<std::thread> workers;
  for (int w = 0; w < connections; ++w)
    workers.emplace_back([&] {
      httplib::Client client{"127.0.0.1", port};
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      for (long i; (i = next++) < total;) {
        // Request i is due at start + i / rate: a fixed schedule, not "as fast as answers come".
        std::this_thread::sleep_until(start + std::chrono::microseconds{i * 1'000'000 / rate});
        auto res = client.Post("/events/generate",
                               R"({"userId":"e2e-)" + std::to_string(i % 100)
                                 + R"(","eventType":"PRODUCT_VIEW","payload":{"productId":"p-1"}})",
                               "application/json");
        auto acked = std::chrono::duration_cast<std::chrono::microseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
        if (!res || res->status != 201) {
          ++errors;
          continue;
        }
        auto id = nlohmann::json::parse(res->body)["eventId"].get<std::string>();
        std::lock_guard<std::mutex> guard{out};
        std::cout << id << '\t' << acked << '\n';
      }
    });
  for (auto& w : workers)
    w.join();
  if (errors)
    std::cerr << errors << " requests were not answered 201\n";
  return errors ? 1 : 0;
}
