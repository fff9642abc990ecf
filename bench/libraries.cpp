// Our own JSON reader against nlohmann/json's SAX and DOM readers, and what the libraries'
// writers (nlohmann/json's strings, prometheus-cpp's registry and text format) cost the request
// path, on the shapes it sees. Prints CPU time per operation on this thread (the best of several
// rounds), so other load on the machine moves the figures little. docs/performance.md keeps the
// figures and what was decided from them.
#include <chrono>
#include <cstdio>
#include <ctime>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/event.hpp"
#include "core/json_object.hpp"
#include "core/metrics.hpp"

namespace {

using json = nlohmann::json;

double thread_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Nanoseconds of CPU per call of `f`: the best of seven rounds of `n` calls.
double per_call_ns(size_t n, const std::function<void()>& f) {
  double best = 1e300;
  for (int round = 0; round < 7; ++round) {
    double start = thread_seconds();
    for (size_t i = 0; i < n; ++i)
      f();
    best = std::min(best, (thread_seconds() - start) / static_cast<double>(n) * 1e9);
  }
  return best;
}

void row(const char* what, double ours, double library) {
  std::printf("%-58s %9.0f ns %9.0f ns %+8.0f ns\n", what, ours, library, library - ours);
}

// nlohmann's SAX interface read the way json::read_object reads: the top-level object's string
// members decoded, any other member kept as compact JSON text (its strings written again by
// nlohmann's serializer, its numbers as they were written).
struct members_sax : nlohmann::json_sax<json> {
  std::vector<uas::json::member> members;
  int depth = 0;
  std::string* nested = nullptr; // the compact text of the member being read, below the top
  bool after_value = false;

  void separate() {
    if (nested && after_value)
      *nested += ',';
    after_value = false;
  }
  // A value: at depth 1 the current member's own; deeper, appended to its compact text.
  bool value(uas::json::kind type, const std::string& text) {
    if (depth == 1) {
      members.back().type = type;
      members.back().value = text;
    } else {
      separate();
      *nested += text;
      after_value = true;
    }
    return true;
  }
  bool null() override { return value(uas::json::kind::null, "null"); }
  bool boolean(bool b) override { return value(uas::json::kind::boolean, b ? "true" : "false"); }
  bool number_integer(number_integer_t v) override {
    return value(uas::json::kind::number, std::to_string(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    return value(uas::json::kind::number, std::to_string(v));
  }
  bool number_float(number_float_t, const string_t& raw) override {
    return value(uas::json::kind::number, raw);
  }
  bool string(string_t& s) override {
    if (depth == 1) {
      members.back().type = uas::json::kind::string;
      members.back().value = std::move(s);
      return true;
    }
    return value(uas::json::kind::string, json(s).dump());
  }
  bool binary(binary_t&) override { return false; }
  bool open(uas::json::kind type, char bracket) {
    if (depth == 1) {
      members.back().type = type;
      nested = &members.back().value;
      *nested = bracket;
      after_value = false;
    } else if (depth > 1) {
      separate();
      *nested += bracket;
    }
    ++depth;
    return depth <= uas::json::max_depth;
  }
  bool close(char bracket) {
    --depth;
    if (depth >= 1) {
      *nested += bracket;
      after_value = true;
    }
    if (depth == 1)
      nested = nullptr;
    return true;
  }
  bool start_object(std::size_t) override { return open(uas::json::kind::object, '{'); }
  bool end_object() override { return close('}'); }
  bool start_array(std::size_t) override { return open(uas::json::kind::array, '['); }
  bool end_array() override { return close(']'); }
  bool key(string_t& k) override {
    if (depth == 1) {
      members.push_back({std::move(k), uas::json::kind::null, {}});
    } else {
      separate();
      *nested += json(k).dump();
      *nested += ':';
    }
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }
};

} // namespace

int main() {
  const std::string request =
    R"({"userId":"user-4711","eventType":"PRODUCT_VIEW","payload":{"productId":"p-42","price":19.99,"tags":["new","sale"],"referrer":"https://example.com/a?b=c"}})";
  auto parsed = uas::parse_event_request(request);
  const std::string message = uas::to_json(parsed.value);

  std::printf("%-58s %12s %12s %11s\n", "per call (CPU time, best of 7)", "ours", "library",
              "difference");
  volatile size_t sink = 0;
  for (auto [name, text] : {std::pair{"read a POST body's members", &request},
                            std::pair{"read a consumed message's members", &message}}) {
    double ours = per_call_ns(200000, [&] { sink += uas::json::read_object(*text).members.size(); });
    double sax = per_call_ns(200000, [&] {
      members_sax handler;
      json::sax_parse(*text, &handler);
      sink += handler.members.size();
    });
    double dom = per_call_ns(200000, [&] {
      auto doc = json::parse(*text);
      sink += doc["payload"].dump().size();
    });
    row((std::string{name} + ": nlohmann SAX").c_str(), ours, sax);
    row((std::string{name} + ": nlohmann DOM + payload dump").c_str(), ours, dom);
  }
  // What the libraries' writers cost the request path now that the service uses them: the
  // event's JSON (strings escaped by nlohmann/json), one request counted (counter and duration
  // histogram through prometheus-cpp), and a scrape.
  std::printf("%-58s %12.0f ns\n", "write the event's JSON",
              per_call_ns(500000, [&] { sink += uas::to_json(parsed.value).size(); }));
  auto& m = uas::metrics::global();
  for (std::string route : {"/events/generate", "/events/batch", "/events/processed", "/health",
                            "/health/ready", "/metrics", "unmatched"})
    for (auto method : {"GET", "POST"})
      for (auto status : {"200", "201", "400", "503"}) {
        m.http_requests.inc({method, route, status, "none"});
        m.http_request_duration.observe(route, std::chrono::microseconds{300});
      }
  std::printf("%-58s %12.0f ns\n", "count one request (counter + duration histogram)",
              per_call_ns(500000, [&] {
                m.http_requests.inc({"POST", "/events/generate", "201", "none"});
                m.http_request_duration.observe("/events/generate", std::chrono::microseconds{300});
              }));
  std::printf("%-58s %12.0f ns\n", "render GET /metrics",
              per_call_ns(2000, [&] { sink += m.render().size(); }));
  return sink == 0;
}
