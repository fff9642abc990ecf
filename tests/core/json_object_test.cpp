// The JSON reader behind every POST and every consumed message: it must accept exactly the
// texts that are JSON (nlohmann's parser serves as a second opinion), decode strings, and keep
// other members as compact text that means the same.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/json_object.hpp"

using namespace uas;
using nlohmann_json = nlohmann::json;

namespace {

// Wraps a JSON value as the one member of an object.
std::string as_member(const std::string& value) {
  return R"({"v":)" + value + "}";
}

bool nlohmann_reads(const std::string& text) {
  return nlohmann_json::accept(text);
}

} // namespace

TEST_CASE("members come back in order: strings decoded, other values as compact JSON") {
  auto r = json::read_object(
    " {\"name\" : \"caf\\u00e9 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t\", \"n\": -1.5e+3,"
    "\"flag\":true, \"none\" :null,\"list\":[ 1 , \"a b\" , {\"k\" : [ ] } ],"
    "\"obj\":{ \"x\" : { } }, \"emoji\":\"\\ud83d\\ude00 \xf0\x9f\x98\x80\"}\n");
  REQUIRE(r.ok());
  REQUIRE(r.members.size() == 7);
  CHECK(r.members[0].key == "name");
  CHECK(r.members[0].type == json::kind::string);
  CHECK(r.members[0].value == "caf\xc3\xa9 \"q\" \\ / \b\f\n\r\t");
  CHECK(r.members[1].type == json::kind::number);
  CHECK(r.members[1].value == "-1.5e+3");
  CHECK(r.members[2].type == json::kind::boolean);
  CHECK(r.members[2].value == "true");
  CHECK(r.members[3].type == json::kind::null);
  CHECK(r.members[3].value == "null");
  CHECK(r.members[4].type == json::kind::array);
  CHECK(r.members[4].value == R"([1,"a b",{"k":[]}])");
  CHECK(r.members[5].type == json::kind::object);
  CHECK(r.members[5].value == R"({"x":{}})");
  CHECK(r.members[6].value == "\xf0\x9f\x98\x80 \xf0\x9f\x98\x80");
}

TEST_CASE("compact text keeps escapes as written and means what the input meant") {
  std::string value = R"({ "a\"b" : [ "\u0041\n" , 1E5, 0.25 , false ], "c" : { "d" : null } })";
  auto r = json::read_object(as_member(value));
  REQUIRE(r.ok());
  CHECK(r.members[0].value == R"({"a\"b":["\u0041\n",1E5,0.25,false],"c":{"d":null}})");
  CHECK(nlohmann_json::parse(r.members[0].value) == nlohmann_json::parse(value));
}

TEST_CASE("texts that are not JSON are refused, with where they stop being JSON") {
  struct bad {
    std::string text;
    size_t at;
  };
  for (auto& [text, at] : std::vector<bad>{
         {"", 0},
         {"{", 1},
         {"{\"a\":1,}", 7},
         {"{'a':1}", 1},
         {"{\"a\" 1}", 5},
         {"{\"a\":01}", 6},
         {"{\"a\":1.}", 7},
         {"{\"a\":.5}", 5},
         {"{\"a\":+1}", 5},
         {"{\"a\":1e}", 7},
         {"{\"a\":NaN}", 5},
         {"{\"a\":tru}", 5},
         {"{\"a\":[1,]}", 8},
         {"{\"a\":[1 2]}", 8},
         {"{\"a\":1} x", 8},
         {"{} {}", 3},
         {"{\"a\":\"tab\there\"}", 9},
         {"{\"a\":\"\\x\"}", 8},
         {"{\"a\":\"\\u12\"}", 10},
         {"{\"a\":\"unterminated}", 19},
       }) {
    INFO(text);
    auto r = json::read_object(text);
    CHECK(r.why == json::failure::not_json);
    CHECK(r.at == at);
    CHECK(r.members.empty());
    CHECK_FALSE(nlohmann_reads(text));
  }
}

TEST_CASE("strings must be well-formed UTF-8 and their escapes whole characters") {
  for (std::string value : {
         "\"\\ud800\"",             // a high surrogate alone
         "\"\\ud800\\u0041\"",      // ... followed by no low one
         "\"\\udc00\"",             // a low surrogate first
         "\"\xff\"",                // no UTF-8 byte at all
         "\"\xc0\x80\"",            // an overlong NUL
         "\"\xe0\x80\xaf\"",        // an overlong '/'
         "\"\xed\xa0\x80\"",        // an encoded surrogate
         "\"\xf4\x90\x80\x80\"",    // past U+10FFFF
         "\"\xc3\"",                // a sequence cut short
         "\"\xe2\x82\"",
       }) {
    INFO(value);
    CHECK(json::read_object(as_member(value)).why == json::failure::not_json);
    CHECK_FALSE(nlohmann_reads(as_member(value)));
  }
  for (std::string value : {"\"\xc3\xa9\"", "\"\xe2\x82\xac\"", "\"\xf0\x9f\x98\x80\"",
                            "\"\xf4\x8f\xbf\xbf\"", "\"\\udbff\\udfff\""}) {
    INFO(value);
    CHECK(json::read_object(as_member(value)).ok());
    CHECK(nlohmann_reads(as_member(value)));
  }
  // The same rule for text that came some other way (a query parameter).
  for (std::string_view bad : {"\xff", "a\xc0\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80", "ok\xc3",
                               "\xe2\x82"})
    CHECK_FALSE(json::is_utf8(bad));
  for (std::string_view good : {"", "plain", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                "\xf4\x8f\xbf\xbf"})
    CHECK(json::is_utf8(good));
}

TEST_CASE("a JSON text that is no object says what it is") {
  struct other {
    std::string text;
    json::kind found;
  };
  for (auto& [text, found] : std::vector<other>{{"[1]", json::kind::array},
                                                {" \"s\" ", json::kind::string},
                                                {"-0.5", json::kind::number},
                                                {"false", json::kind::boolean},
                                                {"null", json::kind::null}}) {
    INFO(text);
    auto r = json::read_object(text);
    CHECK(r.why == json::failure::not_object);
    CHECK(r.found == found);
    CHECK(std::string{json::name_of(found)} == nlohmann_json::parse(text).type_name());
  }
}

TEST_CASE("nesting is refused past the limit, not by running out of stack") {
  auto nested = [](int levels) {
    return as_member(std::string(levels, '[') + std::string(levels, ']'));
  };
  // The object around the value is the first level.
  CHECK(json::read_object(nested(json::max_depth - 1)).ok());
  CHECK(json::read_object(nested(json::max_depth)).why == json::failure::too_deep);
  CHECK(json::read_object(std::string(1'000'000, '[')).why == json::failure::too_deep);
  std::string objects;
  for (int i = 0; i < 100'000; ++i)
    objects += R"({"a":)";
  CHECK(json::read_object(objects).why == json::failure::too_deep);
}

TEST_CASE("the reader agrees with nlohmann on which objects are JSON") {
  for (std::string text : {
         R"({})", R"({"a":{}})", R"({"":""})", R"({"a":-0})", R"({"a":-0.0e-0})", R"({"a":1E+2})",
         R"({"a":[[],[{}]]})", "{\"a\":\"\\u0000\"}", R"({"a":"\/"})", "\t{\r\n}\n",
         R"({"a":1 "b":2})", R"({"a"})", R"({a:1})", R"({"a":[}])", R"({"a":-})",
         R"({"a":1}})", R"({"a":[1}])", R"({"a":"\u00G0"})", R"({"a":truex})", R"({"a":nul})",
       }) {
    INFO(text);
    CHECK(json::read_object(text).ok() == nlohmann_reads(text));
  }
}

TEST_CASE("a string is written as nlohmann writes it, escapes and invalid UTF-8 included") {
  std::string every_byte;
  for (int c = 1; c < 256; ++c)
    every_byte += static_cast<char>(c);
  for (std::string text : {
         std::string{}, std::string{"0b7c4a9e-3f51-4d2a-9c1e-5a6b7c8d9e0f"},
         std::string{"user 42 ~!@#$%^&*()_+{}|:<>?"}, std::string{"a\"quote"},
         std::string{"back\\slash"}, std::string{"tab\there"}, std::string{"new\nline"},
         std::string{"nul\0byte", 8}, std::string{"del\x7f"}, std::string{"caf\xc3\xa9 \xe2\x82\xac"},
         std::string{"cut \xc3"}, std::string{"stray \x80\xff"}, every_byte,
       }) {
    INFO(text);
    std::string written = "[";
    json::append_string(written, text);
    CHECK(written
          == "[" + nlohmann_json(text).dump(-1, ' ', false, nlohmann_json::error_handler_t::replace));
  }
}

TEST_CASE("an array is checked whole, but only the elements asked for are kept") {
  std::string zeros = "[";
  for (int i = 0; i < 100000; ++i)
    zeros += "0,";
  zeros += "0]";
  auto read = json::read_array(zeros, 3);
  REQUIRE(read.ok());
  CHECK(read.count == 100001);
  CHECK(read.elements.size() == 3);
  CHECK(json::read_array("[1,2,x]", 1).why == json::failure::not_json);
  auto all = json::read_array(R"([1,{},"a"])");
  CHECK(all.count == 3);
  REQUIRE(all.elements.size() == 3);
  CHECK(all.elements[2].text == R"("a")");
}
