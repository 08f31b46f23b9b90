#pragma once

#include <algorithm>
#include <atomic>

#include "core/threadpool.h"

namespace sde {

template <typename Fn>
void for_each_task(ThreadPool* pool, size_t n, const Fn& fn) {
  const size_t threads = pool ? pool->threads() : 1;
  const size_t slots = std::min(threads, n);
  if (slots <= 1) {
    for (size_t i = 0; i < n; ++i) fn(i, size_t{0});
    return;
  }
  std::atomic<size_t> next{0};
  pool->parallel_for(slots, 1, [&](size_t begin, size_t end) {
    for (size_t slot = begin; slot < end; ++slot) {
      for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n;) fn(i, slot);
    }
  });
}

}  // namespace sde
