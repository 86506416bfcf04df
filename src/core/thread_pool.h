// A fixed pool of worker threads for data-parallel kernels. The calling thread takes part as
// worker 0, so a pool of N threads starts N-1 workers. Workers spin briefly before sleeping,
// because a decode step issues hundreds of short parallel regions back to back.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <span>
#include <thread>
#include <utility>
#include <vector>

namespace autoglm {

// What a thread of a pool reads first in the region after this one: up to kMaxStreams streams of
// `bytes` each. run() fetches them into that thread's cache while it would otherwise wait: the
// calling thread while the workers finish, a worker until the next region starts.
struct WarmPlan {
  static constexpr int kMaxStreams = 4;
  uintptr_t start[kMaxStreams] = {};
  int n_streams = 0;
  int64_t bytes = 0;  // per stream
};

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
  // warm[i], where given, is what thread i fetches once its share is done.
  void run(const std::function<void(int, int)>& fn, std::span<const WarmPlan> warm = {});

  // Splits [0, n) into chunks of at least `grain` items (chunk boundaries are multiples of
  // `grain`) and runs fn(begin, end) on each: one contiguous chunk per thread, or, when there are
  // grains for 4 chunks per thread, chunks claimed by whichever thread is free, each a share of
  // what is left (so they shrink towards the end, down to one grain).
  // warm: as for run(), when the region runs on several threads.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1,
                    std::span<const WarmPlan> warm = {});

  // parallel_for for chunks that can start warm: fn(begin, end, next) also learns where the same
  // thread's next chunk begins (n when none follows), because each thread claims its next chunk
  // before it runs the current one. A several-token matmul then prefetches that chunk's first
  // weights while it finishes this one, instead of starting it cold (kernels::matmul).
  void parallel_for_ahead(int64_t n, const std::function<void(int64_t, int64_t, int64_t)>& fn,
                          int64_t grain = 1);

  // The first chunk [begin, end) thread `index` runs in parallel_for(n, fn, grain): empty when it
  // runs none. Fixed by the arguments alone, so that a caller can warm it ahead (WarmPlan).
  std::pair<int64_t, int64_t> first_chunk(int64_t n, int64_t grain, int index) const;

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
  std::vector<WarmPlan> warm_;  // per thread, for the region running
};

}  // namespace autoglm
