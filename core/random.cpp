#include "core/random.hpp"

#include <array>
#include <cerrno>
#include <cstring>
#include <system_error>

#include <sys/random.h>

namespace uas {

void random_bytes(unsigned char* out, size_t n) {
  // Fetched 32 UUIDs' worth at a time: one getrandom call per POST cost more than the rest of
  // stamping it. No more: every thread of the process carries a pool, over a thousand of them
  // with HTTP_THREADS at its largest, in pages touched when the thread starts.
  thread_local std::array<unsigned char, 512> pool;
  thread_local size_t used = pool.size();
  while (n > 0) {
    if (used == pool.size()) {
      for (size_t filled = 0; filled < pool.size();) {
        auto got = getrandom(pool.data() + filled, pool.size() - filled, 0);
        if (got < 0 && errno != EINTR)
          throw std::system_error{errno, std::generic_category(), "getrandom"};
        filled += got > 0 ? static_cast<size_t>(got) : 0;
      }
      used = 0;
    }
    size_t take = std::min(n, pool.size() - used);
    std::memcpy(out, pool.data() + used, take);
    used += take;
    out += take;
    n -= take;
  }
}

} // namespace uas
