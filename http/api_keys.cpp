#include "http/api_keys.hpp"

#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/config.hpp"
#include "core/hex.hpp"

namespace uas {

namespace {

constexpr size_t shortest_key = 16;

const std::pair<access, const char*> scopes[] = {
  {access::ingest, "ingest"},
  {access::read, "read"},
  {access::metrics, "metrics"},
  {access::admin, "admin"},
};

unsigned bit(access a) {
  return 1u << static_cast<unsigned>(a);
}

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

bool is_name_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

bool parse_hex(std::string_view text, sha256_digest& out) {
  if (text.size() != 2 * out.size())
    return false;
  for (size_t i = 0; i < out.size(); ++i) {
    int high = hex_value(text[2 * i]), low = hex_value(text[2 * i + 1]);
    if (high < 0 || low < 0)
      return false;
    out[i] = static_cast<unsigned char>(high * 16 + low);
  }
  return true;
}

} // namespace

access required_access(std::string_view method, std::string_view path) {
  // Probes and load balancers check health without credentials; a browser's CORS preflight
  // never carries them (the request it announces does).
  if (path == "/health" || path == "/health/ready" || method == "OPTIONS")
    return access::open;
  if (path == "/metrics")
    return access::metrics;
  if (method == "DELETE")
    return access::admin;
  if (method == "POST")
    return access::ingest;
  if (starts_with(path, "/events/"))
    return access::read;
  return access::any_key;
}

const char* scope_name(access scope) {
  for (auto& [a, name] : scopes)
    if (a == scope)
      return name;
  return "";
}

sha256_digest sha256(std::string_view text) {
  sha256_digest digest{};
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), digest.data(), &size, EVP_sha256(), nullptr) != 1
      || size != digest.size())
    throw std::runtime_error{"SHA-256 failed"};
  return digest;
}

std::string to_hex(const sha256_digest& digest) {
  std::string hex;
  for (unsigned char byte : digest) {
    hex += hex_digits[byte >> 4];
    hex += hex_digits[byte & 15];
  }
  return hex;
}

bool is_acceptable_key(std::string_view key, std::string& why) {
  for (char c : key) {
    bool token_char = std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.'
                      || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
    if (!token_char) {
      why = "a key may hold only letters, digits and - . _ ~ + / = (what a Bearer token may "
            "hold); `openssl rand -hex 32` makes a good one";
      return false;
    }
  }
  if (key.size() < shortest_key) {
    why = "a key needs at least " + std::to_string(shortest_key)
          + " characters, random ones: `openssl rand -hex 32` makes a good one";
    return false;
  }
  return true;
}

bool api_key::allows(access needed) const {
  return needed == access::open || needed == access::any_key || (scopes & bit(needed)) != 0;
}

std::shared_ptr<const key_ring> key_ring::load(const std::string& path) {
  std::ifstream in{path};
  if (!in)
    throw config_error{"API_KEYS_FILE=\"" + path + "\" is invalid: cannot read it: "
                       + std::strerror(errno)};
  std::stringstream text;
  text << in.rdbuf();
  return parse(text.str(), path);
}

std::shared_ptr<const key_ring> key_ring::parse(const std::string& text, const std::string& path) {
  auto ring = std::make_shared<key_ring>();
  std::set<std::string> names;
  std::stringstream lines{text};
  std::string line;
  int number = 0;
  while (std::getline(lines, line)) {
    ++number;
    auto refuse = [&](const std::string& why) {
      throw config_error{"API_KEYS_FILE=\"" + path + "\" is invalid: line "
                         + std::to_string(number) + ": " + why};
    };
    std::stringstream words{line};
    std::string name, scope_list, hash, extra;
    words >> name >> scope_list >> hash >> extra;
    if (name.empty() || name[0] == '#')
      continue;
    if (hash.empty() || !extra.empty())
      refuse("expected NAME SCOPES SHA256HEX");
    api_key key;
    key.name = name;
    bool plain_name = true;
    for (char c : name)
      plain_name = plain_name && is_name_char(c);
    if (!plain_name || name.size() > 64)
      refuse("name \"" + name + "\": expected up to 64 letters, digits, - _ or .");
    if (name == "none")
      refuse("name \"none\" is what requests without a valid key count under");
    if (!names.insert(name).second)
      refuse("name \"" + name + "\" is given twice");
    std::stringstream scope_words{scope_list};
    std::string scope;
    while (std::getline(scope_words, scope, ',')) {
      bool known = false;
      for (auto& [a, scope_text] : scopes)
        if (scope == scope_text) {
          key.scopes |= bit(a);
          known = true;
        }
      if (!known)
        refuse("scope \"" + scope + "\": expected a comma list of ingest, read, metrics, admin");
    }
    if (!parse_hex(hash, key.hash))
      refuse("expected the key's SHA-256 as 64 hexadecimal digits (user-activity-service "
             "hash-key prints it)");
    for (auto& other : ring->keys_)
      if (other.hash == key.hash)
        refuse("the same key as \"" + other.name + "\"");
    ring->keys_.push_back(std::move(key));
  }
  return ring;
}

const api_key* key_ring::find(std::string_view token) const {
  auto hash = sha256(token);
  const api_key* found = nullptr;
  for (auto& key : keys_)
    if (CRYPTO_memcmp(key.hash.data(), hash.data(), hash.size()) == 0)
      found = &key;
  return found;
}

} // namespace uas
