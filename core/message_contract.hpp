// What travels around an event on the topic (SPEC, Event): the headers every produced message
// carries, how the consumer reads a message's schema version, and what a dead letter carries.
// docs/schemas/user-activity-event.v1.json describes the value; docs/architecture.md, "The
// message contract", says where a version 2 would go.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

#include "core/event.hpp"
#include "core/kafka_clients.hpp"

namespace uas {

inline constexpr std::string_view schema_version_header = "schema-version";
// The one version this service writes and reads.
inline constexpr std::string_view schema_version = "1";
inline constexpr std::string_view traceparent_header = "traceparent";

// A value larger than any POST can make (a 1 MiB body, stamped) is not parsed, only dead-lettered.
inline constexpr size_t max_message_value_bytes = 1024 * 1024 + 64 * 1024;

// Makes `m` the message that carries `e` on the topic: its JSON keyed by userId, with its schema
// version and, when it has one, its trace context as headers. `m`'s strings keep their storage,
// so a producer that writes every message into one allocates nothing once they have grown.
void write_event_message(const event& e, kafka::outgoing_message& m);

// The last header named `name` (Kafka allows repeats; the newest counts), or nullptr.
const kafka::header* find_header(const kafka::headers& hs, std::string_view name);

// Why this consumer does not read a message of this schema version; empty when it does (version
// 1, or no header at all, as from the seed's producers and from kcat).
std::string unknown_schema(const kafka::headers& hs);

// The trace context a message came with (its traceparent header, if valid); empty otherwise.
std::string traceparent_of(const kafka::headers& hs);

// Why a message went to the dead-letter topic: the dlq.reason header and the metric's label.
enum class dead_letter_reason { malformed, invalid, unknown_schema, too_large, store_rejected };
inline constexpr std::array<dead_letter_reason, 5> dead_letter_reasons{
  dead_letter_reason::malformed, dead_letter_reason::invalid, dead_letter_reason::unknown_schema,
  dead_letter_reason::too_large, dead_letter_reason::store_rejected};

// One word: malformed, invalid, unknown-schema, too-large, store-rejected.
std::string_view name_of(dead_letter_reason reason);

// The dead letter of `r`: its key, value and headers exactly as read, followed by dlq.reason,
// dlq.error, dlq.original.topic, dlq.original.partition, dlq.original.offset and
// dlq.consumer.group.
kafka::outgoing_message dead_letter(const kafka::record& r, dead_letter_reason reason,
                                    std::string_view error, std::string_view consumer_group);

} // namespace uas
