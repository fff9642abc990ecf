// Append-only storage for text, and runs of text shared out of it without a copy.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace uas {

// Maps the whole pages of [at, at + size) in one system call, before they are written. Written
// first, each page traps on its own, which virtual machines make dear: about 12 us a page on the
// one docs/performance.md measures (run 8), against about 3 this way. Kernels before 5.14
// refuse the call; their pages then fault in as they are written.
void prefault(char* at, size_t size);

// Text read in place from memory it keeps alive: pieces in order, each with what owns it.
// Handed between threads, it is only read.
class shared_text {
public:
  shared_text() = default;
  explicit shared_text(std::string_view literal) { append(literal); }

  // `text` itself, owned by the result from now on.
  static shared_text of(std::string text);

  // Adds `piece` at the end; `owner` keeps its memory alive (none for a literal).
  void append(std::string_view piece, std::shared_ptr<const char[]> owner = nullptr);
  // Adds every piece of `more` at the end, sharing what they are read from.
  void append(const shared_text& more);

  size_t size() const { return size_; }

  // Hands the bytes [offset, offset + length) to `write`, piece by piece, in order; false as soon
  // as `write` returns false.
  bool write(size_t offset, size_t length,
             const std::function<bool(const char*, size_t)>& write) const;

  // All of it, copied into one string.
  std::string str() const;

private:
  std::vector<std::string_view> pieces_;
  std::vector<std::shared_ptr<const char[]>> owners_;
  size_t size_ = 0;
};

// Blocks that never move, so views into them stay valid, and no allocation (nor its
// bookkeeping) per piece. What is kept reads as one run of text, shared out by contents().
class text_arena {
public:
  // A lasting copy of `text`, placed right after a copy of `separator`; the view is of `text`.
  std::string_view keep(std::string_view text, std::string_view separator = {});

  // Everything kept so far, in order, separators included: the blocks are shared, not copied,
  // and outlive clear() for as long as the result does.
  shared_text contents() const;
  // The same from `at`, a place inside a kept text, on.
  shared_text contents_from(const char* at) const;

  // Frees the blocks that end before `at`: nothing before it is read again.
  void release_before(const char* at);

  void clear();

private:
  static constexpr size_t block_size = 256 * 1024;
  struct block {
    std::shared_ptr<char[]> data;
    size_t size;
    size_t used;
  };
  std::vector<block> blocks_;
};

} // namespace uas
