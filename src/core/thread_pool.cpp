#include "core/thread_pool.h"

#include <algorithm>

namespace autoglm {
namespace {

// About 50-100 microseconds of spinning before a worker sleeps: long enough to bridge the gap
// between two matmuls of a decode step, short enough not to burn a core while idle.
constexpr int kSpinIterations = 20000;

// parallel_for splits work dynamically when it has grains for this many chunks per thread.
constexpr int64_t kChunksPerThread = 4;
// A dynamic claim takes 1/(kGuidedShare · threads) of the grains left.
constexpr int64_t kGuidedShare = 2;

inline void cpu_relax() {
  __builtin_ia32_pause();
}

// Whether parallel_for hands out n_grains in claimed chunks, rather than one chunk per thread.
bool claims_chunks(int64_t n_grains, int n_threads) {
  return n_threads > 1 && n_grains >= kChunksPerThread * n_threads;
}

// Claims the grains [g0, g1) from `next`: a share of the n_grains - next left (guided), at least
// one. False when none is left.
bool claim_guided(std::atomic<int64_t>& next, int64_t n_grains, int n_threads, int64_t& g0,
                  int64_t& g1) {
  int64_t first = next.load(std::memory_order_relaxed);
  int64_t take = 0;
  do {
    if (first >= n_grains) return false;
    take = std::max<int64_t>(1, (n_grains - first) / (kGuidedShare * n_threads));
  } while (!next.compare_exchange_weak(first, first + take, std::memory_order_relaxed));
  g0 = first;
  g1 = first + take;
  return true;
}

// Grains of the first chunk a claiming parallel_for keeps for each thread: as much as its first
// guided claim would take.
int64_t first_share(int64_t n_grains, int n_threads) {
  return std::max<int64_t>(1, n_grains / (kGuidedShare * n_threads));
}

// Threads whose first chunk is kept for them (bits of one word), while the others claim.
constexpr int kMaxKeptFirstChunks = 64;

// A WarmPlan's lines fetched into this thread's L2 a batch at a time, so that the thread can stop
// between batches once there is other work.
class Warmer {
 public:
  explicit Warmer(const WarmPlan& plan) : plan_(plan) {}

  // Fetches the next batch of every stream; false once the plan is done.
  bool step() {
    if (offset_ >= plan_.bytes) return false;
    const int64_t end = std::min(plan_.bytes, offset_ + kBatchBytes);
    for (int s = 0; s < plan_.n_streams; ++s) {
      for (int64_t off = offset_; off < end; off += kLineBytes)
        __builtin_prefetch(reinterpret_cast<const void*>(plan_.start[s] + off), 0, 2);
    }
    offset_ = end;
    return true;
  }

 private:
  static constexpr int64_t kLineBytes = 64;
  static constexpr int64_t kBatchBytes = 1024;  // per stream
  WarmPlan plan_;
  int64_t offset_ = 0;
};

}  // namespace

ThreadPool::ThreadPool(int n_threads) {
  if (n_threads <= 0)
    n_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  n_threads_ = n_threads;
  warm_.resize(static_cast<size_t>(n_threads));
  workers_.reserve(static_cast<size_t>(n_threads - 1));
  for (int i = 1; i < n_threads; ++i) workers_.emplace_back([this, i] { worker_loop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::run(const std::function<void(int, int)>& fn, std::span<const WarmPlan> warm) {
  if (n_threads_ == 1) {
    fn(0, 1);
    return;
  }
  std::lock_guard<std::mutex> serialise(run_mutex_);
  job_ = &fn;
  std::copy_n(warm.begin(), std::min(warm.size(), warm_.size()), warm_.begin());
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    generation_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  fn(0, n_threads_);
  // Spin while the workers are likely running, warming this thread's plan meanwhile; yield once it
  // takes long, so a worker that was descheduled on a busy machine gets the core back instead of
  // competing with this loop.
  Warmer warming(warm_[0]);
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (warming.step()) continue;
    if (spin < kSpinIterations) {
      cpu_relax();
    } else {
      std::this_thread::yield();
    }
  }
  job_ = nullptr;
  // Every worker has copied its plan before it counted itself done.
  std::fill(warm_.begin(), warm_.end(), WarmPlan{});
}

std::pair<int64_t, int64_t> ThreadPool::first_chunk(int64_t n, int64_t grain, int index) const {
  if (n <= 0 || index >= n_threads_) return {0, 0};
  grain = std::max<int64_t>(grain, 1);
  const int64_t n_grains = (n + grain - 1) / grain;
  const int64_t n_chunks = std::min<int64_t>(n_threads_, n_grains);
  if (n_chunks <= 1) {
    if (index == 0) return {0, n};
    return {0, 0};
  }
  if (!claims_chunks(n_grains, n_threads_)) {
    if (index >= n_chunks) return {0, 0};
    return {(n_grains * index / n_chunks) * grain,
            std::min(n, (n_grains * (index + 1) / n_chunks) * grain)};
  }
  if (index >= kMaxKeptFirstChunks) return {0, 0};  // it starts with a claim
  const int64_t share = first_share(n_grains, n_threads_);
  return {index * share * grain, std::min(n, (index + 1) * share * grain)};
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                              int64_t grain, std::span<const WarmPlan> warm) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t n_grains = (n + grain - 1) / grain;
  const int64_t n_chunks = std::min<int64_t>(n_threads_, n_grains);
  if (n_chunks <= 1) {
    fn(0, n);
    return;
  }
  if (!claims_chunks(n_grains, n_threads_)) {
    run(
        [&](int index, int) {
          const auto [begin, end] = first_chunk(n, grain, index);  // its only chunk
          if (begin < end) fn(begin, end);
        },
        warm);
    return;
  }
  // Enough work for several chunks per thread: threads claim chunks as they finish, so a thread
  // slowed by a neighbour on a shared host does not hold the others at the end of the region.
  // Each claim takes a share of what is left (guided scheduling), so the chunks shrink towards the
  // end and the last thread to finish keeps the others waiting for one small chunk, not for a
  // fixed eighth of the region: equal chunks left 2-thread decode ~10% of its time in the pool's
  // waits.
  // Each thread's first chunk is its own (first_chunk), so that the caller knows which weights a
  // thread reads first and can warm them (WarmPlan). A thread that runs out of claims takes the
  // first chunks whose threads have not started, so that a late thread still holds no one up.
  const int kept = std::min(n_threads_, kMaxKeptFirstChunks);
  const int64_t share = first_share(n_grains, n_threads_);
  std::atomic<int64_t> next{kept * share};
  std::atomic<uint64_t> started{0};
  const auto run_kept = [&](int index) {
    const uint64_t bit = uint64_t{1} << index;
    if ((started.fetch_or(bit, std::memory_order_relaxed) & bit) != 0) return;
    const auto [begin, end] = first_chunk(n, grain, index);
    fn(begin, end);
  };
  run(
      [&](int index, int) {
        if (index < kept) run_kept(index);
        int64_t g0 = 0, g1 = 0;
        while (claim_guided(next, n_grains, n_threads_, g0, g1))
          fn(g0 * grain, std::min(n, g1 * grain));
        for (int other = 0; other < kept; ++other) run_kept(other);
      },
      warm);
}

void ThreadPool::parallel_for_ahead(int64_t n,
                                    const std::function<void(int64_t, int64_t, int64_t)>& fn,
                                    int64_t grain) {
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  const int64_t n_grains = (n + grain - 1) / grain;
  if (!claims_chunks(n_grains, n_threads_)) {
    // One chunk per thread (parallel_for's static split): none follows on any thread.
    parallel_for(
        n, [&](int64_t begin, int64_t end) { fn(begin, end, n); }, grain);
    return;
  }
  std::atomic<int64_t> next{0};
  run([&](int, int) {
    int64_t g0 = 0, g1 = 0;
    if (!claim_guided(next, n_grains, n_threads_, g0, g1)) return;
    for (;;) {
      int64_t h0 = 0, h1 = 0;
      const bool more = claim_guided(next, n_grains, n_threads_, h0, h1);
      fn(g0 * grain, std::min(n, g1 * grain), more ? h0 * grain : n);
      if (!more) return;
      g0 = h0;
      g1 = h1;
    }
  });
}

void ThreadPool::worker_loop(int index) {
  uint64_t seen = 0;
  for (;;) {
    uint64_t gen = generation_.load(std::memory_order_acquire);
    for (int spin = 0; gen == seen && spin < kSpinIterations; ++spin) {
      cpu_relax();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (gen == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      gen = generation_.load(std::memory_order_acquire);
    }
    seen = gen;
    if (stop_.load()) return;
    (*job_)(index, n_threads_);
    Warmer warm(warm_[static_cast<size_t>(index)]);  // copied before run() may reset it
    pending_.fetch_sub(1, std::memory_order_acq_rel);
    while (generation_.load(std::memory_order_acquire) == seen && warm.step()) {
    }
  }
}

}  // namespace autoglm
