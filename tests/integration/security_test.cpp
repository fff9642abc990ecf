// Security as its users meet it, with real clients: API keys and their scopes through curl, the
// key file re-read on SIGHUP, the per-key rate limit, HTTPS with a certificate made by openssl,
// settings that will not do refused at start, and no secret in any log line.
#include <catch2/catch.hpp>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "postgres_server.hpp"
#include "service_process.hpp"

using namespace uas::testing;
using json = nlohmann::json;

namespace {

// A folder of its own for the test's files, removed with it.
struct scratch_dir {
  std::string path;
  scratch_dir() {
    char name[] = "/tmp/uas-security-XXXXXX";
    REQUIRE(mkdtemp(name));
    path = name;
  }
  ~scratch_dir() { run_command("rm -rf '" + path + "'"); }
  std::string file(const std::string& name) const { return path + "/" + name; }
  std::string write(const std::string& name, const std::string& text) const {
    std::ofstream{file(name)} << text;
    return file(name);
  }
};

// The key's line of a key file, its hash made by the service's own hash-key.
std::string key_line(const std::string& name, const std::string& scopes, const std::string& key) {
  auto hashed = run_command("printf '%s' '" + key + "' | " UAS_BINARY " hash-key");
  REQUIRE(hashed.status == 0);
  REQUIRE(hashed.output.size() == 65);
  return name + " " + scopes + " " + hashed.output;
}

const std::string ingest_key = "ik-6b1f3c0e9a7d4f2b8e5c1a0d3f7b9e2c";
const std::string read_key = "rk-0a9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c";
const std::string metrics_key = "mk-11223344556677889900aabbccddeeff";
const std::string admin_key = "ak-ffeeddccbbaa00998877665544332211";
const std::string unknown_key = "uk-5f4e3d2c1b0a99887766554433221100";

std::string key_file_text() {
  return "# the test's keys\n" + key_line("collector", "ingest", ingest_key)
         + key_line("dashboard", "read", read_key) + key_line("prometheus", "metrics", metrics_key)
         + key_line("operator", "admin", admin_key);
}

// One answer as curl saw it.
struct answer {
  int status = 0; // 0: no HTTP answer at all
  std::map<std::string, std::string> headers; // names in lower case
  std::string body;
  std::string output; // everything curl printed, errors included
};

answer curl(const std::string& args) {
  answer a;
  a.output = run_command("curl -sS -i --max-time 30 " + args).output;
  auto head_end = a.output.find("\r\n\r\n");
  if (a.output.rfind("HTTP/", 0) != 0 || head_end == std::string::npos)
    return a;
  a.status = std::stoi(a.output.substr(a.output.find(' ') + 1, 3));
  std::stringstream head{a.output.substr(0, head_end)};
  std::string line;
  std::getline(head, line);
  while (std::getline(head, line)) {
    auto colon = line.find(':');
    if (colon == std::string::npos)
      continue;
    auto name = line.substr(0, colon);
    for (auto& c : name)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    auto value = line.substr(colon + 1);
    value.erase(0, value.find_first_not_of(' '));
    if (!value.empty() && value.back() == '\r')
      value.pop_back();
    a.headers[name] = value;
  }
  a.body = a.output.substr(head_end + 4);
  return a;
}

std::string bearer(const std::string& key) {
  return key.empty() ? "" : "-H 'Authorization: Bearer " + key + "' ";
}

std::string url(const service_process& s, const std::string& path) {
  return "'http://127.0.0.1:" + std::to_string(s.port()) + path + "'";
}

answer post_event(const service_process& s, const std::string& key,
                  const std::string& body = R"({"userId":"sec","eventType":"LOGIN"})") {
  return curl(bearer(key) + "-H 'Content-Type: application/json' -d '" + body + "' "
              + url(s, "/events/generate"));
}

// A service answering every route but the health checks only to the test's keys.
std::map<std::string, std::string> with_keys(const scratch_dir& dir,
                                             std::map<std::string, std::string> env = {}) {
  env["API_KEYS_FILE"] = dir.write("keys", key_file_text());
  return env;
}

// A self-signed certificate for localhost and 127.0.0.1, and its key, made with openssl.
void make_certificate(const scratch_dir& dir, const std::string& name) {
  auto made = run_command("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                          "-nodes -days 1 -subj /CN=localhost "
                          "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "
                          + dir.file(name + ".key") + " -out " + dir.file(name + ".crt"));
  INFO(made.output);
  REQUIRE(made.status == 0);
}

} // namespace

TEST_CASE("hash-key prints the SHA-256 of the key on stdin and refuses one too weak to be a key") {
  auto expected = run_command("printf '%s' '" + ingest_key + "' | sha256sum | cut -d' ' -f1").output;
  auto hashed = run_command("echo '" + ingest_key + "' | " UAS_BINARY " hash-key");
  CHECK(hashed.status == 0);
  CHECK(hashed.output == expected); // the newline echo adds is not part of the key
  auto weak = run_command("echo password | " UAS_BINARY " hash-key");
  CHECK(weak.status == 2);
  CHECK_THAT(weak.output, Catch::Contains("at least 16"));
  CHECK_THAT(weak.output, !Catch::Contains("password"));
}

TEST_CASE("every route with no key, an unknown key, a key of another scope, and its own key") {
  scratch_dir dir;
  service_process service{
    with_keys(dir, {{"LOG_LEVEL", "debug"}, {"CORS_ALLOWED_ORIGINS", "https://shop.example"}})};
  auto check_refusals = [&](const std::string& what, auto request, const std::string& own_key) {
    INFO(what);
    auto none = request("");
    CHECK(none.status == 401);
    CHECK_THAT(none.headers["www-authenticate"], Catch::StartsWith("Bearer"));
    CHECK(json::parse(none.body).contains("message"));
    auto unknown = request(unknown_key);
    CHECK(unknown.status == 401);
    CHECK_THAT(unknown.headers["www-authenticate"], Catch::Contains(R"(error="invalid_token")"));
    CHECK(json::parse(unknown.body).contains("message"));
    for (auto& other : {ingest_key, read_key, metrics_key, admin_key}) {
      if (other == own_key)
        continue;
      auto wrong = request(other);
      CHECK(wrong.status == 403);
      CHECK(json::parse(wrong.body).contains("message"));
    }
  };

  auto post = [&](const std::string& key) { return post_event(service, key); };
  check_refusals("POST /events/generate", post, ingest_key);
  // A page of an allowed origin can read why its events were refused.
  auto refused = curl("-H 'Origin: https://shop.example' -H 'Content-Type: application/json' -d '{}' "
                      + url(service, "/events/generate"));
  CHECK(refused.status == 401);
  CHECK(refused.headers["access-control-allow-origin"] == "https://shop.example");
  CHECK(curl("-X OPTIONS -H 'Origin: https://shop.example' " + url(service, "/events/generate")).status
        == 204); // a preflight carries no key
  auto posted = post(ingest_key);
  REQUIRE(posted.status == 201);
  auto id = json::parse(posted.body)["eventId"].get<std::string>();

  auto batch = [&](const std::string& key) {
    return curl(bearer(key) + "-H 'Content-Type: application/json' -d '"
                + R"([{"userId":"sec","eventType":"LOGOUT"}])" + "' " + url(service, "/events/batch"));
  };
  check_refusals("POST /events/batch", batch, ingest_key);
  CHECK(batch(ingest_key).status == 201);

  auto list = [&](const std::string& key) { return curl(bearer(key) + url(service, "/events/processed")); };
  check_refusals("GET /events/processed", list, read_key);
  auto deadline = std::chrono::steady_clock::now() + 20s;
  while (list(read_key).body.find(id) == std::string::npos && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(50ms);
  CHECK_THAT(list(read_key).body, Catch::Contains(id));

  auto erase = [&](const std::string& key) {
    return curl("-X DELETE " + bearer(key) + url(service, "/events/processed?userId=sec"));
  };
  check_refusals("DELETE /events/processed", erase, admin_key);
  // The admin key passes the screen; the route's own answer follows.
  CHECK(erase(admin_key).status != 401);
  CHECK(erase(admin_key).status != 403);

  auto scrape = [&](const std::string& key) { return curl(bearer(key) + url(service, "/metrics")); };
  check_refusals("GET /metrics", scrape, metrics_key);
  auto metrics = scrape(metrics_key);
  REQUIRE(metrics.status == 200);
  // Counted under the key's name, and under "none" without a valid one.
  CHECK_THAT(metrics.body, Catch::Contains(R"(key="collector",method="POST",route="/events/generate",status="201"})"));
  CHECK_THAT(metrics.body, Catch::Contains(R"(key="none",method="POST",route="/events/generate",status="401"})"));
  CHECK_THAT(metrics.body, Catch::Contains(R"(key="dashboard",method="POST",route="/events/generate",status="403"})"));

  // A path of no route is told apart from a route only with a key.
  CHECK(curl(url(service, "/no/such/path")).status == 401);
  CHECK(curl(bearer(read_key) + url(service, "/no/such/path")).status == 404);

  // Health checks need no key.
  CHECK(curl(url(service, "/health")).status == 200);
  CHECK(curl(url(service, "/health/ready")).status != 401);

  // The key's name is in the request's log line; no key is in any line.
  auto answered = service.wait_for_line("key=collector");
  REQUIRE(answered);
  CHECK_THAT(*answered, Catch::Contains("status=201"));
  for (auto& line : service.lines())
    for (auto& key : {ingest_key, read_key, metrics_key, admin_key, unknown_key})
      CHECK_THAT(line, !Catch::Contains(key.substr(3)));
}

TEST_CASE("SIGHUP re-reads the key file: a revoked key is refused, a new one taken, a broken file changes nothing") {
  scratch_dir dir;
  auto env = with_keys(dir);
  service_process service{env};
  REQUIRE(post_event(service, ingest_key).status == 201);
  REQUIRE(post_event(service, unknown_key).status == 401);

  // collector revoked, a new key for a second collector.
  dir.write("keys", key_line("collector-2", "ingest", unknown_key) + key_line("dashboard", "read", read_key));
  service.signal(SIGHUP);
  REQUIRE(service.wait_for_line("API keys re-read"));
  CHECK(post_event(service, ingest_key).status == 401);
  CHECK(post_event(service, unknown_key).status == 201);

  // A file with a mistake in it leaves the keys as they were, and says why.
  dir.write("keys", "collector ingest not-a-hash\n");
  service.signal(SIGHUP);
  auto refused = service.wait_for_line("API keys not re-read");
  REQUIRE(refused);
  CHECK_THAT(*refused, Catch::Contains("line 1"));
  CHECK(post_event(service, unknown_key).status == 201);
  CHECK(service.running());
}

TEST_CASE("past RATE_LIMIT_PER_KEY a key is answered 429 with Retry-After, and other keys go on") {
  scratch_dir dir;
  auto env = with_keys(dir, {{"RATE_LIMIT_PER_KEY", "2"}});
  env["API_KEYS_FILE"] = dir.write("keys", key_file_text() + key_line("collector-2", "ingest", unknown_key));
  service_process service{env};
  // Sent one after another; however slowly they are answered, 2 a second plus the burst of 2 is
  // all that may get through before the first 429.
  auto began = std::chrono::steady_clock::now();
  int accepted = 0;
  answer limited;
  for (int i = 0; i < 40 && limited.status == 0; ++i) {
    auto a = post_event(service, ingest_key);
    if (a.status == 429) {
      limited = a;
    } else {
      REQUIRE(a.status == 201);
      ++accepted;
    }
  }
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  REQUIRE(limited.status == 429);
  CHECK(accepted >= 2);
  CHECK(accepted <= 2 + 2 * seconds + 1);
  CHECK_THAT(limited.headers["retry-after"], Catch::Matches("[1-9][0-9]*"));
  CHECK_THAT(json::parse(limited.body)["message"].get<std::string>(), Catch::Contains("collector"));
  // Another key has a bucket of its own.
  CHECK(post_event(service, unknown_key).status == 201);
  // After the wait it was told, the key may send again.
  std::this_thread::sleep_for(std::chrono::seconds{std::stoi(limited.headers["retry-after"])});
  CHECK(post_event(service, ingest_key).status == 201);
}

TEST_CASE("a batch counts each of its events against the key's rate") {
  scratch_dir dir;
  service_process service{with_keys(dir, {{"RATE_LIMIT_PER_KEY", "1"}})};
  std::string batch = "[";
  for (int i = 0; i < 3; ++i)
    batch += std::string{i ? "," : ""} + R"({"userId":"b","eventType":"LOGIN"})";
  batch += "]";
  // Three events with a bucket of one: taken (a batch is never refused for good), and then
  // paid for: the next event waits until three seconds' worth have come.
  auto taken = curl(bearer(ingest_key) + "-H 'Content-Type: application/json' -d '" + batch + "' "
                    + url(service, "/events/batch"));
  REQUIRE(taken.status == 201);
  auto next = post_event(service, ingest_key);
  REQUIRE(next.status == 429);
  CHECK(std::stoi(next.headers["retry-after"]) >= 2); // one event's worth would be 1
}

TEST_CASE("HTTPS: curl verifies the certificate and is served, plain HTTP and TLS 1.1 are refused") {
  scratch_dir dir;
  make_certificate(dir, "server");
  auto env = with_keys(dir);
  env["TLS_CERT_FILE"] = dir.file("server.crt");
  env["TLS_KEY_FILE"] = dir.file("server.key");
  service_process service{env};
  REQUIRE(service.wait_for_line("scheme=https"));
  auto https = "https://localhost:" + std::to_string(service.port());
  auto ca = "--cacert " + dir.file("server.crt") + " ";

  auto health = curl(ca + https + "/health");
  CHECK(health.status == 200);
  auto posted = curl(ca + bearer(ingest_key) + "-H 'Content-Type: application/json' -d '"
                     + R"({"userId":"tls","eventType":"LOGIN"})" + "' " + https + "/events/generate");
  CHECK(posted.status == 201);
  CHECK(curl(ca + https + "/events/processed").status == 401);

  // A client that does not trust the certificate stops before sending anything.
  CHECK(curl(https + "/health").status == 0);
  // Plain HTTP to the TLS port gets no HTTP answer.
  auto plain = curl(url(service, "/health"));
  CHECK(plain.status == 0);
  // TLS 1.1 is refused, by its version, even to a client willing to speak it.
  auto old = run_command("openssl s_client -connect 127.0.0.1:" + std::to_string(service.port())
                         + " -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' </dev/null");
  CHECK(old.status != 0);
  CHECK_THAT(old.output, Catch::Contains("alert protocol version"));
  auto modern = run_command("openssl s_client -connect 127.0.0.1:" + std::to_string(service.port())
                            + " -tls1_2 </dev/null");
  CHECK(modern.status == 0);
  CHECK(service.running());
}

TEST_CASE("TLS files that will not do stop the service at start with exit 2, naming the variable") {
  scratch_dir dir;
  make_certificate(dir, "a");
  make_certificate(dir, "b");
  dir.write("not-pem", "hello\n");
  struct bad_case {
    std::string cert, key, variable, why;
  };
  std::vector<bad_case> cases = {
    {dir.file("missing.crt"), dir.file("a.key"), "TLS_CERT_FILE", "cannot read it"},
    {dir.file("a.crt"), dir.file("missing.key"), "TLS_KEY_FILE", "cannot read it"},
    {dir.file("not-pem"), dir.file("a.key"), "TLS_CERT_FILE", "no PEM certificate"},
    {dir.file("a.crt"), dir.file("not-pem"), "TLS_KEY_FILE", "no PEM private key"},
    {dir.file("a.crt"), dir.file("b.key"), "TLS_KEY_FILE", "not the key of the certificate"},
  };
  for (auto& c : cases) {
    INFO(c.cert << " " << c.key);
    service_process service{{{"TLS_CERT_FILE", c.cert}, {"TLS_KEY_FILE", c.key}}, false};
    CHECK(service.wait_exit(15s) == 2);
    auto refused = service.wait_for_line(c.variable + "=", 1s);
    REQUIRE(refused);
    CHECK_THAT(*refused, Catch::Contains(c.why));
  }
}

TEST_CASE("Kafka security settings that will not do stop the service at start with exit 2") {
  external_broker broker;
  struct bad_case {
    std::map<std::string, std::string> env;
    std::string variable;
  };
  std::vector<bad_case> cases = {
    // The embedded broker has neither TLS nor SASL.
    {{{"KAFKA_SECURITY_PROTOCOL", "sasl_ssl"}}, "KAFKA_SECURITY_PROTOCOL"},
    {{{"KAFKA_BROKERS", broker.broker.address()}, {"KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"},
      {"KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"}, {"KAFKA_SASL_USERNAME", "svc"}},
     "KAFKA_SASL_PASSWORD"},
    {{{"KAFKA_BROKERS", broker.broker.address()}, {"KAFKA_SASL_PASSWORD", "pw-9f8e7d6c5b4a"}},
     "KAFKA_SASL_PASSWORD"},
  };
  for (auto& c : cases) {
    INFO(c.variable);
    service_process service{c.env, false};
    CHECK(service.wait_exit(15s) == 2);
    auto refused = service.wait_for_line(c.variable + " ", 1s);
    if (!refused)
      refused = service.wait_for_line(c.variable + "=", 1s);
    REQUIRE(refused);
    CHECK_THAT(*refused, !Catch::Contains("pw-9f8e7d6c5b4a"));
  }
}

TEST_CASE("STORE_URL's sslmode and sslrootcert: the store speaks verified TLS, a server it cannot verify is refused") {
  const std::string password = "db-pw-8c7b6a5f4e3d2c1b0a99";
  postgres_server db{{true, password}}; // TCP only over TLS, and only with the password
  scratch_dir dir;
  make_certificate(dir, "stranger"); // an authority that did not sign the server's certificate
  auto verified = db.url() + "?sslmode=verify-full&sslrootcert=" + db.ca_file();

  service_process service{{{"STORE_URL", verified}, {"LOG_LEVEL", "debug"}}};
  auto posted = service.post_event(R"({"userId":"alice","eventType":"LOGIN"})");
  REQUIRE(posted);
  REQUIRE(posted->status == 201);
  service.wait_processed([](const json& all) { return all.size() == 1; });
  CHECK(db.number("SELECT count(*) FROM events") == 1);
  // The service's connection is the server's TLS one.
  CHECK(db.number("SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)"
                  " WHERE ssl AND client_addr IS NOT NULL") >= 1);
  REQUIRE(service.stop() == 0);
  std::vector<std::string> lines = service.lines();

  struct refused_case {
    std::string url, why;
  };
  for (auto& c : std::vector<refused_case>{
         {db.url() + "?sslmode=verify-full&sslrootcert=" + dir.file("stranger.crt"),
          "certificate verify failed"},
         {db.url() + "?sslmode=disable", "no pg_hba.conf entry"},
         {"postgresql://postgres:not-" + password + "@127.0.0.1:" + std::to_string(db.port())
            + "/postgres?sslmode=require",
          "password authentication failed"}}) {
    INFO(c.why);
    // The default bound on connecting (10 s): TLS and scram-sha-256 on a loaded machine take a while.
    service_process refused{{{"STORE_URL", c.url}}, false};
    CHECK(refused.wait_exit(30s) == 1);
    auto line = refused.wait_for_line("Cannot reach the database", 1s);
    REQUIRE(line);
    CHECK_THAT(*line, Catch::Contains(c.why));
    for (auto& l : refused.lines())
      lines.push_back(l);
  }
  for (auto& line : lines) {
    INFO(line);
    CHECK_THAT(line, !Catch::Contains(password));
  }
}

TEST_CASE("no secret in any log line or error: API keys, right and wrong, and the Kafka password") {
  scratch_dir dir;
  // Every line the service writes, debug and trace included.
  service_process service{with_keys(dir, {{"LOG_LEVEL", "trace"}})};
  post_event(service, ingest_key);
  post_event(service, unknown_key);
  post_event(service, read_key);
  curl(bearer(metrics_key) + url(service, "/metrics"));
  curl("-H 'Authorization: bearer   " + admin_key + "' " + url(service, "/events/processed"));
  REQUIRE(service.stop() == 0);

  // SASL credentials handed to librdkafka, which finds a broker that does not speak SASL and
  // gives up: every error on the way is logged.
  external_broker broker;
  const std::string password = "kafka-pw-1e2d3c4b5a69788796a5b4c3";
  service_process kafka{{{"KAFKA_BROKERS", broker.broker.address()},
                         {"KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"},
                         {"KAFKA_SASL_MECHANISM", "PLAIN"},
                         {"KAFKA_SASL_USERNAME", "svc"},
                         {"KAFKA_SASL_PASSWORD", password},
                         {"KAFKA_CONNECTION_TIMEOUT_MS", "2000"},
                         {"LOG_LEVEL", "trace"}},
                        false};
  kafka.wait_exit(30s);

  std::vector<std::string> lines = service.lines();
  for (auto& line : kafka.lines())
    lines.push_back(line);
  REQUIRE(lines.size() > 10);
  for (auto& line : lines) {
    INFO(line);
    for (auto& secret : {ingest_key, read_key, metrics_key, admin_key, unknown_key})
      CHECK_THAT(line, !Catch::Contains(secret.substr(3)));
    CHECK_THAT(line, !Catch::Contains(password));
  }
}

TEST_CASE("without API_KEYS_FILE every route is open, and the start-up log says so") {
  service_process service;
  CHECK(service.wait_for_line("No API_KEYS_FILE: every route is open"));
  CHECK(post_event(service, "").status == 201);
  CHECK(curl(url(service, "/metrics")).status == 200);
}
