// A small fixed-size thread pool with a blocking parallel_for.
//
// The calling thread takes part in the work, so `threads == 1` runs inline
// without any synchronisation. Work is split into contiguous chunks; each
// worker takes chunks from a shared atomic counter, which balances uneven
// tiles without a queue. Between jobs, workers and the caller spin briefly
// before sleeping: consecutive ops of one inference are microseconds apart,
// and a condition-variable wake-up per op costs more than many small ops.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sde {

class ThreadPool {
 public:
  explicit ThreadPool(size_t threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  size_t threads() const { return workers_.size() + 1; }

  // Calls fn(begin, end) over [0, n) in chunks of at most `grain` items.
  // Returns when every chunk is done. Not reentrant.
  void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

 private:
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(size_t, size_t)>* job_ = nullptr;
  size_t job_n_ = 0, job_grain_ = 1;
  std::atomic<size_t> next_{0};
  std::atomic<size_t> generation_{0};
  std::atomic<size_t> active_{0};
  std::atomic<bool> stop_{false};
};

// parallel_for that also accepts a null pool (runs inline).
inline void parallel_for(ThreadPool* pool, size_t n, size_t grain,
                         const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  if (pool == nullptr || pool->threads() == 1 || n <= grain) {
    fn(0, n);
    return;
  }
  pool->parallel_for(n, grain, fn);
}

}  // namespace sde
