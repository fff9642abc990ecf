// Random bytes from the kernel's source, for identifiers that must not collide: eventIds, trace
// and span ids.
#pragma once

#include <cstddef>

namespace uas {

// Fills `out` with `n` random bytes (getrandom, fetched in blocks per thread).
void random_bytes(unsigned char* out, size_t n);

} // namespace uas
