// What the 512-bit Rows8Pairs kernels of the AVX-512 table share (matmul_rows8_avx512.cpp for
// q4_0 / q8_0, matmul_float_avx512.cpp for f16 / bf16). A 512-bit vector holds a group's 8 rows in
// its 8 64-bit lanes, each at two columns (or steps), against x at those two broadcast to every
// 64-bit lane; a row's two lanes are added once, at the end.
// In an anonymous namespace: each ISA's translation unit keeps its own copy (kernels/detail.h).
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernels/avx512_intrinsics.h"
#include "kernels/detail.h"

namespace autoglm::kernels::detail {
namespace {

// y[0..7] = the sums of acc's lane pairs: y[r] = lane 2r + lane 2r + 1 (a row's two lanes).
inline void store_sum_of_pairs(float* y, __m512 acc) {
  const __m512 sums = _mm512_add_ps(acc, _mm512_permute_ps(acc, 0xb1));  // swapped pairs
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(y),
                      _mm512_cvtepi64_epi32(_mm512_castps_si512(sums)));  // the even lanes
}

// Which of a pass's steps a tile prefetches for the next pass: those whose index i has
// i % period == phase; none when off.
struct PrefetchShare {
  bool on = false;
  int64_t phase = 0, period = 1;
};

// A share's steps walked in order, one call per step, without a division per step (decode takes
// every step, and a division per line of its loop cost its float kernels time).
class PrefetchTurns {
 public:
  explicit PrefetchTurns(PrefetchShare s) : on_(s.on), wait_(s.phase), period_(s.period) {}
  // Whether the next step is this tile's to prefetch.
  bool next() {
    const bool mine = wait_ == 0;
    wait_ = mine ? period_ - 1 : wait_ - 1;
    return on_ && mine;
  }

 private:
  bool on_;
  int64_t wait_, period_;
};

// Tokens per several-token tile (the last tile of a call takes the 1-3 left).
constexpr int64_t kTileTokens = 4;

// The token loop of the several-token kernels: tiles of 4 tokens from the first, then one tile of
// the 1-3 left. Each tile takes every weight of its pass from L2 but one: the later tiles also
// prefetch the next pass's weights, so that the reads from memory overlap the pass instead of
// stalling its first tile. With `spread`, tiles 1..n-1 each prefetch their share of the steps,
// so that the reads spread over the whole pass; else tile 1 (or the only one) prefetches all, a
// burst that one tile's time did not cover for the larger passes: the model, 2 threads,
// alternated, 16-sequence steps with and without (tokens/s): bf16 97.1 -> 103.6, 93.0 -> 98.7;
// f16 95.6 -> 97.0, 90.7 -> 95.1; with --bf16-activations bf16 121.5 -> 133.4, 126.2 -> 139.4,
// f16 98.3 -> 112.2, 107.3 -> 113.8 (q8_0 and q4_0: matmul_rows8_avx512.cpp token_tiles).
// Prefetching two passes ahead instead, or from tiles 1..n-2 only, gained nothing (q8_0).
// Calls run_tile.template operator()<NT>(t, share) for the tile of NT tokens from token t.
template <typename RunTile>
inline void for_token_tiles(int64_t n_tokens, bool spread, RunTile&& run_tile) {
  const int64_t n_tiles = (n_tokens + kTileTokens - 1) / kTileTokens;
  const int64_t sharing = spread ? std::max<int64_t>(1, n_tiles - 1) : 1;  // tiles that prefetch
  const auto share = [&](int64_t t) {
    const int64_t i = t / kTileTokens;  // the tile's index
    if (n_tiles == 1) return PrefetchShare{true, 0, 1};
    return PrefetchShare{i >= 1 && i <= sharing, (i - 1) % sharing, sharing};
  };
  int64_t t = 0;
  for (; t + kTileTokens <= n_tokens; t += kTileTokens)
    run_tile.template operator()<kTileTokens>(t, share(t));
  switch (n_tokens - t) {
    case 3:
      return run_tile.template operator()<3>(t, share(t));
    case 2:
      return run_tile.template operator()<2>(t, share(t));
    case 1:
      return run_tile.template operator()<1>(t, share(t));
    default:
      return;
  }
}

// Decode's order over n_groups row groups: kDecodeStreams long streams, one per quarter of them.
// Calls run_tile.template operator()<NG>(g, stride) for a one-token tile of NG groups from group g,
// `stride` groups apart: group i of each quarter together (NG = kDecodeStreams), then the 1-3 left
// one at a time. Each stream then runs through consecutive groups (contiguous in memory) to the
// end of its quarter, and a prefetch ahead runs on into the stream's next group, as the memory
// probe's 4 streams per thread do; tiles of neighbouring groups restarted their streams every
// group (9 KiB of q4_0, 32 KiB of f16 at 2048 columns). Benchmark model, 2 threads, alternated:
// q4_0 decode 57.5 -> 62.3, 57.3 -> 63.3, 56.1 -> 58.5 tokens/s (8 streams split the same way:
// 57.8, 57.5, 54.7); q8_0 34.5 -> 33.9, 31.7 -> 36.5, 34.5 -> 36.3 (72 -> 85%, 71 -> 81%, 74 -> 76%
// of the probe next to each run); f16 14.1 -> 15.5, 15.0 -> 16.2, 15.9 -> 17.9, 16.8 -> 18.7,
// 16.8 -> 16.7 tokens/s. (kDecodeStreams: detail.h.)
template <typename RunTile>
inline void for_decode_streams(int64_t n_groups, RunTile&& run_tile) {
  const int64_t quarter = n_groups / kDecodeStreams;
  for (int64_t i = 0; i < quarter; ++i) run_tile.template operator()<kDecodeStreams>(i, quarter);
  for (int64_t g = kDecodeStreams * quarter; g < n_groups; ++g)
    run_tile.template operator()<1>(g, int64_t{1});
}

}  // namespace
}  // namespace autoglm::kernels::detail
