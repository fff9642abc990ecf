#include "core/store_backend.hpp"

#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace uas {

caf::error make_error(store_error code, std::string detail) {
  if (detail.empty())
    return {static_cast<uint8_t>(code), store_error_category};
  return {static_cast<uint8_t>(code), store_error_category, caf::make_message(std::move(detail))};
}

std::string to_string(store_error code) {
  switch (code) {
    case store_error::unavailable: return "unavailable";
    case store_error::not_found: return "not_found";
    case store_error::failed: return "failed";
  }
  return "unknown";
}

std::string detail_of(const caf::error& err) {
  auto& context = err.context();
  return context.match_elements<std::string>() ? context.get_as<std::string>(0) : std::string{};
}

std::string render_store_error(uint8_t code, caf::atom_value, const caf::message& context) {
  auto text = "store " + to_string(static_cast<store_error>(code));
  if (context.match_elements<std::string>())
    text += ": " + context.get_as<std::string>(0);
  return text;
}

} // namespace uas
