#include "core/text_arena.hpp"

#include <algorithm>
#include <cstring>

#include <sys/mman.h>
#include <unistd.h>

namespace uas {

void prefault(char* at, size_t size) {
  static const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  auto begin = (reinterpret_cast<uintptr_t>(at) + page - 1) & ~(page - 1);
  auto end = (reinterpret_cast<uintptr_t>(at) + size) & ~(page - 1);
  if (end > begin)
    madvise(reinterpret_cast<void*>(begin), end - begin, MADV_POPULATE_WRITE);
}

void shared_text::append(std::string_view piece, std::shared_ptr<const char[]> owner) {
  if (piece.empty())
    return;
  pieces_.push_back(piece);
  if (owner)
    owners_.push_back(std::move(owner));
  size_ += piece.size();
}

bool shared_text::write(size_t offset, size_t length,
                        const std::function<bool(const char*, size_t)>& write) const {
  for (auto piece : pieces_) {
    if (length == 0)
      break;
    if (offset >= piece.size()) {
      offset -= piece.size();
      continue;
    }
    auto part = piece.substr(offset, length);
    if (!write(part.data(), part.size()))
      return false;
    offset = 0;
    length -= part.size();
  }
  return true;
}

std::string shared_text::str() const {
  std::string out;
  out.reserve(size_);
  for (auto piece : pieces_)
    out += piece;
  return out;
}

std::string_view text_arena::keep(std::string_view text, std::string_view separator) {
  auto size = separator.size() + text.size();
  if (blocks_.empty() || blocks_.back().used + size > blocks_.back().size) {
    // A text longer than a block gets a block of its own size.
    auto capacity = std::max(block_size, size);
    std::shared_ptr<char[]> data{new char[capacity]}; // uninitialized: only written
    prefault(data.get(), capacity);
    blocks_.push_back({std::move(data), capacity, 0});
  }
  auto& last = blocks_.back();
  char* at = last.data.get() + last.used;
  // memcpy may not be handed an empty view's null pointer, even for no bytes.
  if (!separator.empty())
    std::memcpy(at, separator.data(), separator.size());
  if (!text.empty())
    std::memcpy(at + separator.size(), text.data(), text.size());
  last.used += size;
  return {at + separator.size(), text.size()};
}

shared_text text_arena::contents() const {
  shared_text all;
  for (auto& b : blocks_)
    all.append({b.data.get(), b.used}, b.data);
  return all;
}

void text_arena::clear() {
  blocks_.clear();
}

} // namespace uas
