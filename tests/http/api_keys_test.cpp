// API keys: the key file's format and every way a line is refused, finding a key by its token,
// and which access each route asks for.
#include <catch2/catch.hpp>

#include "core/config.hpp"
#include "http/api_keys.hpp"

using namespace uas;

namespace {

const std::string ingest_key = "ingest-key-0123456789abcdef";
const std::string reader_key = "reader-key-0123456789abcdef";

std::string refusal(const std::string& text) {
  try {
    key_ring::parse(text, "/etc/uas/keys");
  } catch (const config_error& e) {
    return e.what();
  }
  FAIL("accepted: " << text);
  return {};
}

} // namespace

TEST_CASE("SHA-256 is the standard one, in lower-case hex") {
  CHECK(to_hex(sha256("abc")) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(to_hex(sha256("")) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("a key file's lines name a key, its scopes and its hash, comments and blank lines are skipped") {
  auto ring = key_ring::parse("# who may call the service\n"
                              "\n"
                              "  collector   ingest        " + to_hex(sha256(ingest_key)) + "\n"
                              "dashboard\tread,metrics\t" + [] {
                                auto hex = to_hex(sha256(reader_key));
                                for (auto& c : hex)
                                  c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                                return hex;
                              }() + "\r\n",
                              "keys");
  REQUIRE(ring->size() == 2);
  auto collector = ring->find(ingest_key);
  REQUIRE(collector);
  CHECK(collector->name == "collector");
  CHECK(collector->allows(access::ingest));
  CHECK_FALSE(collector->allows(access::read));
  CHECK_FALSE(collector->allows(access::metrics));
  CHECK_FALSE(collector->allows(access::admin));
  CHECK(collector->allows(access::any_key));
  auto dashboard = ring->find(reader_key);
  REQUIRE(dashboard);
  CHECK(dashboard->name == "dashboard");
  CHECK(dashboard->allows(access::read));
  CHECK(dashboard->allows(access::metrics));
  CHECK_FALSE(dashboard->allows(access::ingest));
  CHECK(ring->find("reader-key-0123456789abcdeF") == nullptr);
  CHECK(ring->find(to_hex(sha256(reader_key))) == nullptr); // the hash is not the key
  CHECK(ring->find("") == nullptr);
}

TEST_CASE("an empty key file is valid and lets no one in") {
  auto ring = key_ring::parse("# every key revoked\n", "keys");
  CHECK(ring->size() == 0);
  CHECK(ring->find(ingest_key) == nullptr);
}

TEST_CASE("a line that will not do is refused, naming the variable, the file and the line") {
  auto hash = to_hex(sha256(ingest_key));
  auto other = to_hex(sha256(reader_key));
  std::vector<std::pair<std::string, std::string>> bad = {
    {"collector ingest", "expected NAME SCOPES SHA256HEX"},
    {"collector ingest " + hash + " extra", "expected NAME SCOPES SHA256HEX"},
    {"collector write " + hash, "scope \"write\""},
    {"collector ingest,,read " + hash, "scope \"\""},
    {"collector ingest " + hash.substr(1), "64 hexadecimal digits"},
    {"collector ingest " + hash.substr(1) + "g", "64 hexadecimal digits"},
    {"collector ingest " + ingest_key, "64 hexadecimal digits"},
    {"none ingest " + hash, "name \"none\""},
    {"coll\"ector ingest " + hash, "name \"coll\"ector\""},
  };
  for (auto& [line, why] : bad) {
    INFO(line);
    auto message = refusal("# header\n" + line + "\n");
    CHECK_THAT(message, Catch::StartsWith("API_KEYS_FILE=\"/etc/uas/keys\" is invalid: line 2: "));
    CHECK_THAT(message, Catch::Contains(why));
  }
  CHECK_THAT(refusal("a ingest " + hash + "\na read " + other + "\n"),
             Catch::Contains("line 2: name \"a\" is given twice"));
  CHECK_THAT(refusal("a ingest " + hash + "\nb read " + hash + "\n"),
             Catch::Contains("line 2: the same key as \"a\""));
}

TEST_CASE("a key file that cannot be read is refused, naming the variable") {
  try {
    key_ring::load("/nonexistent/keys");
    FAIL("loaded");
  } catch (const config_error& e) {
    CHECK_THAT(e.what(), Catch::StartsWith("API_KEYS_FILE=\"/nonexistent/keys\" is invalid: cannot read it"));
  }
}

TEST_CASE("each route asks for its scope, health checks and CORS preflights for none") {
  CHECK(required_access("GET", "/health") == access::open);
  CHECK(required_access("GET", "/health/ready") == access::open);
  CHECK(required_access("OPTIONS", "/events/generate") == access::open);
  CHECK(required_access("POST", "/events/generate") == access::ingest);
  CHECK(required_access("POST", "/events/batch") == access::ingest);
  CHECK(required_access("GET", "/events/processed") == access::read);
  CHECK(required_access("HEAD", "/events/processed") == access::read);
  CHECK(required_access("GET", "/events/processed/0f8e7a52-9a43-4d8e-b1f5-3c1f0f0f4a11") == access::read);
  CHECK(required_access("DELETE", "/events/processed") == access::admin);
  CHECK(required_access("GET", "/metrics") == access::metrics);
  CHECK(required_access("GET", "/nowhere") == access::any_key);
  CHECK(std::string{scope_name(access::admin)} == "admin");
}

TEST_CASE("hash-key takes only keys a Bearer header can carry and long enough to be random") {
  std::string why;
  CHECK(is_acceptable_key("3f9a0c1e5b7d2468ace013579bdf0246", why));
  CHECK(is_acceptable_key("A-Za_z0.9~+/==abcdefgh", why));
  CHECK_FALSE(is_acceptable_key("short", why));
  CHECK_THAT(why, Catch::Contains("at least 16"));
  CHECK_FALSE(is_acceptable_key("with a space in it, long enough", why));
  CHECK_FALSE(is_acceptable_key("", why));
}
