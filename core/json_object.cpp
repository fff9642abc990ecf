#include "core/json_object.hpp"

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include <nlohmann/json.hpp>

#include "core/hex.hpp"

namespace uas::json {

namespace {

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// The length of the UTF-8 encoded character of two to four bytes at `at`, if it is well formed
// (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF); else 0.
size_t utf8_sequence(std::string_view s, size_t at) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[at + k]); };
  unsigned char lead = byte(0);
  size_t length;
  unsigned char low = 0x80, high = 0xBF; // the allowed range of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0)
      low = 0xA0;
    if (lead == 0xED)
      high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0)
      low = 0x90;
    if (lead == 0xF4)
      high = 0x8F;
  } else {
    return 0;
  }
  if (s.size() - at < length || byte(1) < low || byte(1) > high)
    return 0;
  for (size_t k = 2; k < length; ++k)
    if (byte(k) < 0x80 || byte(k) > 0xBF)
      return 0;
  return length;
}

// A recursive-descent reader over one text. Each value either decodes (strings, into `decoded`)
// or is copied without its whitespace (into `compact`); either sink may be absent.
class reader {
public:
  explicit reader(std::string_view text) : s_{text} {}

  object_result read_object() {
    object_result result;
    skip_space();
    if (peek() != '{') {
      kind k;
      if (!value(k, nullptr, nullptr) || !at_end())
        return fail(result);
      result.why = failure::not_object;
      result.found = k;
      return result;
    }
    enter();
    result.members.reserve(8); // an event's five members and a few more, without regrowing
    bool read = sequence('}', nullptr, [&] {
      member m;
      if (!key(&m.key, nullptr))
        return false;
      // Strings are decoded; anything else is kept as compact text.
      std::string* decoded = peek() == '"' ? &m.value : nullptr;
      if (!value(m.type, decoded, decoded ? nullptr : &m.value))
        return false;
      result.members.push_back(std::move(m));
      return true;
    });
    if (!read || !at_end())
      fail(result);
    return result;
  }

  array_result read_array(size_t kept_at_most) {
    array_result result;
    skip_space();
    if (peek() != '[') {
      kind k;
      if (!value(k, nullptr, nullptr) || !at_end())
        return fail(result);
      result.why = failure::not_array;
      result.found = k;
      return result;
    }
    enter();
    bool read = sequence(']', nullptr, [&] {
      element e;
      size_t start = i_;
      if (!value(e.type, nullptr, nullptr))
        return false;
      e.text = s_.substr(start, i_ - start);
      if (++result.count <= kept_at_most)
        result.elements.push_back(e);
      return true;
    });
    if (!read || !at_end())
      fail(result);
    return result;
  }

private:
  std::string_view s_;
  size_t i_ = 0;
  int depth_ = 0;
  bool too_deep_ = false;

  char peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }

  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\n' || s_[i_] == '\r'))
      ++i_;
  }

  bool at_end() {
    skip_space();
    return i_ == s_.size();
  }

  template <class Result>
  Result& fail(Result& result) {
    if constexpr (std::is_same_v<Result, object_result>)
      result.members.clear();
    else {
      result.elements.clear();
      result.count = 0;
    }
    result.why = too_deep_ ? failure::too_deep : failure::not_json;
    result.at = i_;
    return result;
  }

  static void put(std::string* out, std::string_view text) {
    if (out)
      out->append(text);
  }

  bool value(kind& k, std::string* decoded, std::string* compact) {
    switch (peek()) {
      case '{': k = kind::object; return object(compact);
      case '[': k = kind::array; return array(compact);
      case '"': k = kind::string; return string(decoded, compact);
      case 't': k = kind::boolean; return literal("true", compact);
      case 'f': k = kind::boolean; return literal("false", compact);
      case 'n': k = kind::null; return literal("null", compact);
      default: k = kind::number; return number(compact);
    }
  }

  bool literal(std::string_view word, std::string* compact) {
    if (s_.substr(i_, word.size()) != word)
      return false;
    i_ += word.size();
    put(compact, word);
    return true;
  }

  // A run of digits; false if there is none.
  bool digits() {
    size_t from = i_;
    while (is_digit(peek()))
      ++i_;
    return i_ > from;
  }

  bool number(std::string* compact) {
    size_t start = i_;
    if (peek() == '-')
      ++i_;
    if (peek() == '0')
      ++i_; // no leading zeros: "01" stops being JSON after the 0
    else if (!digits())
      return false;
    if (peek() == '.') {
      ++i_;
      if (!digits())
        return false;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++i_;
      if (peek() == '+' || peek() == '-')
        ++i_;
      if (!digits())
        return false;
    }
    put(compact, s_.substr(start, i_ - start));
    return true;
  }

  bool enter() {
    if (++depth_ > max_depth) {
      too_deep_ = true;
      return false;
    }
    ++i_;
    return true;
  }

  // The elements of an array or the members of an object, up to `close`: each read by
  // `element`, with commas between them and whitespace around every token.
  template <class Element>
  bool sequence(char close, std::string* compact, Element element) {
    skip_space();
    if (peek() != close) {
      while (true) {
        skip_space();
        if (!element())
          return false;
        skip_space();
        if (peek() != ',')
          break;
        ++i_;
        put(compact, ",");
      }
    }
    if (peek() != close)
      return false;
    ++i_;
    --depth_;
    return true;
  }

  // A member's key and its colon, leaving the reader at the value.
  bool key(std::string* decoded, std::string* compact) {
    if (peek() != '"' || !string(decoded, compact))
      return false;
    skip_space();
    if (peek() != ':')
      return false;
    ++i_;
    put(compact, ":");
    skip_space();
    return true;
  }

  bool array(std::string* compact) {
    if (!enter())
      return false;
    put(compact, "[");
    kind ignored;
    if (!sequence(']', compact, [&] { return value(ignored, nullptr, compact); }))
      return false;
    put(compact, "]");
    return true;
  }

  bool object(std::string* compact) {
    if (!enter())
      return false;
    put(compact, "{");
    kind ignored;
    if (!sequence('}', compact,
                  [&] { return key(nullptr, compact) && value(ignored, nullptr, compact); }))
      return false;
    put(compact, "}");
    return true;
  }

  // Four hex digits after "\u".
  bool hex4(uint32_t& out) {
    if (s_.size() - i_ < 4)
      return false;
    out = 0;
    for (int n = 0; n < 4; ++n, ++i_) {
      int v = hex_value(s_[i_]);
      if (v < 0)
        return false;
      out = out << 4 | static_cast<uint32_t>(v);
    }
    return true;
  }

  // One escape sequence, the backslash already read; appends what it means to `decoded`.
  bool escape(std::string* decoded) {
    if (i_ == s_.size())
      return false;
    char c = s_[i_++];
    char plain;
    switch (c) {
      case '"': plain = '"'; break;
      case '\\': plain = '\\'; break;
      case '/': plain = '/'; break;
      case 'b': plain = '\b'; break;
      case 'f': plain = '\f'; break;
      case 'n': plain = '\n'; break;
      case 'r': plain = '\r'; break;
      case 't': plain = '\t'; break;
      case 'u': {
        uint32_t cp;
        if (!hex4(cp))
          return false;
        if (cp >= 0xDC00 && cp <= 0xDFFF)
          return false; // a low surrogate must follow a high one
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          uint32_t low;
          if (s_.substr(i_, 2) != "\\u")
            return false;
          i_ += 2;
          if (!hex4(low) || low < 0xDC00 || low > 0xDFFF)
            return false;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        }
        if (decoded)
          append_utf8(*decoded, cp);
        return true;
      }
      default: return false;
    }
    if (decoded)
      *decoded += plain;
    return true;
  }

  bool string(std::string* decoded, std::string* compact) {
    size_t start = i_++;
    while (true) {
      // The plain run up to the next quote, backslash, control or non-ASCII byte.
      size_t run = i_;
      while (i_ < s_.size()) {
        auto c = static_cast<unsigned char>(s_[i_]);
        if (c == '"' || c == '\\' || c < 0x20 || c >= 0x80)
          break;
        ++i_;
      }
      if (decoded)
        decoded->append(s_.substr(run, i_ - run));
      if (i_ == s_.size())
        return false;
      auto c = static_cast<unsigned char>(s_[i_]);
      if (c == '"') {
        ++i_;
        put(compact, s_.substr(start, i_ - start));
        return true;
      }
      if (c < 0x20)
        return false; // control characters must be escaped
      if (c == '\\') {
        ++i_;
        if (!escape(decoded))
          return false;
      } else {
        size_t length = utf8_sequence(s_, i_);
        if (length == 0)
          return false;
        if (decoded)
          decoded->append(s_.substr(i_, length));
        i_ += length;
      }
    }
  }
};

} // namespace

const char* name_of(kind k) {
  switch (k) {
    case kind::null: return "null";
    case kind::boolean: return "boolean";
    case kind::number: return "number";
    case kind::string: return "string";
    case kind::array: return "array";
    case kind::object: return "object";
  }
  return "value";
}

bool is_utf8(std::string_view text) {
  for (size_t i = 0; i < text.size();) {
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t length = utf8_sequence(text, i);
    if (length == 0)
      return false;
    i += length;
  }
  return true;
}

object_result read_object(std::string_view text) {
  return reader{text}.read_object();
}

array_result read_array(std::string_view text, size_t kept_at_most) {
  return reader{text}.read_array(kept_at_most);
}

void append_string(std::string& out, std::string_view text) {
  // An event is written four to six strings at a time, twice on its way through (for the broker,
  // for the store): the library's own copy and output buffer cost a few hundred nanoseconds per
  // string, which only text that needs escaping must pay.
  auto plain = [](unsigned char c) { return c >= 0x20 && c < 0x7f && c != '"' && c != '\\'; };
  if (std::all_of(text.begin(), text.end(), plain)) {
    out += '"';
    out += text;
    out += '"';
    return;
  }
  out += nlohmann::json(std::string{text}).dump(-1, ' ', false,
                                                nlohmann::json::error_handler_t::replace);
}

} // namespace uas::json
