// The PostgreSQL schema as versioned migrations: each runs once per database, in order, and is
// never changed once released. A later version adds to what the earlier ones made.
#pragma once

#include <vector>

namespace uas::postgres {

struct migration {
  int version;
  const char* description;
  const char* sql; // statements, run in one transaction with the version's record
};

const std::vector<migration>& migrations();

// The key of the advisory lock under which migrations run: instances starting at once take
// turns, and each finds the schema as the one before it left it.
constexpr long long migration_lock = 0x75736572616374; // "useract"

} // namespace uas::postgres
