// GET /events/processed's pages and filters, the single-event route and erasure, over HTTP, on
// both of the store's back ends.
#include <catch2/catch.hpp>

#include <optional>
#include <regex>
#include <set>

#include "postgres_server.hpp"
#include "service_process.hpp"

using namespace uas::testing;
using json = nlohmann::json;

namespace {

const std::string id_prefix = "30000000";

std::string uuid(int n) {
  return numbered_uuid(id_prefix, n);
}

void produce(const std::string& broker, int count) {
  REQUIRE(produce_events(broker, id_prefix, 0, count));
}

// The target of a Link header's rel="next", if it has one.
std::optional<std::string> next_of(const httplib::Result& r) {
  if (!r->has_header("Link"))
    return std::nullopt;
  std::smatch m;
  auto link = r->get_header_value("Link");
  if (!std::regex_match(link, m, std::regex{R"(<([^>]+)>; rel="next")"}))
    return std::nullopt;
  return m[1].str();
}

std::vector<std::string> ids_in(const std::string& body) {
  std::vector<std::string> ids;
  for (auto& e : json::parse(body))
    ids.push_back(e["eventId"]);
  return ids;
}

// The service's settings for one of its two back ends: the memory store, or a PostgreSQL server
// that `db` starts for the test.
std::map<std::string, std::string> store_settings(bool postgres,
                                                  std::optional<postgres_server>& db) {
  if (!postgres)
    return {};
  db.emplace();
  return {{"STORE_URL", db->url()}};
}

} // namespace

TEST_CASE("paging through 10,000 events with limit and after returns each once, in order") {
  for (bool postgres : {false, true}) {
    INFO((postgres ? "PostgreSQL" : "memory"));
    std::optional<postgres_server> db;
    auto env = store_settings(postgres, db);
    external_broker kafka;
    auto service = kafka.start(env);
    produce(kafka.broker.address(), 10'000);
    auto all = service.wait_processed([](const json& a) { return a.size() >= 10'000; }, 60s);
    REQUIRE(all.size() == 10'000);
    std::vector<std::string> in_order;
    for (auto& e : all)
      in_order.push_back(e["eventId"]);

    auto client = service.client();
    std::vector<std::string> paged;
    std::optional<std::string> next = "/events/processed?limit=777";
    int pages = 0;
    while (next) {
      auto r = client.Get(next->c_str());
      REQUIRE(r);
      REQUIRE(r->status == 200);
      auto ids = ids_in(r->body);
      CHECK(ids.size() <= 777);
      paged.insert(paged.end(), ids.begin(), ids.end());
      next = next_of(r);
      ++pages;
    }
    CHECK(pages == 13); // 12 full pages and one of 676, the last without a Link
    CHECK(paged == in_order);
    CHECK(std::set<std::string>(paged.begin(), paged.end()).size() == 10'000);

    // Filtered pages: one user's product views, 67 of them, in pages of 10.
    std::vector<std::string> views;
    next = "/events/processed?userId=user-3&eventType=PRODUCT_VIEW&limit=10";
    while (next) {
      auto r = client.Get(next->c_str());
      REQUIRE(r->status == 200);
      for (auto& e : json::parse(r->body)) {
        CHECK(e["userId"] == "user-3");
        CHECK(e["eventType"] == "PRODUCT_VIEW");
        views.push_back(e["eventId"]);
      }
      next = next_of(r);
    }
    std::vector<std::string> expected;
    for (auto& id : in_order) {
      int n = std::stoi(id.substr(24));
      if (n % 50 == 3 && n % 3 == 0)
        expected.push_back(id);
    }
    CHECK(views == expected);

    // One event by its eventId; an unknown one is 404.
    auto one = client.Get(("/events/processed/" + uuid(1234)).c_str());
    REQUIRE(one->status == 200);
    CHECK(json::parse(one->body) == json::parse(event_text(uuid(1234), "user-34", "LOGIN")));
    CHECK(client.Get(("/events/processed/" + uuid(99'999)).c_str())->status == 404);
    CHECK(client.Get("/events/processed/not-a-uuid")->status == 404);
    CHECK(client.Post(("/events/processed/" + uuid(1)).c_str(), "", "text/plain")->status == 405);

    // Erasure: one user's 200 events go, the others stay, in order.
    auto erased = client.Delete("/events/processed?userId=user-7");
    REQUIRE(erased);
    CHECK(erased->status == 200);
    CHECK(json::parse(erased->body) == json{{"deleted", 200}});
    CHECK(client.Get("/events/processed?userId=user-7")->body == "[]");
    auto rest = ids_in(client.Get("/events/processed")->body);
    CHECK(rest.size() == 9'800);
    CHECK(client.Get(("/events/processed/" + uuid(7)).c_str())->status == 404);
    CHECK(json::parse(client.Delete("/events/processed?userId=user-7")->body) == json{{"deleted", 0}});
  }
}

TEST_CASE("bad parameters of the stored-event routes are answered 400, naming each problem") {
  // On both back ends: PostgreSQL refused what the memory store took (a cursor past its bigint,
  // text that is not UTF-8) with an error the service answered 500.
  for (bool postgres : {false, true}) {
    INFO((postgres ? "PostgreSQL" : "memory"));
    std::optional<postgres_server> db;
    auto env = store_settings(postgres, db);
    service_process service{env};
    auto client = service.client();
    for (auto [target, field] : std::vector<std::pair<std::string, std::string>>{
           {"/events/processed?limit=0", "limit"},
           {"/events/processed?limit=10001", "limit"},
           {"/events/processed?limit=ten", "limit"},
           {"/events/processed?after=-1", "after"},
           {"/events/processed?after=abc", "after"},
           {"/events/processed?eventType=SIGNUP", "eventType"},
           {"/events/processed?userId=", "userId"},
           {"/events/processed?limit=5&limit=6", "limit"},
           {"/events/processed?user=alice", "user"},
           // A cursor past PostgreSQL's bigint, and userIds no event can have (PostgreSQL would
           // answer 500 for the first two, and libpq read the third as "a").
           {"/events/processed?after=9223372036854775808", "after"},
           {"/events/processed?userId=%ff", "userId"},
           {"/events/processed?userId=a%00b", "userId"}}) {
      INFO(target);
      auto r = client.Get(target.c_str());
      REQUIRE(r);
      CHECK(r->status == 400);
      auto body = json::parse(r->body);
      CHECK(body["message"] == "Invalid request parameters");
      REQUIRE(body["errors"].size() == 1);
      CHECK(body["errors"][0]["field"] == field);
    }
    auto several = json::parse(client.Get("/events/processed?limit=0&after=x")->body);
    CHECK(several["errors"].size() == 2);
    CHECK(client.Delete("/events/processed")->status == 400);
    CHECK(client.Delete("/events/processed?userId=a&limit=3")->status == 400);
    CHECK(client.Delete("/events/processed?userId=a%00b")->status == 400);
    // A parameter's name that is not UTF-8 is named all the same, its bad bytes replaced.
    auto replaced = [](const httplib::Result& r) {
      REQUIRE(r);
      CHECK(r->status == 400);
      return json::parse(r->body)["errors"][0]["field"].get<std::string>();
    };
    CHECK(replaced(client.Get("/events/processed?%ff=1")) == "\xef\xbf\xbd");
    CHECK(replaced(client.Delete("/events/processed?userId=a&x%ff=1")) == "x\xef\xbf\xbd");
    // A page of an empty store is empty, without a next page.
    auto empty = client.Get("/events/processed?limit=10");
    CHECK(empty->status == 200);
    CHECK(empty->body == "[]");
    CHECK_FALSE(empty->has_header("Link"));
    // An eventId that is no UUID is no stored event's.
    for (auto* target : {"/events/processed/%ff", "/events/processed/not-a-uuid",
                         "/events/processed/3b6f1c4e-0000-4000-8000-000000000001%00x"}) {
      INFO(target);
      auto r = client.Get(target);
      REQUIRE(r);
      CHECK(r->status == 404);
    }
  }
}
