#include "http/server.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <future>
#include <limits>
#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>

#include <pthread.h>
#include <strings.h>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include "core/json_object.hpp"
#include "core/log.hpp"
#include "core/metrics.hpp"
#include "http/api_keys.hpp"
#include "core/trace_context.hpp"
#include "http/http_actor.hpp"
#include "http/rate_limiter.hpp"
#include "http/tls.hpp"
#include "http/tuning.hpp"

namespace uas {

namespace {

using json = nlohmann::json;

// The largest request body each route takes, counted after decompression.
constexpr size_t max_event_bytes = max_event_request_bytes;
constexpr size_t max_batch_bytes = 5 * 1024 * 1024;
// The most events one page of GET /events/processed may ask for.
constexpr uint64_t max_page = 10'000;

// Each route's path and the methods it answers; any other method there is a 405.
const std::map<std::string, std::string> allowed_methods = {
  {"/events/generate", "POST, OPTIONS"},
  {"/events/batch", "POST, OPTIONS"},
  {"/events/processed", "GET, HEAD, DELETE"},
  {"/events/processed/{eventId}", "GET, HEAD"},
  {"/health", "GET, HEAD"},
  {"/health/ready", "GET, HEAD"},
  {"/metrics", "GET, HEAD"},
};

// The route label of a request in metrics: its path if it is one of ours, so that stray paths
// cannot grow the number of series.
std::string_view route_of(const httplib::Request& req) {
  constexpr std::string_view one_event = "/events/processed/";
  if (req.path.size() > one_event.size() && req.path.compare(0, one_event.size(), one_event) == 0
      && req.path.find('/', one_event.size()) == std::string::npos)
    return "/events/processed/{eventId}";
  auto it = allowed_methods.find(req.path);
  return it != allowed_methods.end() ? std::string_view{it->first} : "unmatched";
}

// The name of the API key the request on this worker thread came with: "none" without a valid
// key (or without API keys). httplib keeps a request on one thread from its pre-routing handler
// to its logger.
thread_local std::string caller = "none";

// The byte ranges the request on this worker thread asked for, taken from httplib before routing:
// cpp-httplib 0.11 cuts any answer to them (a 404's, or /health's answered 200 with part of its
// JSON), and answers a range past the end 206 with a Content-Length near 2^64. Only GET
// /events/processed serves a range, and it does so itself.
thread_local httplib::Ranges requested_ranges;

// The first and last byte a range selects of an answer of `size` bytes, or nothing if it selects
// none (RFC 9110, 14.1.2). httplib gives a suffix range as {-1, n}, an open one as {first, -1}.
std::optional<std::pair<size_t, size_t>> range_within(const httplib::Range& range, size_t size) {
  if (size == 0)
    return std::nullopt;
  if (range.first < 0) {
    if (range.second <= 0)
      return std::nullopt;
    return std::make_pair(size - std::min(size, static_cast<size_t>(range.second)), size - 1);
  }
  auto first = static_cast<size_t>(range.first);
  if (first >= size)
    return std::nullopt;
  auto last = range.second < 0 ? size - 1 : std::min(size - 1, static_cast<size_t>(range.second));
  return std::make_pair(first, last);
}

// The token of an `Authorization: Bearer <token>` header (the scheme in any case, RFC 9110
// 11.1); empty if there is none.
std::string bearer_token(const httplib::Request& req) {
  auto value = req.get_header_value("Authorization");
  constexpr std::string_view scheme = "bearer ";
  if (value.size() <= scheme.size()
      || !std::equal(scheme.begin(), scheme.end(), value.begin(), [](char a, char b) {
           return a == std::tolower(static_cast<unsigned char>(b));
         }))
    return {};
  auto first = value.find_first_not_of(' ', scheme.size());
  auto last = value.find_last_not_of(" \t");
  return first == std::string::npos ? std::string{} : value.substr(first, last - first + 1);
}

// Whether httplib would read a body after the request's headers.
bool has_body(const httplib::Request& req) {
  auto length = req.get_header_value("Content-Length");
  return req.has_header("Transfer-Encoding") || (!length.empty() && length != "0");
}

void reply_json(httplib::Response& res, int status, const std::string& body) {
  res.status = status;
  res.set_content(body, "application/json");
}

void reply(httplib::Response& res, int status, const json& body) {
  // A message may quote what the client sent, such as a query parameter's name, which need not
  // be UTF-8: replaced rather than thrown on.
  reply_json(res, status, body.dump(-1, ' ', false, json::error_handler_t::replace));
}

void reply_message(httplib::Response& res, int status, const std::string& message) {
  reply(res, status, json{{"message", message}});
}

json error_list(const std::vector<validation_error>& errors) {
  json list = json::array();
  for (auto& e : errors)
    list.push_back({{"field", e.field}, {"message", e.message}});
  return list;
}

// A 400's body: every problem found.
json invalid_payload(const std::vector<validation_error>& errors) {
  return {{"message", "Invalid request payload"}, {"errors", error_list(errors)}};
}

// True for an absent (or empty) Content-Type, application/json, or text/plain (what a browser's
// navigator.sendBeacon sends a string as; the body must still be JSON), with or without
// parameters.
bool is_json_content_type(const httplib::Request& req) {
  auto type = req.get_header_value("Content-Type");
  type = type.substr(0, type.find(';'));
  type.erase(std::remove_if(type.begin(), type.end(), [](unsigned char c) { return std::isspace(c); }),
             type.end());
  std::transform(type.begin(), type.end(), type.begin(), [](unsigned char c) { return std::tolower(c); });
  return type.empty() || type == "application/json" || type == "text/plain";
}

constexpr const char* unsupported_media_type = "Content-Type must be application/json or text/plain";

// Whether a query's userId could be a stored event's: UTF-8 without U+0000, as the event's JSON
// reader and PostgreSQL both require (libpq would cut the text at a U+0000, and so select another
// user's events).
bool is_user_id_text(const std::string& value) {
  return uas::json::is_utf8(value) && value.find('\0') == std::string::npos;
}

constexpr const char* user_id_not_text = "userId must be UTF-8 text without the character U+0000";

// Why a request's length cannot be told for sure (RFC 9112, 6.3), or nothing. cpp-httplib 0.11
// takes chunked over a Content-Length, the first of two Content-Lengths, and `+36` as 36; a proxy
// in front that reads it the other way would see another request where httplib sees a body, or
// the reverse (request smuggling).
std::optional<std::string> ambiguous_framing(const httplib::Request& req) {
  auto lengths = req.get_header_value_count("Content-Length");
  auto codings = req.get_header_value_count("Transfer-Encoding");
  if (lengths > 0 && codings > 0)
    return "both Content-Length and Transfer-Encoding";
  if (codings > 1
      || (codings == 1
          && strcasecmp(req.get_header_value("Transfer-Encoding").c_str(), "chunked") != 0))
    return "Transfer-Encoding other than chunked";
  auto first = req.get_header_value("Content-Length");
  for (size_t i = 0; i < lengths; ++i) {
    auto length = req.get_header_value("Content-Length", i);
    if (length.empty() || length.size() > 18
        || length.find_first_not_of("0123456789") != std::string::npos)
      return "Content-Length is not a number of bytes";
    if (length != first)
      return "Content-Length given twice, differently";
  }
  return std::nullopt;
}

// Answers 400 a request whose length can be read two ways, before anything reads its body; true
// if it did. `Connection: close` closes the connection after the answer (tune_for_load), so that
// the body is not read as the next request.
bool refuse_ambiguous_framing(const httplib::Request& req, httplib::Response& res) {
  auto why = ambiguous_framing(req);
  if (!why)
    return false;
  reply_message(res, 400, "Ambiguous request framing: " + *why);
  res.set_header("Connection", "close");
  return true;
}

// Puts right what cpp-httplib 0.11 gets wrong about request bodies, before it reads one: true if
// the request is answered here, unread. An answer that leaves a body unread says
// `Connection: close`, which closes the connection (tune_for_load).
bool screen_body(httplib::Request& req, httplib::Response& res) {
  bool chunked = req.has_header("Transfer-Encoding");
  // The methods whose bodies httplib reads; it leaves any other's unread.
  if (req.method != "POST" && req.method != "PUT" && req.method != "PATCH"
      && req.method != "DELETE") {
    if (has_body(req))
      res.set_header("Connection", "close"); // answered as usual, and the body left unread
    return false;
  }
  if (req.has_header("Content-Encoding")) {
    // Content codings are named in any case (RFC 9110, 8.4.1); httplib decodes only lower-case
    // names, and would take a body sent as "GZIP" as if it were not compressed.
    auto coding = req.get_header_value("Content-Encoding");
    std::transform(coding.begin(), coding.end(), coding.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    req.headers.erase("Content-Encoding");
    req.set_header("Content-Encoding", coding);
  }
  if (!chunked && !req.has_header("Content-Length")) {
    // A request with neither header has no body (RFC 9112, 6.3); httplib would answer one
    // like that 400 before routing it, instead of the route's own answer.
    req.set_header("Content-Length", "0");
    return false;
  }
  if (chunked
      && !(req.method == "POST" && (req.path == "/events/generate" || req.path == "/events/batch"))) {
    // Only the ingest routes read a body in chunks, up to their limit. For any other httplib
    // would read one whole, with no limit, just to answer 404 or 405 (the error handler tells
    // which) after it.
    res.status = 404;
    res.set_header("Connection", "close"); // the body is left unread
    return true;
  }
  return false;
}

// The method label of a request in metrics: the client chooses the method, so any outside the
// standard ones shares one series rather than growing new ones.
std::string_view method_of(const httplib::Request& req) {
  for (std::string_view known : {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
                                 "CONNECT", "TRACE"})
    if (req.method == known)
      return known;
  return "other";
}

// Reads a request's body, up to `limit` bytes (decompressed, if it came compressed), whether it
// comes with a Content-Length or in chunks: httplib 0.11 limits only the former, and would take
// any amount of the latter into memory. False, with the status set (the error handler words it),
// if it is too big or does not come whole. The rest of a body too big is read and dropped, up to
// a point, so that its client, still sending, reads the 413 rather than a reset connection.
bool read_body(const httplib::ContentReader& read, httplib::Response& res, std::string& body,
               size_t limit) {
  const size_t dropped_at_most = 16 * max_event_bytes;
  size_t received = 0;
  bool whole = read([&](const char* data, size_t size) {
    received += size;
    if (received <= limit)
      body.append(data, size);
    return received <= limit + dropped_at_most;
  });
  if (received <= limit)
    return whole;
  res.status = 413;
  if (!whole)
    res.set_header("Connection", "close"); // the rest of the body is still on its way
  return false;
}

void reply_invalid(httplib::Response& res, const std::vector<validation_error>& problems) {
  reply(res, 400, {{"message", "Invalid request parameters"}, {"errors", error_list(problems)}});
}

// A store's failure as HTTP says it: unreachable for now (503, try again), or broken (500).
void reply_store_failure(httplib::Response& res, const caf::error& code, const std::string& why) {
  if (code == store_error::unavailable) {
    res.set_header("Retry-After", "1");
    return reply_message(res, 503, "Store unavailable: the database cannot be reached");
  }
  throw std::runtime_error{why}; // logged and answered 500 by the handler
}

// A query parameter as it goes into a URL: every byte but the unreserved ones percent-encoded.
std::string url_encoded(const std::string& value) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : value) {
    if (std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

// The query of GET /events/processed, or every problem with its parameters. Each parameter at
// most once; one this route does not know is a mistake worth telling (a misspelt filter would
// otherwise answer everything).
event_query read_query(const httplib::Request& req, std::vector<validation_error>& problems) {
  event_query q;
  std::set<std::string> seen;
  for (auto& [name, value] : req.params) {
    if (!seen.insert(name).second)
      continue;
    if (name != "limit" && name != "after" && name != "userId" && name != "eventType") {
      problems.push_back({name, name + " is not a parameter of this route (limit, after, userId, "
                                       "eventType)"});
      continue;
    }
    if (req.get_param_value_count(name) > 1) {
      problems.push_back({name, name + " appears more than once"});
      continue;
    }
    bool digits = !value.empty() && value.size() <= 19
                  && value.find_first_not_of("0123456789") == std::string::npos;
    if (name == "limit") {
      if (!digits || std::stoull(value) < 1 || std::stoull(value) > max_page)
        problems.push_back({name, "limit must be a whole number from 1 to "
                                    + std::to_string(max_page)});
      else
        q.limit = static_cast<uint32_t>(std::stoull(value));
    } else if (name == "after") {
      // Cursors are PostgreSQL bigints: a larger one is no cursor the service gave.
      if (!digits || std::stoull(value) > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        problems.push_back({name, "after must be a cursor, as the Link header of the page "
                                  "before gives it"});
      else
        q.after = std::stoull(value);
    } else if (name == "userId") {
      if (value.empty())
        problems.push_back({name, "userId must not be empty"});
      else if (!is_user_id_text(value))
        problems.push_back({name, user_id_not_text});
      q.user_id = value;
    } else if (!is_event_type(value)) {
      problems.push_back({name, "eventType must be one of LOGIN, LOGOUT, PRODUCT_VIEW"});
    } else {
      q.event_type = value;
    }
  }
  return q;
}

// The URL of the page after one that ended at cursor `next` (RFC 8288: relative to the request).
std::string next_link(const event_query& q, uint64_t next) {
  auto url = "/events/processed?limit=" + std::to_string(q.limit) + "&after=" + std::to_string(next);
  if (!q.user_id.empty())
    url += "&userId=" + url_encoded(q.user_id);
  if (!q.event_type.empty())
    url += "&eventType=" + q.event_type;
  return "<" + url + ">; rel=\"next\"";
}

std::string default_message(const httplib::Request& req, int status) {
  switch (status) {
    case 400: return "Bad request";
    case 404: return "Not found";
    case 405: return "Method not allowed";
    case 413: return req.path == "/events/batch" ? "Request body exceeds 5 MiB"
                                                   : "Request body exceeds 1 MiB";
    case 414: return "URI too long";
    case 416: return "Range not satisfiable";
    default: return "Request failed";
  }
}

} // namespace

struct http_server::impl {
  config cfg;
  caf::actor_system& sys;
  http_actor relay;
  readiness_check readiness;
  brokers_check brokers_up;
  std::unique_ptr<httplib::Server> owned_server; // an httplib::SSLServer with TLS set
  httplib::Server& server;
  std::shared_ptr<const key_ring> keys; // nullptr: every route open; replaced whole on SIGHUP
  std::unique_ptr<rate_limiter> limiter; // nullptr: RATE_LIMIT_PER_KEY=0
  std::thread listener;
  std::future<void> listened; // ready once the listener's threads have all ended
  std::shared_ptr<const pool_load> load;
  std::atomic<bool> draining{false};
  std::atomic<bool> abandoning{false}; // drain's time is up: stop waiting for answers
  std::atomic<int> in_flight{0};
  // Events handed to the producer and not yet answered: those waiting for the broker.
  std::atomic<size_t> events_waiting{0};

  impl(const config& c, caf::actor_system& s, producer_actor producer, store_actor store,
       readiness_check ready, brokers_check brokers)
    : cfg{c},
      sys{s},
      relay{s.spawn(http, std::move(producer), std::move(store))},
      readiness{std::move(ready)},
      brokers_up{std::move(brokers)},
      owned_server{make_server(c)},
      server{*owned_server} {
    if (c.rate_limit_per_key > 0)
      limiter = std::make_unique<rate_limiter>(c.rate_limit_per_key);
    configure();
    routes();
  }

  // `n` events counted as waiting for the broker until this goes.
  class admitted {
  public:
    admitted(std::atomic<size_t>& waiting, size_t n) : waiting_{waiting}, n_{n} {}
    admitted(const admitted&) = delete;
    admitted& operator=(const admitted&) = delete;
    ~admitted() { waiting_ -= n_; }

  private:
    std::atomic<size_t>& waiting_;
    size_t n_;
  };

  // Takes `count` events (a request's: one, or a batch's valid ones) as waiting for the broker,
  // unless that is pointless or too much: while every broker is known to be down, or when more
  // than MAX_IN_FLIGHT would wait. Then the request is answered 503 at once, so that clients back
  // off rather than hold their connections, and memory, through an outage's retries.
  std::optional<admitted> admit(httplib::Response& res, size_t count) {
    auto reject = [&](const char* reason, const std::string& message) {
      metrics::global().http_requests_rejected.inc({reason});
      res.set_header("Retry-After", "1");
      reply_message(res, 503, message);
      return std::nullopt;
    };
    if (!brokers_up())
      return reject("brokers_down", "Kafka brokers are unreachable; retry later");
    if (events_waiting.fetch_add(count) + count > cfg.max_in_flight) {
      events_waiting -= count;
      return reject("in_flight_limit", "Too many events waiting for the broker; retry later");
    }
    return std::optional<admitted>{std::in_place, events_waiting, count};
  }

  static std::unique_ptr<httplib::Server> make_server(const config& c) {
    if (!c.tls())
      return std::make_unique<httplib::Server>();
    std::string refused;
    auto server = std::make_unique<httplib::SSLServer>([&](SSL_CTX& ctx) {
      try {
        use_tls_files(ctx, c);
        return true;
      } catch (const std::exception& e) {
        refused = e.what();
        return false;
      }
    });
    if (!server->is_valid())
      throw std::runtime_error{refused.empty() ? "cannot set up TLS" : refused};
    return server;
  }

  // Who is calling, checked before routing and before any body is read: a request without a key
  // that its route accepts is answered here, 401 or 403, and goes no further.
  bool screen_caller(httplib::Request& req, httplib::Response& res) {
    caller = "none";
    auto ring = std::atomic_load(&keys);
    auto needed = required_access(req.method, req.path);
    if (!ring || needed == access::open)
      return false;
    auto token = bearer_token(req);
    const api_key* key = token.empty() ? nullptr : ring->find(token);
    if (key)
      caller = key->name;
    if (key && key->allows(needed))
      return false;
    // RFC 6750, 3: the challenge, with why a key that was sent is not enough.
    std::string challenge = R"(Bearer realm="user-activity-service")";
    if (!key) {
      if (!token.empty())
        challenge += R"(, error="invalid_token")";
      res.set_header("WWW-Authenticate", challenge);
      reply_message(res, 401, token.empty() ? "An API key is required: Authorization: Bearer <key>"
                                            : "Unknown API key");
    } else {
      std::string scope = scope_name(needed);
      res.set_header("WWW-Authenticate",
                     challenge + R"(, error="insufficient_scope", scope=")" + scope + "\"");
      reply_message(res, 403,
                    "API key \"" + key->name + "\" lacks the scope this route needs: " + scope);
    }
    if (has_body(req))
      res.set_header("Connection", "close"); // the body is left unread
    if (needed == access::ingest)
      allow_origin(req, res); // so that a page sending events can read why they were refused
    return true;
  }

  // RATE_LIMIT_PER_KEY: true if the caller's key may send `events` more events now; else answers
  // 429 with the seconds until it may.
  bool within_rate(httplib::Response& res, size_t events) {
    if (!limiter)
      return true;
    auto wait = limiter->take(caller, events);
    if (wait == rate_limiter::clock::duration::zero())
      return true;
    auto seconds = std::chrono::ceil<std::chrono::seconds>(wait).count();
    res.set_header("Retry-After", std::to_string(std::max<long long>(1, seconds)));
    reply_message(res, 429, "API key \"" + caller + "\" is over its rate of "
                              + std::to_string(cfg.rate_limit_per_key) + " events per second");
    return false;
  }

  // Runs `handler` for a request read whole: counts it as in flight for drain(), and turns it
  // away once shutdown began.
  template <class Handler>
  void guarded(httplib::Response& res, Handler&& handler) {
    ++in_flight;
    struct done_guard {
      std::atomic<int>& n;
      ~done_guard() { --n; }
    } guard{in_flight};
    if (draining.load())
      return reply_message(res, 503, "Service is shutting down");
    handler();
  }

  // Waits for an actor's answer; false if shutdown gave up on it first (a publish retrying
  // through a broker outage can take far longer than a shutdown may).
  template <class T>
  bool await(reply_box<T>& outcome) {
    return outcome.wait(std::chrono::milliseconds{50}, [this] { return abandoning.load(); });
  }

  void configure() {
    // Runs once per answered request, whatever answered it: routes, errors, 413s alike.
    auto count = [](const httplib::Request& req, const httplib::Response& res,
                    std::chrono::steady_clock::duration took) {
      auto route = route_of(req);
      auto& m = metrics::global();
      m.http_requests.inc({method_of(req), route, std::to_string(res.status), caller});
      m.http_request_duration.observe(route, took);
      log::debug("Request answered",
                 {{"method", req.method},
                  {"path", req.path},
                  {"status", res.status},
                  {"key", caller},
                  {"us", static_cast<int64_t>(
                           std::chrono::duration_cast<std::chrono::microseconds>(took).count())}});
      caller = "none"; // until the next request's screen says otherwise
    };
    auto screen = [this](httplib::Request& req, httplib::Response& res) {
      requested_ranges = std::move(req.ranges);
      req.ranges.clear();
      return refuse_ambiguous_framing(req, res) || screen_caller(req, res) || screen_body(req, res);
    };
    load = tune_for_load(server,
                         {static_cast<size_t>(cfg.http_threads),
                          static_cast<size_t>(cfg.http_max_threads)},
                         count, screen);
    metrics::global().http_threads = [load = load] { return load->threads.load(); };
    metrics::global().http_connections_waiting = [load = load] { return load->waiting.load(); };
    metrics::global().producer_in_flight = [this] {
      return static_cast<int64_t>(events_waiting.load());
    };
    // The largest any route takes; read_body holds each route to its own.
    server.set_payload_max_length(max_batch_bytes);
    server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
      // httplib's own 400 and 414 (nothing of ours answered yet): the request could not be read
      // as HTTP, so where the next one starts on this connection is anyone's guess.
      if (res.body.empty() && (res.status == 400 || res.status == 414))
        res.set_header("Connection", "close");
      // A compressed body that did not inflate: a body that is not the JSON the route takes.
      auto coding = req.get_header_value("Content-Encoding");
      if (res.status == 400 && res.body.empty() && req.method == "POST"
          && (coding == "gzip" || coding == "deflate" || coding == "br"))
        reply(res, 400, invalid_payload({{"body", "body is not valid " + coding}}));
      // httplib has no routes for TRACE and CONNECT and answers them 400: they are methods the
      // path does not take, like any other.
      bool unrouted_method = req.method == "TRACE" || req.method == "CONNECT";
      if (res.status == 400 && res.body.empty() && unrouted_method)
        res.status = 404;
      if (res.status == 404 && res.body.empty()) {
        if (auto it = allowed_methods.find(std::string{route_of(req)}); it != allowed_methods.end()) {
          res.status = 405;
          res.set_header("Allow", it->second);
        }
      }
      if (res.body.empty())
        reply_message(res, res.status, default_message(req, res.status));
    });
    server.set_exception_handler([](const httplib::Request& req, httplib::Response& res,
                                    std::exception_ptr ep) {
      std::string what = "unknown error";
      try {
        std::rethrow_exception(ep);
      } catch (const std::exception& e) {
        what = e.what();
      } catch (...) {
      }
      log::error("Request failed", {{"method", req.method}, {"path", req.path}, {"error", what}});
      reply_message(res, 500, "Internal server error");
    });
  }

  // The trace a POST's events travel in: the caller's continued, or a new one (two traceparent
  // headers make none valid). The answer names it whatever it is, so that even a 400 can be
  // found by its trace id.
  static std::string trace(const httplib::Request& req, httplib::Response& res) {
    auto traceparent = next_traceparent(req.get_header_value_count("traceparent") == 1
                                          ? req.get_header_value("traceparent")
                                          : std::string{});
    res.set_header("traceparent", traceparent);
    return traceparent;
  }

  // Answers 415 a POST whose body is of a type the ingest routes do not take, before it is read:
  // true if it did. httplib reads a multipart body as form parts, and that through a plain
  // reader throws.
  static bool refuse_media_type(const httplib::Request& req, httplib::Response& res) {
    if (is_json_content_type(req))
      return false;
    trace(req, res);
    reply_message(res, 415, unsupported_media_type);
    if (has_body(req))
      res.set_header("Connection", "close"); // the body is left unread
    return true;
  }

  // POST /events/generate, its body read.
  void publish(const httplib::Request& req, const std::string& body, httplib::Response& res) {
    auto traceparent = trace(req, res);
    if (!within_rate(res, 1))
      return;
    auto parsed = parse_event_request(body);
    if (!parsed.ok())
      return reply(res, 400, invalid_payload(parsed.errors));
    auto admission = admit(res, 1);
    if (!admission)
      return;
    auto id = parsed.value.event_id;
    parsed.value.traceparent = std::move(traceparent);
    auto outcome = std::make_shared<publish_reply::element_type>();
    caf::anon_send(relay, publish_atom::value, std::move(parsed.value), outcome);
    if (!await(*outcome))
      return reply_message(res, 503, "Service is shutting down");
    if (!outcome->error().empty())
      return reply_message(res, 500, "Failed to publish event");
    // The id is a UUID, checked or ours: nothing in it needs escaping.
    reply_json(res, 201, R"({"eventId":")" + id + R"("})");
  }

  // POST /events/batch, its body read: every valid event published in one message to the
  // producer; each result in the request's order, 201 if all are acknowledged, else 207.
  void publish_batch(const httplib::Request& req, const std::string& body, httplib::Response& res) {
    auto traceparent = trace(req, res);
    auto parsed = parse_batch_request(body, cfg.batch_max_events);
    if (!parsed.ok())
      return reply(res, 400, invalid_payload(parsed.errors));
    if (!within_rate(res, parsed.items.size()))
      return;
    // Only the events are held while the broker is waited for: the rejected items' errors are
    // written now, and the rest of the parse is let go.
    auto events = std::make_shared<std::vector<event>>();
    events->reserve(parsed.items.size());
    std::vector<std::string> rejected(parsed.items.size()); // an invalid item's errors, as JSON
    for (size_t i = 0; i < parsed.items.size(); ++i) {
      auto& item = parsed.items[i];
      if (item.ok()) {
        item.value.traceparent = traceparent; // one request, one span: its events share it
        events->push_back(std::move(item.value));
      } else {
        rejected[i] = error_list(item.errors).dump();
      }
    }
    parsed = {};
    batch_outcome published(events->size());
    if (!events->empty()) {
      auto admission = admit(res, events->size());
      if (!admission)
        return;
      auto outcome = std::make_shared<batch_reply::element_type>();
      caf::anon_send(relay, publish_atom::value, event_batch{events}, outcome);
      if (!await(*outcome))
        return reply_message(res, 503, "Service is shutting down");
      if (!outcome->error().empty())
        std::fill(published.begin(), published.end(), outcome->error());
      else
        published = std::move(outcome->value());
    }
    // Written as text: a batch's results are mostly eventIds (UUIDs, nothing to escape), and a
    // JSON document built for each of hundreds would cost more than the rest of its answer.
    std::string results = R"({"results":[)";
    results.reserve(results.size() + rejected.size() * 52);
    bool all_created = true;
    size_t next = 0; // the next valid event's place in `events` and `published`
    for (auto& errors : rejected) {
      if (&errors != &rejected.front())
        results += ',';
      if (!errors.empty()) {
        results += R"({"status":400,"errors":)" + errors + "}";
        all_created = false;
      } else if (!published[next].empty()) {
        results += R"({"status":500,"message":"Failed to publish event"})";
        all_created = false;
        ++next;
      } else {
        results += R"({"eventId":")";
        results += (*events)[next++].event_id;
        results += R"("})";
      }
    }
    results += "]}";
    reply_json(res, all_created ? 201 : 207, results);
  }

  // GET /events/processed: every stored event, or a page of those the query selects.
  void processed(const httplib::Request& req, httplib::Response& res) {
    std::vector<validation_error> problems;
    auto query = read_query(req, problems);
    if (!problems.empty())
      return reply_invalid(res, problems);
    auto outcome = std::make_shared<processed_reply::element_type>();
    caf::anon_send(relay, get_json_atom::value, query, outcome);
    if (!await(*outcome))
      return reply_message(res, 503, "Service is shutting down");
    if (!outcome->error().empty())
      return reply_store_failure(res, outcome->code(), outcome->error());
    if (outcome->value().next != 0)
      res.set_header("Link", next_link(query, outcome->value().next));
    // One range is answered 206 with those bytes; several are answered whole (httplib's
    // multipart answer would give each part a total length of 0).
    size_t size = outcome->value().json.size();
    size_t from = 0;
    size_t length = size;
    if (requested_ranges.size() == 1) {
      auto range = range_within(requested_ranges.front(), size);
      if (!range) {
        res.set_header("Content-Range", "bytes */" + std::to_string(size));
        return reply_message(res, 416, "Range not satisfiable: the answer has "
                                         + std::to_string(size) + " bytes");
      }
      from = range->first;
      length = range->second - range->first + 1;
      res.status = 206;
      res.set_header("Content-Range", "bytes " + std::to_string(range->first) + "-"
                                        + std::to_string(range->second) + "/"
                                        + std::to_string(size));
    }
    // Written from the store's own memory as the client reads it: no copy of every event per
    // GET, however many GETs are reading at once.
    res.set_content_provider(
      length, "application/json",
      [outcome, from](size_t offset, size_t count, httplib::DataSink& sink) {
        return outcome->value().json.write(from + offset, count, sink.write);
      });
  }

  // Whether a browser page from the request's Origin may send events (CORS_ALLOWED_ORIGINS).
  bool origin_allowed(const httplib::Request& req) const {
    auto origin = req.get_header_value("Origin");
    if (origin.empty())
      return false;
    auto& allowed = cfg.cors_allowed_origins;
    return std::find(allowed.begin(), allowed.end(), origin) != allowed.end()
           || std::find(allowed.begin(), allowed.end(), "*") != allowed.end();
  }

  // Lets the page that sent an ingest request read the answer, whatever it is, if its origin
  // is allowed.
  void allow_origin(const httplib::Request& req, httplib::Response& res) const {
    if (!origin_allowed(req))
      return;
    res.set_header("Access-Control-Allow-Origin", req.get_header_value("Origin"));
    res.set_header("Access-Control-Expose-Headers", "Retry-After");
    res.set_header("Vary", "Origin");
  }

  // A browser's preflight before a POST from a page of another origin: allowed if the origin is
  // listed, for the request headers a client sends events with.
  void preflight(const httplib::Request& req, httplib::Response& res) const {
    res.status = 204;
    res.set_header("Allow", "POST, OPTIONS");
    if (!origin_allowed(req))
      return;
    allow_origin(req, res);
    res.set_header("Access-Control-Allow-Methods", "POST");
    res.set_header("Access-Control-Allow-Headers", "Content-Type, Content-Encoding, Authorization");
    res.set_header("Access-Control-Max-Age", "600");
  }

  // GET /events/processed/{eventId}.
  void one_event(const std::string& id, httplib::Response& res) {
    auto outcome = std::make_shared<event_reply::element_type>();
    caf::anon_send(relay, find_atom::value, id, outcome);
    if (!await(*outcome))
      return reply_message(res, 503, "Service is shutting down");
    if (outcome->code() == store_error::not_found)
      return reply_message(res, 404, "No stored event has this eventId");
    if (!outcome->error().empty())
      return reply_store_failure(res, outcome->code(), outcome->error());
    reply_json(res, 200, outcome->value());
  }

  // DELETE /events/processed?userId=: one user's stored events erased (the right to erasure).
  void erase(const httplib::Request& req, httplib::Response& res) {
    std::vector<validation_error> problems;
    for (auto& [name, value] : req.params)
      if (name != "userId")
        problems.push_back({name, name + " is not a parameter of this route (userId)"});
    auto user = req.get_param_value("userId");
    if (req.get_param_value_count("userId") > 1)
      problems.push_back({"userId", "userId appears more than once"});
    else if (user.empty())
      problems.push_back({"userId", "userId is required: whose stored events to erase"});
    else if (!is_user_id_text(user))
      problems.push_back({"userId", user_id_not_text});
    if (!problems.empty())
      return reply_invalid(res, problems);
    auto outcome = std::make_shared<erased_reply::element_type>();
    caf::anon_send(relay, erase_atom::value, user, outcome);
    if (!await(*outcome))
      return reply_message(res, 503, "Service is shutting down");
    if (!outcome->error().empty())
      return reply_store_failure(res, outcome->code(), outcome->error());
    reply(res, 200, {{"deleted", outcome->value()}});
  }

  void routes() {
    server.Post("/events/generate", [this](const httplib::Request& req, httplib::Response& res,
                                           const httplib::ContentReader& read) {
      allow_origin(req, res);
      if (refuse_media_type(req, res))
        return;
      std::string body;
      if (read_body(read, res, body, max_event_bytes))
        guarded(res, [&] { publish(req, body, res); });
    });
    server.Post("/events/batch", [this](const httplib::Request& req, httplib::Response& res,
                                        const httplib::ContentReader& read) {
      allow_origin(req, res);
      if (refuse_media_type(req, res))
        return;
      std::string body;
      if (read_body(read, res, body, max_batch_bytes))
        guarded(res, [&] { publish_batch(req, body, res); });
    });
    for (auto path : {"/events/generate", "/events/batch"})
      server.Options(path, [this](const httplib::Request& req, httplib::Response& res) {
        preflight(req, res);
      });
    server.Get("/events/processed", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { processed(req, res); });
    });
    server.Get(R"(/events/processed/([^/]+))",
               [this](const httplib::Request& req, httplib::Response& res) {
                 guarded(res, [&] { one_event(req.matches[1], res); });
               });
    server.Delete("/events/processed", [this](const httplib::Request& req, httplib::Response& res) {
      guarded(res, [&] { erase(req, res); });
    });
    // Liveness: answers while the process lives, shutdown included.
    server.Get("/health", [](const httplib::Request&, httplib::Response& res) {
      reply(res, 200, {{"status", "ok"}});
    });
    // Readiness: whether to send traffic here; false while shutting down or cut off from Kafka.
    server.Get("/health/ready", [this](const httplib::Request&, httplib::Response& res) {
      auto reasons = readiness();
      if (draining.load())
        reasons.insert(reasons.begin(), "shutting down");
      if (reasons.empty())
        return reply(res, 200, {{"status", "ready"}});
      reply(res, 503, {{"status", "not ready"}, {"reasons", reasons}});
    });
    // Scrapes go on during shutdown too: the last figures are the interesting ones.
    server.Get("/metrics", [](const httplib::Request&, httplib::Response& res) {
      res.set_content(metrics::global().render(), "text/plain; version=0.0.4; charset=utf-8");
    });
  }
};

http_server::http_server(const config& cfg, caf::actor_system& sys, producer_actor producer,
                         store_actor store, readiness_check readiness, brokers_check brokers_up)
  : impl_{std::make_unique<impl>(cfg, sys, std::move(producer), std::move(store),
                                 std::move(readiness), std::move(brokers_up))} {
}

void http_server::use_api_keys(std::shared_ptr<const key_ring> keys) {
  std::atomic_store(&impl_->keys, std::move(keys));
}

http_server::~http_server() {
  if (impl_->listener.joinable()) {
    impl_->server.stop();
    impl_->listener.join();
  }
  caf::anon_send_exit(impl_->relay, caf::exit_reason::user_shutdown);
  metrics::global().producer_in_flight = nullptr; // the registry outlives the server
}

std::string http_server::host() const {
  return impl_->cfg.host;
}

int http_server::start() {
  auto& server = impl_->server;
  auto& cfg = impl_->cfg;
  int port = bind_for_load(server, host(), cfg.port);
  if (port < 0)
    throw std::runtime_error{"cannot listen on " + host() + ":" + std::to_string(cfg.port)};
  std::promise<void> ended;
  impl_->listened = ended.get_future();
  impl_->listener = std::thread{[&server, ended = std::move(ended)]() mutable {
    pthread_setname_np(pthread_self(), "http-accept");
    server.listen_after_bind(); // returns once the worker pool has shut down
    ended.set_value();
  }};
  return port;
}

int http_server::drain(std::chrono::milliseconds timeout) {
  impl_->draining = true;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (impl_->in_flight.load() > 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  int unanswered = impl_->in_flight.load();
  impl_->abandoning = true; // whatever still waits is answered 503 now
  return unanswered;
}

size_t http_server::stop(std::chrono::milliseconds patience) {
  if (!impl_->listener.joinable())
    return 0;
  impl_->server.stop();
  // The relay goes either way: a request that still arrives is answered 503 (drain abandoned it).
  caf::anon_send_exit(impl_->relay, caf::exit_reason::user_shutdown);
  if (impl_->listened.wait_for(patience) != std::future_status::ready)
    return impl_->load->threads.load();
  impl_->listener.join();
  return 0;
}

} // namespace uas
