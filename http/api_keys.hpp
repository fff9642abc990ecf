// API keys: who may call which route. The key file (API_KEYS_FILE) holds each key's SHA-256,
// never the key itself, so a copy of the file lets no one in.
#pragma once

#include <array>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace uas {

// What a route needs of its caller.
enum class access {
  open,    // /health, /health/ready, CORS preflights: no key asked for
  any_key, // a path of no route: any valid key learns that (404/405), no one else
  ingest,  // POST routes
  read,    // GET /events/...
  metrics, // GET /metrics
  admin,   // DELETE /events/processed (erasure)
};

// The access a request needs, by its method and path.
access required_access(std::string_view method, std::string_view path);

// The scope's name as the key file spells it ("ingest", "read", "metrics", "admin").
const char* scope_name(access scope);

using sha256_digest = std::array<unsigned char, 32>;

sha256_digest sha256(std::string_view text);
std::string to_hex(const sha256_digest& digest);

// Whether `key` can be sent as `Authorization: Bearer <key>` (RFC 6750's b64token) and is long
// enough to be a random secret rather than a password: the file's unsalted SHA-256 protects only
// keys no one can guess.
bool is_acceptable_key(std::string_view key, std::string& why);

struct api_key {
  std::string name; // shown in logs and metrics; never the key
  unsigned scopes = 0; // bits: 1 << access
  sha256_digest hash{};

  bool allows(access needed) const;
};

// The keys of one reading of the key file.
class key_ring {
public:
  // Reads the key file at `path`; throws config_error naming API_KEYS_FILE, the line, and what
  // is wrong with it.
  static std::shared_ptr<const key_ring> load(const std::string& path);

  // The same from the file's text.
  static std::shared_ptr<const key_ring> parse(const std::string& text, const std::string& path);

  // The key `token` is, or nullptr. Every stored hash is compared with the token's, each in
  // constant time, so the time taken says nothing about how close a guess came or which key
  // it was near.
  const api_key* find(std::string_view token) const;

  size_t size() const { return keys_.size(); }

private:
  std::vector<api_key> keys_;
};

} // namespace uas
