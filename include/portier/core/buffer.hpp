#pragma once
// A byte buffer with a read and a write end, allocated on first use and releasable when empty, so
// an idle connection can give its memory back.
#include <cstddef>
#include <cstring>
#include <memory>
#include <string_view>

namespace portier {

class Buffer {
 public:
  explicit Buffer(std::size_t capacity = 16 * 1024) : capacity_(capacity) {}

  std::string_view readable() const noexcept { return {data_.get() + begin_, end_ - begin_}; }
  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return begin_ == end_; }
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Space to read into (compacts or allocates as needed). Empty only when the buffer is full.
  std::pair<char*, std::size_t> writable() {
    if (!data_) data_.reset(new char[capacity_]);
    if (end_ == capacity_ && begin_ > 0) {
      std::memmove(data_.get(), data_.get() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    return {data_.get() + end_, capacity_ - end_};
  }
  void commit(std::size_t n) noexcept { end_ += n; }
  // Frees the memory when nothing is buffered.
  void release_if_empty() noexcept {
    if (empty()) data_.reset();
  }

 private:
  std::unique_ptr<char[]> data_;
  std::size_t capacity_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace portier
