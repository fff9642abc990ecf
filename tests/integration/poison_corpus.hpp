// Messages no consumer of the service can store, each kind once, and a way to put any messages on
// the topic byte for byte with real clients (kcat; python3-kafka for the null value kcat cannot
// send). The consumer's tests drive them through the skip path and the dead-letter topic.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace uas::testing {

struct topic_message {
  std::string kind;                 // what a reader of a failure sees
  std::optional<std::string> value; // nothing: a null value
  std::string reason;               // its dlq.reason; empty for an event the service stores
  std::vector<std::pair<std::string, std::string>> headers;
};

// Every kind of message the consumer cannot store, with the reason it gives for each.
std::vector<topic_message> poison_corpus();

// A valid event as the service writes it.
topic_message valid_event(const std::string& id);

// Produces the messages in order to partition 0 of `topic`, each keyed `key` (a null value's key
// too); false if a client failed.
bool produce_in_order(const std::string& broker, const std::vector<topic_message>& messages,
                      const std::string& key, const std::string& topic = "user-activity-events");

} // namespace uas::testing
