// The store: owns the processed events and their deduplication by eventId, in the back end the
// configuration chose. Runs detached: a database's calls block, and must not hold up the actors
// on CAF's scheduler thread.
#pragma once

#include <chrono>
#include <memory>

#include "actors/messages.hpp"
#include "core/store_backend.hpp"

namespace uas {

struct store_state {
  std::shared_ptr<store_backend> backend;
  std::chrono::hours retention{0}; // events older than this are erased; 0: kept forever

  // Expiry erases at most this many events a message, and sends itself the next at once while
  // there are more: writes waiting in the mailbox go in between.
  static constexpr uint64_t expire_batch = 10'000;
  // Once no old event is left, expiry looks again after this.
  static constexpr std::chrono::minutes expire_interval{10};
  // A database back end is tried this often whatever the traffic: an idle service's readiness
  // turns 503 within this of losing its database, and 200 again within this of its return.
  static constexpr std::chrono::seconds probe_interval{5};

  static inline const char* name = "store";
};

store_actor_impl::behavior_type store(store_actor_impl::stateful_pointer<store_state> self,
                                      std::shared_ptr<store_backend> backend,
                                      std::chrono::hours retention);

} // namespace uas
