#include "portier/core/buffer.hpp"

#include <memory>
#include <vector>

namespace portier::buffer_pool {
namespace {

// Blocks kept per thread beyond those in use: enough for a burst, small enough not to hoard.
constexpr std::size_t kKeep = 64;

struct FreeList {
  std::vector<char*> blocks;
  ~FreeList() {
    for (char* b : blocks) delete[] b;
  }
};

FreeList& free_list() {
  thread_local FreeList list;
  return list;
}

}  // namespace

char* acquire() {
  auto& list = free_list().blocks;
  if (!list.empty()) {
    char* b = list.back();
    list.pop_back();
    return b;
  }
  return new char[kBlockSize];
}

void release(char* block) noexcept {
  auto& list = free_list().blocks;
  if (list.size() < kKeep) {
    try {
      list.push_back(block);
      return;
    } catch (...) {
    }
  }
  delete[] block;
}

}  // namespace portier::buffer_pool
