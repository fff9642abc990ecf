#include "service_process.hpp"

#include <array>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <stdexcept>

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace uas::testing {

namespace {

// A field of a log line, text (`name=value, ...`) or JSON ({"name": value}).
std::string field(const std::string& line, const std::string& name) {
  if (auto brace = line.find('{'); brace == 0) {
    auto obj = nlohmann::json::parse(line, nullptr, false);
    if (!obj.is_object() || !obj.contains(name))
      return {};
    return obj[name].is_string() ? obj[name].get<std::string>() : obj[name].dump();
  }
  auto pos = line.find(name + "=");
  if (pos == std::string::npos)
    return {};
  pos += name.size() + 1;
  auto end = line.find(", ", pos);
  return line.substr(pos, end == std::string::npos ? std::string::npos : end - pos);
}

} // namespace

service_process::service_process(std::map<std::string, std::string> env, bool wait_ready,
                                 std::vector<std::string> args) {
  env.emplace("PORT", "0");
  env.emplace("KAFKA_BROKERS", "embedded");
  env.emplace("HTTP_THREADS", "16");
  // The child's environment and arguments are made here, before the fork: a child of a process
  // with other threads may call nothing that allocates (another thread may have held malloc's
  // lock at the fork, and the child would wait for it for ever), so it only execs.
  std::vector<std::string> entries;
  for (char** e = environ; *e; ++e) {
    std::string entry{*e};
    if (!env.count(entry.substr(0, entry.find('='))))
      entries.push_back(std::move(entry));
  }
  for (auto& [key, value] : env)
    entries.push_back(key + "=" + value);
  std::vector<char*> envp;
  for (auto& entry : entries)
    envp.push_back(entry.data());
  envp.push_back(nullptr);
  std::vector<char*> argv{const_cast<char*>(UAS_BINARY)};
  for (auto& a : args)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  int pipe_fds[2];
  // Close-on-exec: a process another thread starts meanwhile must not inherit the write end,
  // which would keep this reader from its end of file until that process ends too.
  if (pipe2(pipe_fds, O_CLOEXEC) != 0)
    throw std::runtime_error{"pipe failed"};
  pid_ = fork();
  if (pid_ == 0) {
    dup2(pipe_fds[1], 1);
    dup2(pipe_fds[1], 2);
    // A .env in the test's working directory must not leak in.
    if (chdir("/") == 0)
      execve(UAS_BINARY, argv.data(), envp.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  out_fd_ = pipe_fds[0];
  reader_ = std::thread{[this] {
    std::string pending;
    std::array<char, 4096> buf;
    ssize_t n;
    while ((n = read(out_fd_, buf.data(), buf.size())) > 0) {
      pending.append(buf.data(), static_cast<size_t>(n));
      size_t nl;
      while ((nl = pending.find('\n')) != std::string::npos) {
        std::lock_guard<std::mutex> guard{mutex_};
        lines_.push_back(pending.substr(0, nl));
        pending.erase(0, nl + 1);
      }
    }
    if (!pending.empty()) {
      std::lock_guard<std::mutex> guard{mutex_};
      lines_.push_back(pending);
    }
  }};
  if (!wait_ready)
    return;
  auto listening = wait_for_line("HTTP server listening", 20s);
  if (!listening) {
    std::string log;
    for (auto& l : lines())
      log += l + "\n";
    // No destructor runs for an object whose constructor throws: end the child and the reader
    // here (a thread left joinable aborts the whole test binary, with nothing said).
    end();
    throw std::runtime_error{"service did not start:\n" + log};
  }
  port_ = std::stoi(field(*listening, "port"));
  if (auto started = wait_for_line("Embedded Kafka broker started", 1s))
    broker_ = field(*started, "address");
}

service_process::~service_process() { end(); }

void service_process::end() {
  if (running()) {
    kill(pid_, SIGKILL);
    wait_exit(5s);
  }
  if (reader_.joinable())
    reader_.join();
  if (out_fd_ >= 0)
    close(out_fd_);
  out_fd_ = -1;
}

httplib::Client service_process::client() const {
  httplib::Client c{"127.0.0.1", port_};
  c.set_read_timeout(60, 0);
  return c;
}

httplib::Result service_process::post_event(const std::string& body,
                                            const std::string& content_type) const {
  return client().Post("/events/generate", body, content_type.c_str());
}

nlohmann::json service_process::processed() const {
  auto res = client().Get("/events/processed");
  if (!res || res->status != 200)
    throw std::runtime_error{"GET /events/processed failed"};
  return nlohmann::json::parse(res->body);
}

nlohmann::json
service_process::wait_processed(const std::function<bool(const nlohmann::json&)>& done,
                                std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto events = processed();
  while (!done(events) && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(50ms);
    events = processed();
  }
  return events;
}

std::vector<std::string> service_process::lines() const {
  std::lock_guard<std::mutex> guard{mutex_};
  return lines_;
}

std::optional<std::string> service_process::wait_for_line(const std::string& text,
                                                          std::chrono::milliseconds timeout) const {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    for (auto& line : lines())
      if (line.find(text) != std::string::npos)
        return line;
    std::this_thread::sleep_for(20ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return std::nullopt;
}

size_t service_process::count_lines(const std::string& text) const {
  size_t n = 0;
  for (auto& line : lines())
    n += line.find(text) != std::string::npos;
  return n;
}

bool service_process::running() {
  return wait_exit(0ms) == -1;
}

int service_process::wait_exit(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (status_ == -1) {
    int raw = 0;
    auto r = waitpid(pid_, &raw, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(raw) ? WEXITSTATUS(raw) : 128 + WTERMSIG(raw);
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return -1;
    std::this_thread::sleep_for(10ms);
  }
  return status_;
}

int service_process::stop(int signal, std::chrono::milliseconds timeout) {
  if (status_ == -1)
    kill(pid_, signal);
  return wait_exit(timeout);
}

void service_process::signal(int signal) {
  if (status_ == -1)
    kill(pid_, signal);
}

broker_process::broker_process(int partitions, std::map<std::string, std::string> env)
  : process_{std::move(env), false, {"broker", "--partitions", std::to_string(partitions)}} {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  while (process_.lines().empty() && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(10ms);
  auto lines = process_.lines();
  if (lines.empty() || lines.front().find(':') == std::string::npos)
    throw std::runtime_error{"broker did not print its address"};
  address_ = lines.front();
}

std::string external_broker::read_topic() const {
  return run_command("kcat -b " + broker.address() + " -C -t " + topic
                     + " -o beginning -e -q -f '%k\\t%s\\n'")
    .output;
}

bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout,
                std::chrono::milliseconds poll) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline)
      return false;
    std::this_thread::sleep_for(poll);
  }
  return true;
}

command_result run_command(const std::string& command) {
  command_result result{-1, {}};
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (!pipe)
    return result;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0)
    result.output.append(buf.data(), n);
  int raw = pclose(pipe);
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return result;
}

std::string numbered_uuid(const std::string& prefix, long long n) {
  auto digits = std::to_string(n);
  return prefix + "-0000-4000-8000-" + std::string(12 - digits.size(), '0') + digits;
}

std::string event_text(const std::string& id, const std::string& user, const std::string& type) {
  return nlohmann::json{{"eventId", id},
                        {"userId", user},
                        {"eventType", type},
                        {"timestamp", "2026-11-24T01:52:00.047Z"},
                        {"payload", nlohmann::json::object()}}
    .dump();
}

bool produce_events(const std::string& broker, const std::string& id_prefix, int first, int count) {
  char file[] = "/tmp/uas-events-XXXXXX";
  close(mkstemp(file));
  {
    std::ofstream out{file};
    for (int i = first; i < first + count; ++i) {
      auto user = "user-" + std::to_string(i % 50);
      out << user << '\t'
          << event_text(numbered_uuid(id_prefix, i), user, i % 3 ? "LOGIN" : "PRODUCT_VIEW") << '\n';
    }
  }
  auto r = run_command("kcat -P -b " + broker + " -t " + external_broker::topic + " -K '\t' -l "
                       + file);
  unlink(file);
  return r.status == 0;
}

} // namespace uas::testing
