// A fixed pool of worker threads for data-parallel kernels. The calling thread takes part as
// worker 0, so a pool of N threads starts N-1 workers. Workers spin briefly before sleeping,
// because a decode step issues hundreds of short parallel regions back to back.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace autoglm {

class ThreadPool {
 public:
  // n_threads <= 0 means one per hardware thread.
  explicit ThreadPool(int n_threads = 0);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Runs fn(thread_index, n_threads) once on every thread of the pool and waits for all.
  // Calls from different threads are serialised; fn must not call run() on the same pool.
  void run(const std::function<void(int, int)>& fn);

  // Splits [0, n) into chunks of at least `grain` items (chunk boundaries are multiples of
  // `grain`) and runs fn(begin, end) on each: one contiguous chunk per thread, or, when there are
  // grains for 4 chunks per thread, chunks claimed by whichever thread is free, each a share of
  // what is left (so they shrink towards the end, down to one grain).
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

  // parallel_for for chunks that can start warm: fn(begin, end, next) also learns where the same
  // thread's next chunk begins (n when none follows), because each thread claims its next chunk
  // before it runs the current one. A several-token matmul then prefetches that chunk's first
  // weights while it finishes this one, instead of starting it cold (kernels::matmul).
  void parallel_for_ahead(int64_t n, const std::function<void(int64_t, int64_t, int64_t)>& fn,
                          int64_t grain = 1);

 private:
  void worker_loop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::mutex run_mutex_;  // one parallel region at a time, whoever calls
  std::condition_variable wake_;
};

}  // namespace autoglm
