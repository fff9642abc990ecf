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

shared_text shared_text::of(std::string text) {
  auto holder = std::make_shared<const std::string>(std::move(text));
  shared_text owned;
  // The pointer shares the string's ownership, and points at its characters.
  owned.append(*holder, std::shared_ptr<const char[]>{holder, holder->data()});
  return owned;
}

void shared_text::append(const shared_text& more) {
  pieces_.insert(pieces_.end(), more.pieces_.begin(), more.pieces_.end());
  owners_.insert(owners_.end(), more.owners_.begin(), more.owners_.end());
  size_ += more.size_;
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

shared_text text_arena::contents_from(const char* at) const {
  shared_text tail;
  bool found = false;
  for (auto& b : blocks_) {
    const char* begin = b.data.get();
    if (!found && at >= begin && at < begin + b.used) {
      found = true;
      begin = at;
    }
    if (found)
      tail.append({begin, static_cast<size_t>(b.data.get() + b.used - begin)}, b.data);
  }
  return tail;
}

void text_arena::release_before(const char* at) {
  size_t unread = 0;
  while (unread < blocks_.size()) {
    auto& b = blocks_[unread];
    if (at >= b.data.get() && at < b.data.get() + b.size)
      break;
    ++unread;
  }
  if (unread < blocks_.size())
    blocks_.erase(blocks_.begin(), blocks_.begin() + static_cast<std::ptrdiff_t>(unread));
}

void text_arena::clear() {
  blocks_.clear();
}

} // namespace uas
