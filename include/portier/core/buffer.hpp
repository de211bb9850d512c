#pragma once
// A byte buffer with a read and a write end. Its memory is a block taken from a per-thread free
// list on first use and given back when the buffer is empty, so a connection holds a block only
// while bytes are in flight: idle keep-alive connections and idle tunnels hold none, and a busy
// thread reuses warm blocks instead of calling malloc per request.
#include <cstddef>
#include <cstring>
#include <string_view>
#include <utility>

namespace portier {

namespace buffer_pool {
inline constexpr std::size_t kBlockSize = 64 * 1024;
char* acquire();
void release(char* block) noexcept;
}  // namespace buffer_pool

class Buffer {
 public:
  Buffer() = default;
  ~Buffer() { free_block(); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  static constexpr std::size_t capacity() noexcept { return buffer_pool::kBlockSize; }

  std::string_view readable() const noexcept { return {data_ + begin_, end_ - begin_}; }
  std::size_t size() const noexcept { return end_ - begin_; }
  bool empty() const noexcept { return begin_ == end_; }
  void consume(std::size_t n) noexcept {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Space to read into (compacts or takes a block as needed). Empty only when the buffer is full.
  std::pair<char*, std::size_t> writable() {
    if (data_ == nullptr) data_ = buffer_pool::acquire();
    if (end_ == capacity() && begin_ > 0) {
      std::memmove(data_, data_ + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    return {data_ + end_, capacity() - end_};
  }
  void commit(std::size_t n) noexcept { end_ += n; }
  // Gives the block back when nothing is buffered.
  void release_if_empty() noexcept {
    if (empty()) free_block();
  }

 private:
  void free_block() noexcept {
    if (data_ != nullptr) buffer_pool::release(data_);
    data_ = nullptr;
  }

  char* data_ = nullptr;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

}  // namespace portier
