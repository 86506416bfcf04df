// The OpenAI routes: request -> validated parameters -> chat format -> tokens -> n engine
// submissions; engine events -> SSE chunks or one JSON answer. Runs on the connection's strand;
// engine callbacks only post there (service.h: they run on the engine thread and must not block).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/service.h"
#include "server/http_server.h"
#include "server/metrics.h"
#include "server/openai_request.h"
#include "server/openai_response.h"
#include "tokenizer/chat_format.h"
#include "tokenizer/tokenizer.h"

namespace autoglm::server {

struct ServedModel {
  std::string id;  // what clients pass as "model"
  std::string owned_by = "autoglm";
  nlohmann::json metadata = nlohmann::json::object();  // dtype and why, context, chat format, ...
};

struct ApiOptions {
  double request_timeout_s = 0;         // 0: none
  std::vector<int32_t> extra_stop_ids;  // e.g. the model's eos ids beyond the tokenizer's
  // What a request gets for the sampling fields it leaves out: the OpenAI defaults, or the
  // model's generation_config.json (engine/generation_defaults.h).
  engine::SamplingParams sampling_defaults;
};

class OpenAiApi {
 public:
  // `chat_format` may be null (a model without a chat format: /v1/chat/completions answers 400).
  OpenAiApi(engine::InferenceService& service, const tokenizer::Tokenizer& tokenizer,
            const tokenizer::ChatFormat* chat_format, ServedModel model, ServerMetrics& metrics,
            ApiOptions options);
  ~OpenAiApi();

  void chat_completions(const HttpRequest& request, std::shared_ptr<ResponseChannel> channel);
  void completions(const HttpRequest& request, std::shared_ptr<ResponseChannel> channel);
  HttpResponse list_models() const;
  HttpResponse get_model(const std::string& id) const;

  // Cancels every request in flight (drain timeout).
  void cancel_all();
  size_t in_flight() const;
  // Stops forwarding engine events (before the I/O context goes away).
  void close_gate();

  struct Job;
  struct Gate;

 private:
  void start_job(std::shared_ptr<Job> job, std::vector<engine::GenerationRequest> requests);
  void on_event(const std::shared_ptr<Job>& job, size_t choice, const engine::GenerationEvent& ev);
  void finish_choice_stream(Job& job, size_t choice);
  void complete(Job& job);
  // The whole reply of a non-streamed job (or its error), built before it is sent.
  HttpResponse final_response(const Job& job, const Usage& usage) const;
  // The usage chunk when asked for, [DONE], and the end of the stream.
  void end_stream(const Job& job, const Usage& usage) const;
  void check_model(const std::string& requested) const;
  // prompt_param names the request field a too-long prompt came from ("messages" or "prompt").
  engine::GenerationRequest base_request(const CommonParams& p, std::vector<int32_t> prompt,
                                         const char* prompt_param) const;
  void forget(uint64_t id);

  engine::InferenceService& service_;
  const tokenizer::Tokenizer& tokenizer_;
  const tokenizer::ChatFormat* chat_format_;
  ServedModel model_;
  ServerMetrics& metrics_;
  ApiOptions options_;
  std::vector<int32_t> stop_ids_;
  std::vector<std::string> format_stop_strings_;
  std::shared_ptr<Gate> gate_;
  mutable std::mutex live_mutex_;
  std::unordered_set<uint64_t> live_;  // engine ids in flight
};

}  // namespace autoglm::server
