// Load-time repacking of the matmul weights into the layout the active kernels run fastest
// (kernels::pack_for_matmul: f32, f16, bf16, q8_0 and q4_0 in 8-row interleaved groups on AVX2 /
// AVX-512).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "core/large_buffer.h"
#include "core/thread_pool.h"
#include "models/model.h"
#include "models/weights.h"

namespace autoglm::models {

// Packs every matmul weight that gains from it into one large buffer (appended to `owned`), one
// matrix at a time: a source buffer the model owns (a load-time conversion) is freed at once, a
// source in the mapped file is handed back to the page cache, so the peak stays about one matrix
// above the final size. The embedding table (and an output layer tied to it) keeps the file
// layout: its rows are looked up one by one. Each matrix's row groups are split over the pool.
// `activations` says which packed bf16 and f16 matrices may multiply in bf16
// (kernels::Matrix::x_as_bf16) and which f16 ones in 16-bit integers (kernels::Matrix::x_as_int16;
// models::Activations). A layer's separate q, k and v of one type
// become one fused matrix (LayerWeights::qkv) when packed. An f16 matrix whose every value is also
// a bf16 value (an f16 file converted from a bf16 release) is packed as bf16, for the faster bf16
// kernels.
struct PackResult {
  int packed = 0;           // matrices packed
  int bf16_rounding_x = 0;  // of which bf16 matrices that may round x to bf16
  int f16_as_bf16 = 0;      // of which f16 matrices that may round x and themselves to bf16
  int f16_in_int16 = 0;     // of which f16 matrices that multiply several tokens in int16
  // of which f16 matrices holding only bf16 values, packed as bf16 (kernels::pack_f16_as_bf16)
  int f16_packed_as_bf16 = 0;
  int fused_qkv = 0;  // layers whose separate q, k and v now run as one matrix
};
PackResult pack_weights(ModelWeights& weights, std::vector<LargeBuffer>& owned, ThreadPool& pool,
                        Activations activations);

}  // namespace autoglm::models
