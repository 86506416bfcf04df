// autoglm synth --config CONFIG.json --dtype q4_0 --out model.gguf
#include <cstdio>

#include "cli/common.h"
#include "core/error.h"
#include "core/log.h"
#include "models/synth.h"
#include "tokenizer/byte_level.h"

namespace autoglm::cli {
namespace {

struct SynthFlags {
  std::string config, out, dtype = "bf16";
  uint64_t seed = 0;
  int threads = 0;
  bool byte_vocab = false;
  bool bf16_values = false;
};

int run(const SynthFlags& f) {
  models::SynthOptions options;
  options.config = f.config;
  options.out = f.out;
  options.dtype = parse_dtype(f.dtype);
  options.seed = f.seed;
  options.bf16_values = f.bf16_values;
  if (f.byte_vocab) options.byte_tokens = tokenizer::byte_level_alphabet();
  ThreadPool pool(f.threads);
  const models::SynthResult r = models::synthesize(options, pool);
  std::printf("wrote %s: %.4g B parameters, %.4g GiB of weights (%s)%s\n",
              r.weights_file.string().c_str(), static_cast<double>(r.parameters) / 1e9,
              static_cast<double>(r.bytes) / (1024.0 * 1024.0 * 1024.0), f.dtype.c_str(),
              f.byte_vocab ? ", a placeholder byte vocabulary" : "");
  return 0;
}

}  // namespace

Action register_synth(CLI::App& app) {
  auto f = std::make_shared<SynthFlags>();
  app.add_option("--config", f->config, "Hugging Face config.json of the model to imitate")
      ->required()
      ->check(CLI::ExistingFile);
  app.add_option("--out", f->out, "FILE.gguf, or a directory for config.json + model.safetensors")
      ->required();
  app.add_option("--dtype", f->dtype,
                 "Weight type: f32, f16, bf16 (any output), q8_0, q4_0 (GGUF)");
  app.add_option("--seed", f->seed, "Random seed");
  app.add_flag("--byte-vocab", f->byte_vocab,
               "GGUF: also write a placeholder vocabulary (GPT-2 byte-level, one token per byte, "
               "no merges; the other ids named [tN]) so that readers that need one load the file, "
               "e.g. llama.cpp for a speed comparison on the same weights (bench/llama_cpp)");
  app.add_flag("--bf16-values", f->bf16_values,
               "Round every weight to bf16 before storing it in --dtype: the values of a file "
               "converted from a bf16 release (GLM's are bf16; autoglm runs such f16 matrices "
               "with its bf16 kernels)");
  app.add_option("-t,--threads", f->threads, "Worker threads (default: every core)");
  return [f] { return run(*f); };
}

}  // namespace autoglm::cli
