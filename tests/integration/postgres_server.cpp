#include "postgres_server.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include <netinet/in.h>
#include <pwd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "service_process.hpp"

namespace uas::testing {

namespace {

const std::string bin = "/usr/lib/postgresql/15/bin/";

void must(const command_result& r, const std::string& what) {
  if (r.status != 0)
    throw std::runtime_error{what + " failed:\n" + r.output};
}

} // namespace

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0
      || getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error{"no free port"};
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string postgres_server::as_owner(const std::string& program) const {
  // As root, the server's files and processes belong to `postgres`, as PostgreSQL insists.
  return (geteuid() == 0 ? "runuser -u postgres -- " : "") + bin + program;
}

postgres_server::postgres_server(postgres_options options) : options_{std::move(options)} {
  char tmpl[] = "/tmp/uas-postgres-XXXXXX";
  if (!mkdtemp(tmpl))
    throw std::runtime_error{"mkdtemp failed"};
  dir_ = tmpl;
  if (geteuid() == 0) {
    auto* owner = getpwnam("postgres");
    if (!owner || chown(dir_.c_str(), owner->pw_uid, owner->pw_gid) != 0)
      throw std::runtime_error{"cannot give " + dir_ + " to the postgres user"};
  }
  port_ = free_port();
  // No fsync: the tests crash the server, never the machine, and the page cache survives that.
  must(run_command(as_owner("initdb") + " -D " + dir_ + "/data -U postgres --auth=trust"
                   " -E UTF8 --no-sync --no-instructions"),
       "initdb");
  if (options_.tls)
    make_certificates();
  std::ofstream{dir_ + "/data/pg_hba.conf"}
    << "local all all trust\n"
    << (options_.tls ? "hostssl" : "host") << " all all 127.0.0.1/32 "
    << (options_.password.empty() ? "trust" : "scram-sha-256") << "\n";
  start();
  if (!options_.password.empty())
    query("ALTER ROLE postgres PASSWORD '" + options_.password + "'");
}

void postgres_server::make_certificates() const {
  const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  std::ofstream{dir_ + "/server.ext"} << "subjectAltName=IP:127.0.0.1\n";
  must(run_command("cd " + dir_ + " && openssl req -x509" + ec + " -days 1 -subj /CN=uas-test-ca"
                   " -keyout ca.key -out ca.crt 2>&1"
                   " && openssl req" + ec + " -subj /CN=127.0.0.1 -keyout server.key -out server.csr 2>&1"
                   " && openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial"
                   " -days 1 -extfile server.ext -out server.crt 2>&1"
                   " && chmod 600 server.key"
                   + std::string{geteuid() == 0 ? " && chown postgres server.key server.crt" : ""}),
       "making the server's certificate");
}

void postgres_server::start() {
  must(run_command(as_owner("pg_ctl") + " -D " + dir_ + "/data -l " + dir_ + "/log -w -t 60"
                   " -o \"-p " + std::to_string(port_) + " -k " + dir_
                   + " -c listen_addresses=127.0.0.1 -c fsync=off"
                   + (options_.tls ? " -c ssl=on -c ssl_cert_file=" + dir_ + "/server.crt"
                                       + " -c ssl_key_file=" + dir_ + "/server.key"
                                   : "")
                   + "\" start"),
       "pg_ctl start");
}

void postgres_server::crash() {
  must(run_command(as_owner("pg_ctl") + " -D " + dir_ + "/data -m immediate -w stop"),
       "pg_ctl stop");
}

postgres_server::~postgres_server() {
  run_command(as_owner("pg_ctl") + " -D " + dir_ + "/data -m immediate -w stop");
  run_command("rm -rf " + dir_);
}

std::string postgres_server::url() const {
  auto password = options_.password.empty() ? "" : ":" + options_.password;
  return "postgresql://postgres" + password + "@127.0.0.1:" + std::to_string(port_) + "/postgres";
}

std::string postgres_server::query(const std::string& sql) const {
  auto r = run_command(bin + "psql -h " + dir_ + " -p " + std::to_string(port_)
                       + " -U postgres -d postgres -X -q -At -v ON_ERROR_STOP=1 -c \"" + sql + "\"");
  if (r.status != 0)
    throw std::runtime_error{"psql failed: " + r.output};
  return r.output;
}

long long postgres_server::number(const std::string& sql) const {
  return std::stoll(query(sql));
}

} // namespace uas::testing
