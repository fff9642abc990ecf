// The store's text arena and the shared text it hands out: what GET /events/processed streams.
#include <catch2/catch.hpp>

#include <string>

#include "core/text_arena.hpp"

using namespace uas;

namespace {

std::string read(const shared_text& text, size_t offset, size_t length) {
  std::string out;
  text.write(offset, length, [&](const char* data, size_t size) {
    out.append(data, size);
    return true;
  });
  return out;
}

} // namespace

TEST_CASE("shared text reads any range across its pieces", "[text_arena]") {
  shared_text text{"["};
  text.append("abc");
  text.append("");
  text.append("de");
  text.append("]");
  REQUIRE(text.size() == 7);
  CHECK(text.str() == "[abcde]");
  CHECK(read(text, 0, 7) == "[abcde]");
  CHECK(read(text, 2, 3) == "bcd");
  CHECK(read(text, 4, 1) == "d");
  CHECK(read(text, 6, 10) == "]");
  CHECK(read(text, 7, 1).empty());
}

TEST_CASE("writing shared text stops when the writer refuses", "[text_arena]") {
  shared_text text{"one"};
  text.append("two");
  int calls = 0;
  CHECK_FALSE(text.write(0, text.size(), [&](const char*, size_t) {
    ++calls;
    return false;
  }));
  CHECK(calls == 1);
}

TEST_CASE("an arena's contents are its texts with their separators, in order, across blocks",
          "[text_arena]") {
  text_arena arena;
  std::string expected;
  // Small texts fill blocks; one longer than a block gets a block of its own.
  for (int i = 0; i < 5000; ++i) {
    auto text = i == 2500 ? std::string(300 * 1024, 'x') : "text-" + std::to_string(i);
    auto separator = i == 0 ? "[" : ",";
    CHECK(arena.keep(text, separator) == text);
    expected += separator + text;
  }
  CHECK(arena.contents().str() == expected);
}

TEST_CASE("contents taken before clear() stay readable, and the arena starts afresh",
          "[text_arena]") {
  text_arena arena;
  arena.keep("before");
  auto taken = arena.contents();
  arena.clear();
  arena.keep("after");
  CHECK(taken.str() == "before");
  CHECK(arena.contents().str() == "after");
}
