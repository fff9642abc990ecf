// What operators see: /metrics in the Prometheus text format, JSON log lines, and readiness.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <optional>
#include <regex>
#include <thread>

#include <unistd.h>

#include "raw_client.hpp"
#include "service_process.hpp"

using namespace uas::testing;
using json = nlohmann::json;

namespace {

// Parses the Prometheus text format (0.0.4): every sample line by its full series name
// (`name{labels}`), checking each line's shape on the way.
std::map<std::string, double> parse_prometheus(const std::string& text) {
  static const std::regex sample{R"(^([a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})?) (-?[0-9.eE+-]+|\+Inf|NaN)$)"};
  static const std::regex comment{R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)"};
  std::map<std::string, double> samples;
  std::stringstream lines{text};
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (line.empty() || std::regex_match(line, comment))
      continue;
    REQUIRE(std::regex_match(line, m, sample));
    samples[m[1]] = std::stod(m[3]);
  }
  return samples;
}

std::map<std::string, double> scrape(const service_process& s) {
  auto r = s.client().Get("/metrics");
  REQUIRE(r);
  REQUIRE(r->status == 200);
  CHECK_THAT(r->get_header_value("Content-Type"), Catch::StartsWith("text/plain; version=0.0.4"));
  return parse_prometheus(r->body);
}

// A request is counted once its answer has been written, so a scrape sent right after that answer
// arrived may race its count: scrapes again until `series` reads `expected` or two seconds pass.
double settled(const service_process& s, const std::string& series, double expected) {
  auto deadline = std::chrono::steady_clock::now() + 2s;
  double value = scrape(s)[series];
  while (value != expected && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(20ms);
    value = scrape(s)[series];
  }
  return value;
}

} // namespace

TEST_CASE("/metrics counts what happened") {
  service_process service;
  std::string first_id;
  for (int i = 0; i < 3; ++i) {
    auto r = service.post_event(R"({"userId":"m","eventType":"LOGIN"})");
    REQUIRE(r);
    REQUIRE(r->status == 201);
    first_id = json::parse(r->body)["eventId"];
  }
  REQUIRE(service.post_event(R"({"userId":""})")->status == 400);
  // A malformed message, an invalid one and a duplicate of a POSTed event, straight to the topic.
  auto duplicate = event_text(first_id, "m", "LOGIN");
  auto invalid = event_text("x", "m", "SIGNUP");
  REQUIRE(run_command("printf '%s\\n%s\\n%s\\n' 'not json' '" + invalid + "' '" + duplicate
                      + "' | kcat -b " + service.broker() + " -P -t user-activity-events")
            .status == 0);
  REQUIRE(service.wait_for_line("Duplicate event ignored"));
  auto m = scrape(service);
  CHECK(m["events_published_total"] == 3);
  CHECK(m["events_publish_failed_total"] == 0);
  CHECK(m["producer_retries_total"] == 0);
  CHECK(m["events_consumed_total"] == 6);
  CHECK(m["events_processed_total"] == 3);
  CHECK(m["events_duplicate_total"] == 1);
  CHECK(m["events_malformed_total"] == 1);
  CHECK(m["events_invalid_total"] == 1);
  CHECK(m["store_events"] == 3);
  // The consumer's group state comes with librdkafka's statistics, up to a second after its join.
  CHECK(settled(service, "kafka_up", 1) == 1);
  CHECK(m[R"(http_requests_total{key="none",method="POST",route="/events/generate",status="201"})"] == 3);
  CHECK(m[R"(http_requests_total{key="none",method="POST",route="/events/generate",status="400"})"] == 1);
  CHECK(m[R"(http_request_duration_seconds_count{route="/events/generate"})"] == 4);
  CHECK(m[R"(http_request_duration_seconds_bucket{route="/events/generate",le="+Inf"})"] == 4);
  CHECK(m[R"(http_request_duration_seconds_sum{route="/events/generate"})"] > 0);
  // Stray paths share one series rather than growing new ones.
  service.client().Get("/no/such/path");
  service.client().Get("/another");
  CHECK(settled(service, R"(http_requests_total{key="none",method="GET",route="unmatched",status="404"})", 2)
        == 2);
}

TEST_CASE("with LOG_FORMAT=json every line is a JSON object and an event can be followed") {
  service_process service{{{"LOG_FORMAT", "json"}}};
  auto r = service.post_event(R"({"userId":"jay","eventType":"PRODUCT_VIEW"})");
  REQUIRE(r);
  REQUIRE(r->status == 201);
  auto id = json::parse(r->body)["eventId"].get<std::string>();
  REQUIRE(service.wait_for_line("\"msg\":\"Processed event\""));
  REQUIRE(run_command("echo 'garbage' | kcat -b " + service.broker() + " -P -t user-activity-events").status == 0);
  REQUIRE(service.wait_for_line("\"msg\":\"Skipped message\""));
  REQUIRE(service.stop(SIGTERM) == 0);

  std::vector<json> about_event;
  json skipped;
  for (auto& line : service.lines()) {
    INFO(line);
    auto obj = json::parse(line, nullptr, false);
    REQUIRE(obj.is_object());
    CHECK(obj["ts"].is_string());
    CHECK(obj["level"].is_string());
    CHECK(obj["msg"].is_string());
    if (obj.value("eventId", "") == id)
      about_event.push_back(obj);
    if (obj["msg"] == "Skipped message")
      skipped = obj;
  }
  REQUIRE(about_event.size() == 1);
  CHECK(about_event[0]["msg"] == "Processed event");
  CHECK(about_event[0]["userId"] == "jay");
  CHECK(about_event[0]["eventType"] == "PRODUCT_VIEW");
  CHECK(about_event[0]["topic"] == "user-activity-events");
  CHECK(about_event[0]["partition"].is_number_integer());
  CHECK(about_event[0]["offset"] == 0);
  CHECK(skipped["partition"].is_number_integer());
  CHECK(skipped["offset"].is_number_integer());
  CHECK(skipped["reason"].is_string());
}

TEST_CASE("readiness turns 503 when the broker is down and 200 when it is back") {
  external_broker kafka;
  auto service = kafka.start();
  auto c = service.client();
  auto ready = [&] {
    auto r = c.Get("/health/ready");
    REQUIRE(r);
    return *r;
  };
  auto wait_status = [&](int status) {
    auto deadline = std::chrono::steady_clock::now() + 20s;
    auto r = ready();
    while (r.status != status && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(100ms);
      r = ready();
    }
    return r;
  };
  auto r = wait_status(200);
  REQUIRE(r.status == 200);
  CHECK(json::parse(r.body) == json{{"status", "ready"}});

  kafka.down();
  r = wait_status(503);
  REQUIRE(r.status == 503);
  // The consumer may miss its group before the producer gives up on the brokers: both are
  // reasons, and the brokers' one comes within a second or two of the other.
  auto names_brokers = [](const httplib::Response& answer) {
    auto reasons = json::parse(answer.body)["reasons"];
    return std::any_of(reasons.begin(), reasons.end(), [](const json& reason) {
      return reason.get<std::string>().find("cannot reach the Kafka brokers") != std::string::npos;
    });
  };
  for (auto deadline = std::chrono::steady_clock::now() + 20s;
       r.status == 503 && !names_brokers(r) && std::chrono::steady_clock::now() < deadline;
       r = ready())
    std::this_thread::sleep_for(100ms);
  REQUIRE(r.status == 503);
  auto body = json::parse(r.body);
  CHECK(body["status"] == "not ready");
  REQUIRE(body["reasons"].is_array());
  CHECK(names_brokers(r));
  // Liveness is another matter: the process is fine.
  CHECK(c.Get("/health")->status == 200);
  CHECK(scrape(service)["kafka_up"] == 0);

  kafka.up();
  r = wait_status(200);
  CHECK(r.status == 200);
  CHECK(scrape(service)["kafka_up"] == 1);
}

TEST_CASE("methods and paths a client makes up share one series each in http_requests_total") {
  service_process service;
  service.client().Get("/metrics"); // its own series exist from here on
  size_t after_ten = 0; // once the series the made-up ones share exist too
  for (int i = 0; i < 1000; ++i) {
    if (i == 10)
      after_ten = service.client().Get("/metrics")->body.size();
    int fd = raw::connect_local(service.port());
    REQUIRE(fd >= 0);
    REQUIRE(raw::send_all(fd, "M" + std::to_string(i) + " /p" + std::to_string(i)
                                + " HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    REQUIRE(raw::status_lines(raw::read_answers(fd, 1)).size() == 1);
    close(fd);
  }
  // Each counted once its answer is written: scrape until all are.
  double others = 0;
  size_t series = 0;
  auto deadline = std::chrono::steady_clock::now() + 2s;
  do {
    others = 0;
    series = 0;
    for (auto& [name, value] : scrape(service)) {
      if (name.rfind("http_requests_total{", 0) != 0)
        continue;
      ++series;
      if (name.find(R"(method="other",route="unmatched")") != std::string::npos)
        others += value;
    }
  } while (others < 1000 && std::chrono::steady_clock::now() < deadline);
  CHECK(others == 1000);
  CHECK(series <= 4); // the made-up ones, and GET /metrics
  CHECK(service.client().Get("/metrics")->body.size() < after_ten + 100); // digits, at most
}

TEST_CASE("a userId with control characters cannot forge a line of the text log") {
  service_process service;
  std::string forged = "2026-11-30T00:00:00.000Z error Publish failed after 4 attempts";
  auto r = service.post_event(R"({"userId":"mallory\n)" + forged + R"(\r\u001b[2J","eventType":"LOGIN"})");
  REQUIRE(r);
  REQUIRE(r->status == 201); // taken as it is: a userId is the client's to choose
  auto line = service.wait_for_line("Processed event");
  REQUIRE(line);
  CHECK_THAT(*line, Catch::Contains("userId=mallory\\n" + forged + "\\r\\u001b[2J, eventType=LOGIN"));
  for (auto& l : service.lines()) {
    INFO(l);
    CHECK(l.rfind(forged, 0) != 0);
    CHECK(l.find('\x1b') == std::string::npos);
  }
  // The event itself keeps its userId exactly.
  auto events = service.wait_processed([](const json& all) { return !all.empty(); });
  CHECK(events[0]["userId"] == "mallory\n" + forged + "\r\x1b[2J");
}

TEST_CASE("during a broker stall kafka_up and readiness turn together") {
  external_broker kafka;
  auto service = kafka.start({{"KAFKA_REQUEST_TIMEOUT_MS", "2000"}});
  auto c = service.client();
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (c.Get("/health/ready")->status != 200 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  REQUIRE(scrape(service)["kafka_up"] == 1);
  // The broker still holds its connections but answers nothing for a minute.
  rd_kafka_mock_broker_set_rtt(kafka.broker.cluster(), 1, 60000);
  auto stalled = std::chrono::steady_clock::now();
  std::optional<std::chrono::steady_clock::duration> not_ready, down;
  while ((!not_ready || !down) && std::chrono::steady_clock::now() - stalled < 40s) {
    if (!not_ready && c.Get("/health/ready")->status == 503)
      not_ready = std::chrono::steady_clock::now() - stalled;
    if (!down && scrape(service)["kafka_up"] == 0)
      down = std::chrono::steady_clock::now() - stalled;
    std::this_thread::sleep_for(100ms);
  }
  rd_kafka_mock_broker_set_rtt(kafka.broker.cluster(), 1, 0);
  REQUIRE(not_ready);
  REQUIRE(down);
  auto apart = *not_ready > *down ? *not_ready - *down : *down - *not_ready;
  CAPTURE(std::chrono::duration_cast<std::chrono::milliseconds>(*not_ready).count(),
          std::chrono::duration_cast<std::chrono::milliseconds>(*down).count());
  CHECK(apart < 1s);
}
