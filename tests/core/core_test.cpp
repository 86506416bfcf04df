// core/: the thread pool covers every index exactly once, also with several callers at once, and
// tells each chunk where its thread goes next when asked, and each thread which chunk it starts
// with;
// user-facing errors of dtypes, files and the ISA override say what is wrong; large buffers are
// aligned for huge pages and advised for them.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/cpu_features.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/large_buffer.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "support/fixtures.h"

namespace autoglm {
namespace {

TEST(ThreadPool, ParallelForCoversEveryIndexOnce) {
  ThreadPool pool(3);
  for (int64_t n : {0, 1, 2, 7, 64, 1000}) {
    for (int64_t grain : {1, 3, 16, 5000}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      pool.parallel_for(
          n,
          [&](int64_t a, int64_t b) {
            EXPECT_LT(a, b);
            EXPECT_TRUE(a % grain == 0) << "chunk starts must be multiples of the grain";
            for (int64_t i = a; i < b; ++i) hits[static_cast<size_t>(i)]++;
          },
          grain);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << n << "/" << grain;
    }
  }
}

TEST(ThreadPool, DynamicChunksShrinkTowardsTheEnd) {
  ThreadPool pool(3);
  std::mutex m;
  std::map<int64_t, int64_t> chunks;  // start -> size
  pool.parallel_for(1000, [&](int64_t a, int64_t b) {
    std::lock_guard<std::mutex> lock(m);
    chunks[a] = b - a;
  });
  ASSERT_GT(chunks.size(), 12u) << "1000 items on 3 threads should be split dynamically";
  int64_t previous = chunks.begin()->second;
  EXPECT_LE(previous, 1000 / 6) << "the first claim takes a sixth of the work at most";
  for (const auto& [start, size] : chunks) {
    EXPECT_LE(size, previous) << "chunk at " << start;
    previous = size;
  }
  EXPECT_EQ(chunks.rbegin()->second, 1) << "the last claims take one grain";
}

// parallel_for_ahead: every index once, and each chunk names where its thread's next chunk begins
// (n after its last), both when the chunks are claimed and when each thread takes one.
TEST(ThreadPool, ParallelForAheadNamesEachThreadsNextChunk) {
  ThreadPool pool(3);
  for (int64_t n : {0, 1, 7, 64, 1000}) {
    for (int64_t grain : {1, 3, 16}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::mutex m;
      std::map<std::thread::id, std::vector<std::array<int64_t, 3>>> by_thread;
      pool.parallel_for_ahead(
          n,
          [&](int64_t a, int64_t b, int64_t next) {
            EXPECT_LT(a, b);
            EXPECT_TRUE(a % grain == 0) << "chunk starts must be multiples of the grain";
            for (int64_t i = a; i < b; ++i) hits[static_cast<size_t>(i)]++;
            std::lock_guard<std::mutex> lock(m);
            by_thread[std::this_thread::get_id()].push_back({a, b, next});
          },
          grain);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << n << "/" << grain;
      for (const auto& [id, chunks] : by_thread) {
        for (size_t c = 0; c + 1 < chunks.size(); ++c)
          EXPECT_EQ(chunks[c][2], chunks[c + 1][0]) << n << "/" << grain << ", chunk " << c;
        EXPECT_EQ(chunks.back()[2], n) << "a thread's last chunk has none after it";
      }
      if (n == 1000 && grain == 1) {
        size_t total = 0;
        for (const auto& entry : by_thread) total += entry.second.size();
        EXPECT_GT(total, 12u) << "1000 items on 3 threads should be claimed in shrinking chunks";
      }
    }
  }
}

// first_chunk names the chunk parallel_for keeps for each thread (claimed or split), so that a
// caller can warm it (WarmPlan): every named chunk runs as one call, and they do not overlap.
TEST(ThreadPool, FirstChunksAreRunAsNamed) {
  ThreadPool pool(3);
  for (int64_t n : {1, 7, 64, 1000}) {
    for (int64_t grain : {1, 3, 16}) {
      std::mutex m;
      std::set<std::pair<int64_t, int64_t>> chunks;
      pool.parallel_for(
          n,
          [&](int64_t a, int64_t b) {
            std::lock_guard<std::mutex> lock(m);
            chunks.insert({a, b});
          },
          grain);
      int64_t end_of_previous = 0;
      for (int i = 0; i < pool.size(); ++i) {
        const auto chunk = pool.first_chunk(n, grain, i);
        if (chunk.first == chunk.second) continue;  // this thread runs none
        EXPECT_TRUE(chunks.count(chunk)) << n << "/" << grain << ": thread " << i << "'s ["
                                         << chunk.first << ", " << chunk.second << ") not run";
        EXPECT_GE(chunk.first, end_of_previous) << n << "/" << grain << ", thread " << i;
        end_of_previous = chunk.second;
      }
    }
  }
  EXPECT_EQ(pool.first_chunk(1000, 1, 3), (std::pair<int64_t, int64_t>{0, 0})) << "no thread 3";
}

// A warm plan only fetches: with plans on every thread, parallel_for still covers every index
// once, and in a region without plans after one with them too.
TEST(ThreadPool, WarmPlansLeaveTheWorkAlone) {
  ThreadPool pool(2);
  std::vector<uint8_t> weights(64 * 1024, 1);
  WarmPlan plan;
  plan.n_streams = 2;
  plan.bytes = 16 * 1024;
  plan.start[0] = reinterpret_cast<uintptr_t>(weights.data());
  plan.start[1] = reinterpret_cast<uintptr_t>(weights.data() + 32 * 1024);
  const std::vector<WarmPlan> plans(2, plan);
  for (int region = 0; region < 3; ++region) {
    std::vector<std::atomic<int>> hits(1000);
    pool.parallel_for(
        1000,
        [&](int64_t a, int64_t b) {
          for (int64_t i = a; i < b; ++i) hits[static_cast<size_t>(i)]++;
        },
        1, region == 1 ? std::span<const WarmPlan>{} : plans);
    for (auto& h : hits) ASSERT_EQ(h.load(), 1) << "region " << region;
  }
}

TEST(ThreadPool, RunGivesEveryThreadItsIndex) {
  ThreadPool pool(4);
  std::vector<std::atomic<int>> seen(4);
  pool.run([&](int index, int n) {
    EXPECT_EQ(n, 4);
    seen[static_cast<size_t>(index)]++;
  });
  for (auto& s : seen) EXPECT_EQ(s.load(), 1);
}

TEST(ThreadPool, CallersFromSeveralThreadsAreSerialised) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&] {
      for (int rep = 0; rep < 200; ++rep) {
        pool.parallel_for(100, [&](int64_t a, int64_t b) { total += b - a; });
      }
    });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 4 * 200 * 100);
}

TEST(DType, NamesAndErrors) {
  EXPECT_EQ(parse_dtype("Q4_0"), DType::Q4_0);
  EXPECT_EQ(parse_dtype("bf16"), DType::BF16);
  try {
    parse_dtype("q5_k");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("use one of f32, f16, bf16, q8_0, q4_0"),
              std::string::npos);
  }
  EXPECT_EQ(row_bytes(DType::Q4_0, 64), 36u);
  EXPECT_EQ(row_bytes(DType::Q6_K, 256), 210u);
  EXPECT_THROW(row_bytes(DType::Q8_0, 33), Error);
}

TEST(MappedFile, MissingFileSaysWhatToDo) {
  try {
    MappedFile::open("/nonexistent/weights.gguf");
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("/nonexistent/weights.gguf"), std::string::npos);
    EXPECT_NE(m.find("No such file"), std::string::npos);
  }
  EXPECT_THROW(MappedFile::open(testing::temp_dir("dir")), Error);  // a directory
}

TEST(CpuFeatures, ForcedIsaIsHonouredOrRefused) {
  const char* old = std::getenv("AUTOGLM_ISA");
  const std::string saved = old ? old : "";
  setenv("AUTOGLM_ISA", "scalar", 1);
  EXPECT_EQ(selected_isa(), Isa::Scalar);
  setenv("AUTOGLM_ISA", "sse9", 1);
  EXPECT_THROW(selected_isa(), Error);
  if (old)
    setenv("AUTOGLM_ISA", saved.c_str(), 1);
  else
    unsetenv("AUTOGLM_ISA");
  EXPECT_TRUE(cpu_features().supports(Isa::Scalar));
}

// The field `key` ("THPeligible") of the /proc/self/smaps entry whose range holds p; "" if none.
std::string smaps_field(const void* p, const std::string& key) {
  std::ifstream smaps("/proc/self/smaps");
  const auto addr = reinterpret_cast<uintptr_t>(p);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream range(line);
    if (range >> std::hex >> lo >> dash >> hi && dash == '-' && line.find(':') > line.find(' ')) {
      inside = lo <= addr && addr < hi;  // a new entry's header line: "lo-hi perms offset ..."
    } else if (inside && line.rfind(key + ":", 0) == 0) {
      std::string value = line.substr(key.size() + 1);
      value.erase(0, value.find_first_not_of(' '));
      return value;
    }
  }
  return "";
}

bool transparent_huge_pages_off() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string modes;
  std::getline(f, modes);
  return modes.empty() || modes.find("[never]") != std::string::npos;
}

TEST(LargeBuffer, AlignedZeroedWritableAndAdvisedForHugePages) {
  for (size_t bytes : {size_t{0}, size_t{1}, size_t{4096}, size_t{5} << 20}) {
    LargeBuffer b = allocate_large(bytes);
    ASSERT_NE(b.get(), nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.get()) % (size_t{2} << 20), 0u) << bytes;
    EXPECT_GE(b.get_deleter().bytes, bytes);
    for (size_t i = 0; i < bytes; i += 4096) {
      EXPECT_EQ(b[i], std::byte{0});
      b[i] = std::byte{7};
    }
  }
  if (transparent_huge_pages_off()) {
    GTEST_SKIP() << "transparent huge pages are off on this machine (or unknown): the advice "
                    "cannot be seen";
  }
  LargeBuffer big = allocate_large(size_t{6} << 20);
  EXPECT_EQ(smaps_field(big.get(), "THPeligible"), "1")
      << "6 MiB from allocate_large should be eligible for transparent huge pages";
}

TEST(LargeBuffer, ResidentMemoryCountsTouchedPages) {
  const ResidentMemory before = resident_memory();
  if (before.resident_bytes == 0) GTEST_SKIP() << "/proc/self/smaps_rollup cannot be read here";
  LargeBuffer b = allocate_large(size_t{32} << 20);
  for (size_t i = 0; i < (size_t{32} << 20); i += 4096) b[i] = std::byte{1};
  const ResidentMemory after = resident_memory();
  EXPECT_GE(after.resident_bytes, before.resident_bytes + (size_t{30} << 20));
  EXPECT_LE(after.huge_page_bytes, after.resident_bytes);
}

}  // namespace
}  // namespace autoglm
