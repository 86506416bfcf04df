// The token loop of the several-token Rows8 kernels of the AVX-512 table: tiles of 4 tokens from
// the first, then one tile of the 1-3 left. Each tile takes every weight of its pass from L2 but
// one: the second tile (or the only one) also prefetches the next pass's weights, so that the reads
// from memory spread over the whole pass instead of stalling its first tile.
// In an anonymous namespace: each ISA's translation unit keeps its own copy (kernels/detail.h).
#pragma once

#include <cstdint>

namespace autoglm::kernels::detail {
namespace {

// Calls run_tile.template operator()<NT>(t, prefetching) for the tile of NT tokens from token t.
template <typename RunTile>
inline void for_token_tiles(int64_t n_tokens, RunTile&& run_tile) {
  constexpr int64_t kTileTokens = 4;
  const int64_t prefetch_at = n_tokens > kTileTokens ? kTileTokens : 0;
  int64_t t = 0;
  for (; t + kTileTokens <= n_tokens; t += kTileTokens)
    run_tile.template operator()<kTileTokens>(t, t == prefetch_at);
  switch (n_tokens - t) {
    case 3:
      return run_tile.template operator()<3>(t, t == prefetch_at);
    case 2:
      return run_tile.template operator()<2>(t, t == prefetch_at);
    case 1:
      return run_tile.template operator()<1>(t, t == prefetch_at);
    default:
      return;
  }
}

}  // namespace
}  // namespace autoglm::kernels::detail
