// Fitting a plan onto a device, and the vision tower's size: the parts of `plan` that search.
#include <nlohmann/json.hpp>

#include "ops/plan.h"

namespace autoglm::ops {
namespace {

bool fits(const models::ModelSpec& spec, const PlanOptions& o, const DeviceMemory& d,
          const formats::TensorStore* store) {
  return plan_memory(spec, o, store).total_bytes <= d.available;
}

// Largest v in [lo, hi] with ok(v), given ok is monotone (true then false); lo - 1 when none.
template <typename Ok>
int64_t largest(int64_t lo, int64_t hi, Ok ok) {
  if (!ok(lo)) return lo - 1;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (ok(mid)) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

}  // namespace

const char* verdict_name(Verdict v) {
  switch (v) {
    case Verdict::Fits:
      return "fits";
    case Verdict::FitsWithQ8:
      return "fits with q8_0";
    case Verdict::FitsWithQ4:
      return "fits with q4_0";
    case Verdict::DoesNotFit:
      return "does not fit";
  }
  return "?";
}

FitReport fit_on(const models::ModelSpec& spec, const PlanOptions& options,
                 const DeviceMemory& device, const formats::TensorStore* store) {
  FitReport r;
  r.device = device.name;
  r.available = device.available;
  r.needed = plan_memory(spec, options, store).total_bytes;
  PlanOptions chosen = options;
  if (r.needed <= device.available) {
    r.verdict = Verdict::Fits;
  } else if (chosen.dtype = DType::Q8_0; fits(spec, chosen, device, store)) {
    r.verdict = Verdict::FitsWithQ8;
  } else if (chosen.dtype = DType::Q4_0; fits(spec, chosen, device, store)) {
    r.verdict = Verdict::FitsWithQ4;
  } else {
    r.verdict = Verdict::DoesNotFit;
    chosen = options;  // report limits for the dtype asked for
  }
  // Context in whole blocks, up to the trained length (or the request when longer).
  const int64_t bs = options.block_size;
  const int64_t cap = std::max(spec.max_positions, options.context);
  const int64_t blocks = largest(1, std::max<int64_t>(1, cap / bs), [&](int64_t b) {
    PlanOptions o = chosen;
    o.context = b * bs;
    return fits(spec, o, device, store);
  });
  r.max_context = blocks * bs;
  r.context_capped = blocks == std::max<int64_t>(1, cap / bs);
  r.max_batch = largest(1, 4096, [&](int64_t b) {
    PlanOptions o = chosen;
    o.batch = b;
    return fits(spec, o, device, store);
  });
  return r;
}

int64_t vision_parameters(const nlohmann::json& config) {
  auto it = config.find("vision_config");
  if (it == config.end() || !it->is_object()) return 0;
  const nlohmann::json& v = *it;
  const int64_t C = v.value("hidden_size", int64_t{1536});
  const int64_t depth = v.value("depth", int64_t{24});
  const int64_t O = v.value("out_hidden_size", int64_t{4096});
  const int64_t I = v.value("intermediate_size", int64_t{13696});
  const int64_t p = v.value("patch_size", int64_t{14});
  const int64_t tp = v.value("temporal_patch_size", int64_t{2});
  const int64_t ch = v.value("in_channels", int64_t{3});
  const int64_t m = v.value("spatial_merge_size", int64_t{2});
  const int64_t grid = v.value("image_size", int64_t{336}) / p;
  const bool bias = v.value("attention_bias", false);
  // GLM_ARCHITECTURES.md D.2: patch conv (+bias), position table, post-conv norm; per block two
  // norms, qkv (+bias), proj, SwiGLU of width O; post norm; 2x2 downsample conv (+bias); merger
  // proj O x O, LayerNorm (w + b), SwiGLU of width I. GLM-4.1V: 0.892 B.
  const int64_t block = 2 * C + 3 * C * C + (bias ? 3 * C : 0) + C * C + 3 * C * O;
  return ch * tp * p * p * C + C + grid * grid * C + C + depth * block + C + O * C * m * m + O +
         O * O + 2 * O + 3 * O * I;
}

}  // namespace autoglm::ops
