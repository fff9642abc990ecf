// The service end to end: real HTTP against the built binary on its embedded broker, with kcat
// as a Kafka client no one here wrote.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "core/event.hpp"
#include "service_process.hpp"

using namespace uas::testing;
using json = nlohmann::json;

namespace {

// kcat's options for reading the whole topic once: key, tab, value per line.
std::string kcat_read_all(const std::string& broker, const std::string& topic, size_t count) {
  return "kcat -b " + broker + " -C -t " + topic + " -o beginning -c " + std::to_string(count)
         + " -e -q -f '%k\\t%s\\n'";
}

} // namespace

TEST_CASE("three POSTed events come back from GET /events/processed with all five fields") {
  service_process service;
  std::vector<std::string> ids;
  std::vector<json> bodies = {
    {{"userId", "alice"}, {"eventType", "LOGIN"}},
    {{"userId", "bob"}, {"eventType", "PRODUCT_VIEW"}, {"payload", {{"productId", "p-42"}, {"price", 9.5}}}},
    {{"userId", "alice"}, {"eventType", "LOGOUT"}, {"payload", json::object()}},
  };
  for (auto& body : bodies) {
    auto res = service.post_event(body.dump());
    REQUIRE(res);
    REQUIRE(res->status == 201);
    CHECK(res->get_header_value("Content-Type") == "application/json");
    auto answer = json::parse(res->body);
    REQUIRE(answer.contains("eventId"));
    CHECK(uas::is_uuid(answer["eventId"].get<std::string>()));
    ids.push_back(answer["eventId"]);
  }
  auto events = service.wait_processed([](const json& all) { return all.size() >= 3; });
  REQUIRE(events.size() == 3);
  std::set<std::string> seen;
  for (auto& e : events) {
    CHECK(e.size() == 5);
    seen.insert(e["eventId"].get<std::string>());
    CHECK(uas::is_utc_timestamp(e["timestamp"].get<std::string>()));
    CHECK(e["payload"].is_object());
    if (e["userId"] == "bob") {
      CHECK(e["eventType"] == "PRODUCT_VIEW");
      CHECK(e["payload"]["productId"] == "p-42");
      CHECK(e["payload"]["price"] == 9.5);
    }
  }
  CHECK(seen == std::set<std::string>(ids.begin(), ids.end()));
  for (auto& id : ids)
    CHECK(service.wait_for_line("Processed event: eventId=" + id));
}

TEST_CASE("GET /events/processed sends every event whole, and answers HEAD and Range requests") {
  service_process service;
  // Small events and one near the 1 MiB body limit, which gets a block of the store's to
  // itself: the answer spans three of them.
  std::string blob(900 * 1024, 'x');
  for (int i = 0; i < 300; ++i) {
    json body = {{"userId", "u" + std::to_string(i)}, {"eventType", "LOGIN"}};
    if (i == 150)
      body["payload"] = {{"blob", blob}};
    REQUIRE(service.post_event(body.dump())->status == 201);
  }
  auto events = service.wait_processed([](const json& all) { return all.size() >= 300; });
  REQUIRE(events.size() == 300);
  auto c = service.client();
  auto full = c.Get("/events/processed");
  REQUIRE(full);
  CHECK(full->status == 200);
  CHECK(full->get_header_value("Content-Type") == "application/json");
  auto all = json::parse(full->body);
  size_t blobs = 0;
  for (auto& e : all)
    blobs += e["payload"].value("blob", "") == blob;
  CHECK(blobs == 1);

  auto head = c.Head("/events/processed");
  REQUIRE(head);
  CHECK(head->status == 200);
  CHECK(head->get_header_value("Content-Length") == std::to_string(full->body.size()));
  CHECK(head->body.empty());

  // A range inside the big event, one across its start (where its block begins), the last byte.
  auto big = full->body.rfind(R"({"eventId")", full->body.find(R"("blob")"));
  REQUIRE(big != std::string::npos);
  for (auto [first, last] : {std::pair<size_t, size_t>{big + 1000, big + 1099},
                             {big - std::min<size_t>(big, 100), big + 100},
                             {full->body.size() - 1, full->body.size() - 1}}) {
    auto part = c.Get("/events/processed", {httplib::make_range_header({{first, last}})});
    REQUIRE(part);
    CHECK(part->status == 206);
    CHECK(part->body == full->body.substr(first, last - first + 1));
  }
  auto with_range = [&](const char* path, const char* range) {
    auto r = c.Get(path, {{"Range", range}});
    REQUIRE(r);
    return r;
  };
  auto size = std::to_string(full->body.size());
  auto suffix = with_range("/events/processed", "bytes=-5");
  CHECK(suffix->status == 206);
  CHECK(suffix->body == full->body.substr(full->body.size() - 5));
  CHECK(suffix->get_header_value("Content-Range")
        == "bytes " + std::to_string(full->body.size() - 5) + "-"
             + std::to_string(full->body.size() - 1) + "/" + size);
  // Past the end: 416 saying how long the answer is (it was 206 with a length near 2^64).
  auto past = with_range("/events/processed", "bytes=99999999-");
  CHECK(past->status == 416);
  CHECK(past->get_header_value("Content-Range") == "bytes */" + size);
  CHECK(json::parse(past->body)["message"].is_string());
  // Several ranges, and a range on a route without them: the whole answer.
  auto several = with_range("/events/processed", "bytes=0-1,5-6");
  CHECK(several->status == 200);
  CHECK(several->body == full->body);
  auto health = with_range("/health", "bytes=0-3");
  CHECK(health->status == 200);
  CHECK(health->body == R"({"status":"ok"})");
  CHECK(with_range("/nope", "bytes=0-3")->body == R"({"message":"Not found"})");
}

TEST_CASE("kcat sees each event on the topic as JSON keyed by userId") {
  service_process service;
  auto res = service.post_event(R"({"userId":"carol","eventType":"PRODUCT_VIEW","payload":{"sku":"X1"}})");
  REQUIRE(res);
  REQUIRE(res->status == 201);
  auto id = json::parse(res->body)["eventId"].get<std::string>();

  auto read = run_command(kcat_read_all(service.broker(), "user-activity-events", 1));
  REQUIRE(read.status == 0);
  auto tab = read.output.find('\t');
  REQUIRE(tab != std::string::npos);
  CHECK(read.output.substr(0, tab) == "carol");
  auto value = json::parse(read.output.substr(tab + 1));
  CHECK(value["eventId"] == id);
  CHECK(value["userId"] == "carol");
  CHECK(value["eventType"] == "PRODUCT_VIEW");
  CHECK(value["payload"]["sku"] == "X1");
  CHECK(uas::is_utc_timestamp(value["timestamp"].get<std::string>()));

  // The embedded broker answers metadata requests from kcat too.
  auto listing = run_command("kcat -b " + service.broker() + " -L");
  CHECK(listing.status == 0);
  CHECK_THAT(listing.output, Catch::Contains("user-activity-events") && Catch::Contains("3 partitions"));
}

TEST_CASE("the same event produced twice straight to the topic is stored once") {
  service_process service;
  auto text = event_text("11111111-2222-4333-8444-555555555555", "dave", "LOGIN");
  auto other = event_text("66666666-2222-4333-8444-555555555555", "erin", "LOGOUT");
  auto produce = run_command("printf '%s\\n%s\\n%s\\n' '" + text + "' '" + text + "' '" + other
                             + "' | kcat -b " + service.broker()
                             + " -P -t user-activity-events -k dave");
  REQUIRE(produce.status == 0);
  auto events = service.wait_processed([](const json& all) { return all.size() >= 2; });
  REQUIRE(service.wait_for_line("Duplicate event ignored: eventId=11111111-2222-4333-8444-555555555555"));
  events = service.processed();
  REQUIRE(events.size() == 2);
  CHECK(events[0]["eventId"] == "11111111-2222-4333-8444-555555555555");
  CHECK(events[0]["userId"] == "dave");
  CHECK(events[1]["eventId"] == "66666666-2222-4333-8444-555555555555");
  CHECK(service.count_lines("Processed event: eventId=11111111") == 1);
}

TEST_CASE("invalid requests get 400 with every problem listed") {
  service_process service;
  auto res = service.post_event(R"({"userId":"","eventType":"SIGNUP","payload":[1],"eventId":"x"})");
  REQUIRE(res);
  CHECK(res->status == 400);
  auto body = json::parse(res->body);
  CHECK(body["message"] == "Invalid request payload");
  std::set<std::string> fields;
  for (auto& e : body["errors"]) {
    CHECK(e["message"].is_string());
    fields.insert(e["field"].get<std::string>());
  }
  CHECK(fields == std::set<std::string>{"userId", "eventType", "payload", "eventId"});

  SECTION("missing fields") {
    auto r = service.post_event("{}");
    REQUIRE(r);
    CHECK(r->status == 400);
    CHECK(json::parse(r->body)["errors"].size() == 2);
  }
  SECTION("a body that is not JSON is 400, not 500") {
    for (std::string bad : {"{\"userId\": \"a\",", "not json at all", "", "\xff\xfe"}) {
      auto r = service.post_event(bad);
      REQUIRE(r);
      CHECK(r->status == 400);
      auto b = json::parse(r->body);
      CHECK(b["message"] == "Invalid request payload");
      CHECK(b["errors"][0]["field"] == "body");
    }
  }
  SECTION("a userId over 256 characters is 400, naming the field and the limit") {
    for (int i = 0; i < 20; ++i) { // a MiB each: none is taken
      auto r = service.post_event(R"({"userId":")" + std::string(1024 * 1024 - 64, 'u')
                                  + R"(","eventType":"LOGIN"})");
      REQUIRE(r);
      REQUIRE(r->status == 400);
      auto errors = json::parse(r->body)["errors"];
      REQUIRE(errors.size() == 1);
      CHECK(errors[0]["field"] == "userId");
      CHECK_THAT(errors[0]["message"].get<std::string>(), Catch::Contains("at most 256 characters"));
    }
  }
  SECTION("JSON that is not an object is 400") {
    for (std::string bad : {"[]", "\"LOGIN\"", "42", "null", "true"}) {
      auto r = service.post_event(bad);
      REQUIRE(r);
      CHECK(r->status == 400);
      CHECK(json::parse(r->body)["message"] == "Invalid request payload");
    }
  }
  // Nothing invalid reached the topic or the store.
  CHECK(service.processed().empty());
}

TEST_CASE("size, media type, path and method errors have their status and a JSON message") {
  service_process service;
  auto c = service.client();
  SECTION("a body over 1 MiB is 413") {
    std::string big = R"({"userId":"u","eventType":"LOGIN","payload":{"blob":")"
                      + std::string(1024 * 1024, 'x') + "\"}}";
    auto r = service.post_event(big);
    REQUIRE(r);
    CHECK(r->status == 413);
    CHECK(json::parse(r->body)["message"].is_string());
  }
  SECTION("a body just under 1 MiB is accepted") {
    std::string body = R"({"userId":"u","eventType":"LOGIN","payload":{"blob":")";
    body += std::string(1024 * 1024 - body.size() - 4, 'x') + "\"}}";
    auto r = service.post_event(body);
    REQUIRE(r);
    CHECK(r->status == 201);
  }
  SECTION("a body sent in chunks has the same limit") {
    auto send_in_chunks = [&](const std::string& body) {
      return c.Post(
        "/events/generate",
        [&body](size_t offset, httplib::DataSink& sink) {
          if (offset == body.size())
            sink.done();
          else
            sink.write(body.data() + offset, std::min<size_t>(body.size() - offset, 64 * 1024));
          return true;
        },
        "application/json");
    };
    std::string big = R"({"userId":"u","eventType":"LOGIN","payload":{"blob":")"
                      + std::string(3 * 1024 * 1024, 'x') + "\"}}";
    auto r = send_in_chunks(big);
    REQUIRE(r);
    CHECK(r->status == 413);
    CHECK(json::parse(r->body)["message"] == "Request body exceeds 1 MiB");
    auto ok = send_in_chunks(R"({"userId":"chunked","eventType":"LOGIN"})");
    REQUIRE(ok);
    CHECK(ok->status == 201);
  }
  SECTION("a POST with no body and no Content-Length gets the route's own answer") {
    // Such a request has no body (RFC 9112); curl -X POST without data sends one.
    auto answer = [&](const std::string& path) {
      return run_command("curl -s -o /dev/null -w '%{http_code}' -X POST http://127.0.0.1:"
                         + std::to_string(service.port()) + path)
        .output;
    };
    CHECK(answer("/events/generate") == "400");
    CHECK(answer("/health") == "405");
    CHECK(answer("/nope") == "404");
    auto r = run_command("curl -s -X POST -H 'Content-Type: application/json' http://127.0.0.1:"
                         + std::to_string(service.port()) + "/events/generate");
    CHECK(json::parse(r.output)["message"] == "Invalid request payload");
  }
  SECTION("a body in chunks to any other route is not read: 404 or 405") {
    auto to = [&](const std::string& path) {
      return run_command("curl -s -o /dev/null -w '%{http_code}' -X POST "
                         "-H 'Transfer-Encoding: chunked' --data-binary abc http://127.0.0.1:"
                         + std::to_string(service.port()) + path)
        .output;
    };
    CHECK(to("/nope") == "404");
    CHECK(to("/health") == "405");
  }
  SECTION("a Content-Type other than application/json or text/plain is 415") {
    auto r = service.post_event(R"({"userId":"u","eventType":"LOGIN"})", "application/xml");
    REQUIRE(r);
    CHECK(r->status == 415);
    CHECK(json::parse(r->body)["message"].is_string());
    // A multipart body, which httplib would read as form parts, is refused the same way.
    std::string form = "--x\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n"
                       R"({"userId":"u","eventType":"LOGIN"})" "\r\n--x--\r\n";
    for (auto* path : {"/events/generate", "/events/batch"}) {
      INFO(path);
      auto refused = c.Post(path, form, "multipart/form-data; boundary=x");
      REQUIRE(refused);
      CHECK(refused->status == 415);
    }
    auto ok = service.post_event(R"({"userId":"u","eventType":"LOGIN"})",
                                 "application/json; charset=utf-8");
    REQUIRE(ok);
    CHECK(ok->status == 201);
  }
  SECTION("Content-Encoding in any case; a body that does not inflate is a 400 saying so") {
    // The answer's body, a space, and its status.
    auto post = [&](const std::string& body_command, const std::string& coding) {
      return run_command(body_command + " | curl -s -w ' %{http_code}' --data-binary @- "
                         "-H 'Content-Type: application/json' -H 'Content-Encoding: " + coding
                         + "' http://127.0.0.1:"
                         + std::to_string(service.port()) + "/events/generate")
        .output;
    };
    auto gzipped = "printf '{\"userId\":\"u\",\"eventType\":\"LOGIN\"}' | gzip";
    CHECK_THAT(post(gzipped, "GZIP"), Catch::EndsWith(" 201"));
    auto broken = post("printf 'no gzip here'", "gzip");
    CHECK_THAT(broken, Catch::EndsWith(" 400"));
    CHECK_THAT(broken, Catch::Contains(R"({"field":"body","message":"body is not valid gzip"})"));
  }
  SECTION("no Content-Type at all is accepted") {
    // curl with an empty -H 'Content-Type:' sends no such header at all.
    auto r = run_command("curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type:' "
                         "--data-binary '{\"userId\":\"u\",\"eventType\":\"LOGIN\"}' "
                         "http://127.0.0.1:" + std::to_string(service.port()) + "/events/generate");
    CHECK(r.output == "201");
  }
  SECTION("an unknown path is 404") {
    auto r = c.Get("/nope");
    REQUIRE(r);
    CHECK(r->status == 404);
    CHECK(json::parse(r->body)["message"].is_string());
  }
  SECTION("a known path with the wrong method is 405") {
    auto r = c.Get("/events/generate");
    REQUIRE(r);
    CHECK(r->status == 405);
    CHECK(r->get_header_value("Allow") == "POST, OPTIONS");
    CHECK(json::parse(r->body)["message"].is_string());
    auto d = c.Put("/events/processed", "", "text/plain");
    REQUIRE(d);
    CHECK(d->status == 405);
    CHECK(d->get_header_value("Allow") == "GET, HEAD, DELETE");
    // Methods httplib has no routes for at all.
    auto status_of = [&](const std::string& method, const std::string& path) {
      return run_command("curl -s -o /dev/null -w '%{http_code}' -X " + method
                         + " http://127.0.0.1:" + std::to_string(service.port()) + path)
        .output;
    };
    CHECK(status_of("TRACE", "/health") == "405");
    CHECK(status_of("TRACE", "/nope") == "404");
  }
  SECTION("health") {
    auto r = c.Get("/health");
    REQUIRE(r);
    CHECK(r->status == 200);
    CHECK(json::parse(r->body) == json{{"status", "ok"}});
  }
}

TEST_CASE("SIGTERM shuts down cleanly with exit status 0") {
  service_process service;
  auto r = service.post_event(R"({"userId":"u","eventType":"LOGIN"})");
  REQUIRE(r);
  REQUIRE(r->status == 201);
  // Consumed too: nothing the consumer's thread keeps from handing over batches holds shutdown up.
  REQUIRE(service.wait_for_line("Processed event"));
  auto started = std::chrono::steady_clock::now();
  CHECK(service.stop(SIGTERM, 15s) == 0);
  CHECK(std::chrono::steady_clock::now() - started < 10s);
  CHECK(service.wait_for_line("Shutdown complete", 1s));
}

TEST_CASE("command line and configuration errors") {
  auto help = run_command(std::string{UAS_BINARY} + " --help");
  CHECK(help.status == 0);
  CHECK_THAT(help.output, Catch::Contains("KAFKA_PRODUCER_RETRY_BACKOFF_MS")
                            && Catch::Contains("HTTP_THREADS"));
  auto version = run_command(std::string{UAS_BINARY} + " --version");
  CHECK(version.status == 0);
  CHECK_THAT(version.output, Catch::StartsWith("user-activity-service "));
  auto bad = run_command("PORT=http " + std::string{UAS_BINARY});
  CHECK(bad.status == 2);
  CHECK_THAT(bad.output, Catch::Contains("PORT"));
  auto unknown = run_command(std::string{UAS_BINARY} + " --frobnicate");
  CHECK(unknown.status == 2);
  auto too_few = run_command("HTTP_THREADS=8 HTTP_MAX_THREADS=4 " + std::string{UAS_BINARY});
  CHECK(too_few.status == 2);
  CHECK_THAT(too_few.output, Catch::Contains("HTTP_MAX_THREADS"));
}

TEST_CASE("HOST is the address the service listens on, said in the start-up line") {
  // Any address from 127.0.0.0/8 is this machine: listening on 127.0.0.2 only, the service is
  // out of reach on 127.0.0.1.
  service_process service{{{"HOST", "127.0.0.2"}}};
  auto line = service.wait_for_line("HTTP server listening");
  REQUIRE(line);
  CHECK_THAT(*line, Catch::Contains("host=127.0.0.2"));
  CHECK_THAT(service.lines().front(), Catch::Contains("host=127.0.0.2"));
  httplib::Client there{"127.0.0.2", service.port()};
  auto r = there.Get("/health");
  REQUIRE(r);
  CHECK(r->status == 200);
  CHECK_FALSE(service.client().Get("/health"));
  // By default every address.
  service_process everywhere;
  CHECK_THAT(everywhere.lines().front(), Catch::Contains("host=0.0.0.0"));
  CHECK(everywhere.client().Get("/health"));
}

TEST_CASE("unreachable brokers at start exit 1 naming them, within the connection timeout") {
  auto started = std::chrono::steady_clock::now();
  service_process service{{{"KAFKA_BROKERS", "127.0.0.1:1"}, {"KAFKA_CONNECTION_TIMEOUT_MS", "2000"}},
                          false};
  CHECK(service.wait_exit(10s) == 1);
  CHECK(std::chrono::steady_clock::now() - started < 5s);
  auto line = service.wait_for_line("Cannot reach Kafka brokers", 1s);
  REQUIRE(line);
  CHECK_THAT(*line, Catch::Contains("127.0.0.1:1"));
}
