// Latency of one GET, asked again and again over one keep-alive connection: prints the median,
// the 99th percentile and the worst of COUNT answers, in milliseconds, and the answer's size.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <vector>

#include <httplib.h>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::cerr << "usage: bench_pages PORT PATH COUNT\n";
    return 2;
  }
  httplib::Client client{"127.0.0.1", std::atoi(argv[1])};
  client.set_keep_alive(true);
  client.set_tcp_nodelay(true);
  std::string path = argv[2];
  int count = std::atoi(argv[3]);
  std::vector<double> ms;
  size_t bytes = 0;
  for (int i = 0; i < count + 5; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto res = client.Get(path.c_str());
    auto took = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start);
    if (!res || res->status != 200) {
      std::cerr << path << ": " << (res ? std::to_string(res->status) : httplib::to_string(res.error()))
                << '\n';
      return 1;
    }
    if (i >= 5) // the first few warm the connection and the server's caches
      ms.push_back(took.count());
    bytes = res->body.size();
  }
  std::sort(ms.begin(), ms.end());
  auto at = [&](double q) { return ms[std::min(ms.size() - 1, static_cast<size_t>(q * ms.size()))]; };
  std::cout.setf(std::ios::fixed);
  std::cout.precision(2);
  std::cout << "p50_ms " << at(0.5) << " p99_ms " << at(0.99) << " max_ms " << ms.back()
            << " bytes " << bytes << '\n';
}
