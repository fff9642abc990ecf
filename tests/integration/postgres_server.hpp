// A real PostgreSQL server that a test starts itself: initdb into a fresh folder, pg_ctl start on
// a free port, all as the `postgres` user when the tests run as root (the server refuses to run
// as root); stopped and removed at the end.
#pragma once

#include <string>

namespace uas::testing {

// A TCP port on 127.0.0.1 that nothing listens on (as of now).
int free_port();

// How the server takes TCP clients (the tests' own psql uses its Unix socket, always trusted).
struct postgres_options {
  // Only over TLS, with a certificate for 127.0.0.1 signed by an authority of the test's own
  // (postgres_server::ca_file()).
  bool tls = false;
  // With this password (scram-sha-256); none: every client is trusted.
  std::string password;
};

class postgres_server {
public:
  // Initializes and starts the server; throws with the server's own words if it cannot.
  explicit postgres_server(postgres_options options = {});
  ~postgres_server();

  // A libpq URL for the server's `postgres` database as `postgres`, password and all.
  std::string url() const;
  int port() const { return port_; }
  // The PEM certificate of the authority that signed the server's (with tls).
  std::string ca_file() const { return dir_ + "/ca.crt"; }

  // Stops the server as a crash would (pg_ctl stop -m immediate): no checkpoint, no goodbye to
  // clients; the next start recovers from the write-ahead log.
  void crash();
  void start();

  // Runs SQL through psql; its output, unaligned and without headers (one row a line).
  std::string query(const std::string& sql) const;
  // The single number a query answers (as count(*) does).
  long long number(const std::string& sql) const;

private:
  // A PostgreSQL program run as the server's owner.
  std::string as_owner(const std::string& program) const;

  // Makes the authority, and the server's key and certificate signed by it.
  void make_certificates() const;

  postgres_options options_;
  std::string dir_;
  int port_ = 0;
};

} // namespace uas::testing
