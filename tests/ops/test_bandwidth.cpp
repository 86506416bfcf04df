// The read probe's slices (ReadProbe::measure_slice): each call reads the two slices after the last
// it read, round the buffer, so a slice is never read again before the rest of the buffer is.
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ops/bandwidth.h"

namespace autoglm::ops {
namespace {

constexpr size_t kMiB = size_t{1} << 20;

TEST(ReadProbe, SlicesWalkTheBufferTwoAtATimeAndWrapWhereTheNextWouldNotFit) {
  ThreadPool pool(2);
  ReadProbe probe(pool, 5 * kMiB);
  EXPECT_EQ(probe.next_slice_offset(), 0u);
  const BandwidthResult first = probe.measure_slice(pool, kMiB);  // warm-up [0, 1), timed [1, 2)
  EXPECT_EQ(first.bytes, kMiB);
  EXPECT_GT(first.median_gbps, 0);
  EXPECT_EQ(first.best_gbps, first.median_gbps);
  EXPECT_EQ(probe.next_slice_offset(), 2 * kMiB);
  probe.measure_slice(pool, kMiB);  // [2, 3), [3, 4)
  EXPECT_EQ(probe.next_slice_offset(), 4 * kMiB);
  probe.measure_slice(pool, kMiB);  // [4, 5), then round to [0, 1)
  EXPECT_EQ(probe.next_slice_offset(), kMiB);
  probe.measure_slice(pool, 2 * kMiB);  // [1, 3), [3, 5)
  EXPECT_EQ(probe.next_slice_offset(), 5 * kMiB);
  probe.measure_slice(pool, 2 * kMiB);  // round: [0, 2), [2, 4)
  EXPECT_EQ(probe.next_slice_offset(), 4 * kMiB);
}

TEST(ReadProbe, ASliceOverHalfTheBufferIsRefused) {
  ThreadPool pool(1);
  ReadProbe probe(pool, 4 * kMiB);
  try {
    probe.measure_slice(pool, 3 * kMiB);
    FAIL() << "a 3 MiB slice of a 4 MiB probe was read";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("at least twice"), std::string::npos) << e.what();
  }
  EXPECT_THROW(probe.measure_slice(pool, 0), Error);
  EXPECT_EQ(probe.next_slice_offset(), 0u);
  EXPECT_EQ(probe.measure_slice(pool, 2 * kMiB).bytes, 2 * kMiB);
}

}  // namespace
}  // namespace autoglm::ops
