#include "server/openai_api.h"

#include <algorithm>
#include <optional>
#include <random>

#include <boost/asio/post.hpp>

#include "core/error.h"
#include "core/log.h"
#include "server/api_error.h"
#include "server/openai_request.h"
#include "server/openai_response.h"

namespace autoglm::server {

using Clock = std::chrono::steady_clock;

// Engine callbacks may outlive the I/O context (the engine stops after the server): they forward
// through this gate, which the server closes before its I/O threads end.
struct OpenAiApi::Gate {
  std::mutex mutex;
  bool open = true;
};

struct OpenAiApi::Job {
  struct Choice {
    uint64_t engine_id = 0;
    size_t prompt = 0;  // which prompt (completions with a list of prompts)
    std::string text;
    std::vector<engine::TokenLogprob> logprobs;
    std::vector<std::vector<engine::TokenLogprob>> top;
    int64_t text_offset = 0;  // completions logprobs: bytes before this chunk
    bool finished = false;
    engine::FinishReason reason = engine::FinishReason::Stop;
    std::string error;
    int64_t completion_tokens = 0;
    bool content_started = false;  // chat: a non-newline character has been streamed
  };

  bool chat = true;
  std::string route;
  ResponseHeader header;
  bool stream = false;
  bool include_usage = false;
  bool tools_enabled = false;  // buffer the reply and parse tool calls out of it
  nlohmann::ordered_json tools;
  bool logprobs = false;
  std::vector<std::string> echo;  // completions echo: prompt text per prompt
  std::vector<int64_t> prompt_tokens;
  std::vector<Choice> choices;
  size_t remaining = 0;
  std::shared_ptr<ResponseChannel> channel;
  Clock::time_point start = Clock::now();
  std::optional<Clock::time_point> first_token;
  bool aborted = false;  // submission failed or the client left: events are dropped
  bool disconnected = false;
};

namespace {

// GLM chat formats end the role line of a reply with "\n" (`<|assistant|>\n...`; glm-4-9b-chat
// writes its empty metadata line there), so a reply's leading newlines are format, not content:
// the official chat code strips them too.
std::string_view without_leading_newlines(std::string_view text) {
  const size_t first = text.find_first_not_of('\n');
  return first == std::string_view::npos ? std::string_view() : text.substr(first);
}

std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return fmt::format("{}{:016x}{:08x}", prefix, rng(), static_cast<uint32_t>(rng()));
}

uint64_t random_seed() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  return rng();
}

HttpResponse json_response(int status, const ojson& body) {
  HttpResponse r;
  r.status = status;
  r.body = dump_json(body);
  return r;
}

HttpResponse error_response(const ApiError& e) {
  HttpResponse r;
  r.status = e.status;
  r.body = e.to_json().dump();
  r.headers = e.headers;
  return r;
}

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

OpenAiApi::OpenAiApi(engine::InferenceService& service, const tokenizer::Tokenizer& tokenizer,
                     const tokenizer::ChatFormat* chat_format, ServedModel model,
                     ServerMetrics& metrics, ApiOptions options)
    : service_(service),
      tokenizer_(tokenizer),
      chat_format_(chat_format),
      model_(std::move(model)),
      metrics_(metrics),
      options_(std::move(options)),
      gate_(std::make_shared<Gate>()) {
  stop_ids_ = tokenizer_.special().stop;
  if (tokenizer_.special().eos) stop_ids_.push_back(*tokenizer_.special().eos);
  for (int32_t id : options_.extra_stop_ids) stop_ids_.push_back(id);
  // A format's stop string that is one special token ends the reply by id, as the engine checks
  // ids before text; the rest are matched as text.
  if (chat_format_) {
    for (const std::string& s : chat_format_->stop_strings()) {
      if (auto id = tokenizer_.token_id(s)) {
        stop_ids_.push_back(*id);
      } else {
        format_stop_strings_.push_back(s);
      }
    }
  }
  std::sort(stop_ids_.begin(), stop_ids_.end());
  stop_ids_.erase(std::unique(stop_ids_.begin(), stop_ids_.end()), stop_ids_.end());
}

OpenAiApi::~OpenAiApi() {
  close_gate();
}

void OpenAiApi::close_gate() {
  std::lock_guard lock(gate_->mutex);
  gate_->open = false;
}

void OpenAiApi::check_model(const std::string& requested) const {
  if (requested.empty() || requested == model_.id) return;
  ApiError e = not_found_error(
      fmt::format(
          "The model `{}` does not exist; this server serves `{}` (GET /v1/models lists it)",
          requested, model_.id),
      "model_not_found");
  e.param = "model";
  throw ApiException(std::move(e));
}

engine::GenerationRequest OpenAiApi::base_request(const CommonParams& p,
                                                  std::vector<int32_t> prompt,
                                                  const char* prompt_param) const {
  const int64_t ctx = service_.context_length();
  const auto n_prompt = static_cast<int64_t>(prompt.size());
  if (n_prompt >= ctx) {
    ApiError e;
    e.param = prompt_param;
    e.code = "context_length_exceeded";
    e.message = fmt::format(
        "This model's maximum context length is {} tokens. However, your "
        "prompt has {} tokens; shorten it.",
        ctx, n_prompt);
    throw ApiException(std::move(e));
  }
  if (p.max_tokens && n_prompt + *p.max_tokens > ctx) {
    ApiError e;
    e.param = "max_tokens";
    e.code = "context_length_exceeded";
    e.message = fmt::format(
        "This model's maximum context length is {} tokens. However, you "
        "requested {} tokens ({} in the prompt, {} in the completion). Please "
        "reduce the length of the prompt or of max_tokens.",
        ctx, n_prompt + *p.max_tokens, n_prompt, *p.max_tokens);
    throw ApiException(std::move(e));
  }
  engine::GenerationRequest r;
  r.prompt = std::move(prompt);
  r.sampling = p.sampling;
  r.max_tokens = static_cast<int>(p.max_tokens.value_or(ctx - n_prompt));
  r.stop_ids = stop_ids_;
  r.stop_strings = p.stop;
  r.stop_strings.insert(r.stop_strings.end(), format_stop_strings_.begin(),
                        format_stop_strings_.end());
  r.ignore_eos = p.ignore_eos;
  r.top_logprobs = p.top_logprobs;
  r.skip_special_tokens = p.skip_special_tokens;
  if (options_.request_timeout_s > 0) {
    r.deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(options_.request_timeout_s));
  }
  return r;
}

void OpenAiApi::chat_completions(const HttpRequest& request,
                                 std::shared_ptr<ResponseChannel> channel) {
  auto job = std::make_shared<Job>();
  job->route = "/v1/chat/completions";
  job->channel = channel;
  try {
    const ChatParams p =
        parse_chat_request(parse_json_body(request.body), options_.sampling_defaults);
    check_model(p.common.model);
    if (!chat_format_) {
      invalid_param("messages",
                    "model `{}` has no chat format; send a raw prompt to "
                    "/v1/completions",
                    model_.id);
    }
    std::string prompt_text;
    try {
      prompt_text = chat_format_->render(p.messages, p.options);
    } catch (const Error& e) {
      invalid_param("messages", "cannot render the conversation with the {} chat format: {}",
                    chat_format_->name(), e.what());
    }
    std::vector<int32_t> ids = tokenizer_.encode(prompt_text, /*parse_special=*/true);
    job->chat = true;
    job->header = {random_id("chatcmpl-"), static_cast<int64_t>(std::time(nullptr)), model_.id};
    job->stream = p.common.stream;
    job->include_usage = p.common.include_usage;
    job->tools_enabled = p.tools_enabled;
    job->tools = p.options.tools;
    job->logprobs = p.common.top_logprobs >= 0;
    job->prompt_tokens.push_back(static_cast<int64_t>(ids.size()));
    std::vector<engine::GenerationRequest> requests;
    engine::GenerationRequest base = base_request(p.common, std::move(ids), "messages");
    const uint64_t seed = p.common.seed_given ? p.common.sampling.seed : random_seed();
    for (int i = 0; i < p.common.n; ++i) {
      requests.push_back(base);
      requests.back().sampling.seed = seed + static_cast<uint64_t>(i);
      job->choices.emplace_back();
    }
    start_job(job, std::move(requests));
  } catch (const ApiException& e) {
    metrics_.observe_http(job->route, e.error().status);
    channel->respond(error_response(e.error()));
  }
}

void OpenAiApi::completions(const HttpRequest& request, std::shared_ptr<ResponseChannel> channel) {
  auto job = std::make_shared<Job>();
  job->route = "/v1/completions";
  job->channel = channel;
  try {
    const CompletionParams p =
        parse_completion_request(parse_json_body(request.body), options_.sampling_defaults);
    check_model(p.common.model);
    std::vector<std::vector<int32_t>> prompts = p.token_prompts;
    std::vector<std::string> texts;
    for (const std::string& text : p.text_prompts) {
      // As HF `tokenizer(prompt)` does for GLM: the [gMASK]<sop> prefix, special tokens parsed.
      prompts.push_back(tokenizer_.encode_with_prefix(text, /*parse_special=*/true));
      texts.push_back(text);
    }
    for (const auto& ids : p.token_prompts) {
      for (int32_t id : ids) {
        if (id >= tokenizer_.n_vocab()) {
          invalid_param("prompt", "token id {} is outside the vocabulary of {} tokens", id,
                        tokenizer_.n_vocab());
        }
      }
      texts.push_back(tokenizer_.decode(ids, /*skip_special=*/false));
    }
    job->chat = false;
    job->header = {random_id("cmpl-"), static_cast<int64_t>(std::time(nullptr)), model_.id};
    job->stream = p.common.stream;
    job->include_usage = p.common.include_usage;
    job->logprobs = p.common.top_logprobs >= 0;
    if (p.echo) job->echo = texts;
    std::vector<engine::GenerationRequest> requests;
    const uint64_t seed = p.common.seed_given ? p.common.sampling.seed : random_seed();
    for (size_t k = 0; k < prompts.size(); ++k) {
      job->prompt_tokens.push_back(static_cast<int64_t>(prompts[k].size()));
      engine::GenerationRequest base = base_request(p.common, prompts[k], "prompt");
      for (int i = 0; i < p.common.n; ++i) {
        requests.push_back(base);
        requests.back().sampling.seed = seed + static_cast<uint64_t>(i);
        job->choices.emplace_back();
        job->choices.back().prompt = k;
      }
    }
    start_job(job, std::move(requests));
  } catch (const ApiException& e) {
    metrics_.observe_http(job->route, e.error().status);
    channel->respond(error_response(e.error()));
  }
}

void OpenAiApi::start_job(std::shared_ptr<Job> job,
                          std::vector<engine::GenerationRequest> requests) {
  job->remaining = requests.size();
  for (size_t i = 0; i < requests.size(); ++i) {
    std::weak_ptr<Gate> gate = gate_;
    auto executor = job->channel->executor();
    auto callback = [this, gate, executor, job, i](const engine::GenerationEvent& ev) {
      auto g = gate.lock();
      if (!g) return;
      std::lock_guard lock(g->mutex);
      if (!g->open) return;
      boost::asio::post(executor, [this, job, i, ev] { on_event(job, i, ev); });
    };
    const engine::SubmitResult r = service_.submit(std::move(requests[i]), std::move(callback));
    if (r.status != engine::SubmitStatus::Accepted) {
      // All choices or none: cancel the ones already running.
      job->aborted = true;
      for (size_t k = 0; k < i; ++k) service_.cancel(job->choices[k].engine_id);
      ApiError e;
      if (r.status == engine::SubmitStatus::QueueFull) {
        e = queue_full_error(fmt::format("the server is at capacity ({}); retry after the "
                                         "Retry-After delay",
                                         r.message),
                             1);
      } else if (r.status == engine::SubmitStatus::NotReady) {
        e = not_ready_error(
            fmt::format("the model is not ready yet ({}); retry shortly", r.message), 2);
      } else {
        e.message = r.message;
      }
      metrics_.observe_http(job->route, e.status);
      job->channel->respond(error_response(e));
      return;
    }
    job->choices[i].engine_id = r.id;
    std::lock_guard lock(live_mutex_);
    live_.insert(r.id);
  }
  std::weak_ptr<Job> weak = job;
  job->channel->on_disconnect([this, weak] {
    auto j = weak.lock();
    if (!j) return;
    j->disconnected = true;
    for (const auto& c : j->choices) {
      if (!c.finished) service_.cancel(c.engine_id);
    }
  });
  if (job->stream) {
    job->channel->start_stream(200, "text/event-stream");
    if (job->chat) {
      // The role comes first, in a chunk of its own (as OpenAI and vLLM send it).
      for (size_t i = 0; i < job->choices.size(); ++i) {
        job->channel->write(sse_event(chat_chunk(job->header, static_cast<int>(i),
                                                 {{"role", "assistant"}, {"content", ""}}, nullptr,
                                                 "", job->include_usage)));
      }
    }
  }
}

void OpenAiApi::forget(uint64_t id) {
  std::lock_guard lock(live_mutex_);
  live_.erase(id);
}

void OpenAiApi::on_event(const std::shared_ptr<Job>& job, size_t i,
                         const engine::GenerationEvent& ev) {
  Job::Choice& c = job->choices[i];
  if (ev.finished) forget(c.engine_id);
  if (c.finished) return;
  if (!ev.token_ids.empty() && !job->first_token) job->first_token = Clock::now();
  const int64_t offset = static_cast<int64_t>(c.text.size());
  c.text += ev.text_delta;
  c.logprobs.insert(c.logprobs.end(), ev.logprobs.begin(), ev.logprobs.end());
  c.top.insert(c.top.end(), ev.top_logprobs.begin(), ev.top_logprobs.end());
  if (ev.finished) {
    c.finished = true;
    c.reason = ev.finish_reason;
    c.error = ev.error;
    c.completion_tokens = ev.completion_tokens;
    job->prompt_tokens[c.prompt] = std::max(job->prompt_tokens[c.prompt], ev.prompt_tokens);
  }
  if (job->aborted) {
    if (ev.finished && --job->remaining == 0) complete(*job);
    return;
  }
  if (job->stream && !job->tools_enabled && (!ev.text_delta.empty() || !ev.logprobs.empty())) {
    const int index = static_cast<int>(i);
    ojson lp = nullptr;
    if (job->logprobs) {
      lp = job->chat ? chat_logprobs_json(ev.logprobs, ev.top_logprobs)
                     : completion_logprobs_json(ev.logprobs, ev.top_logprobs, offset);
    }
    std::string text = ev.text_delta;
    if (!job->chat && !job->echo.empty() && offset == 0) text = job->echo[c.prompt] + text;
    if (job->chat && !c.content_started) {
      text = std::string(without_leading_newlines(text));
      c.content_started = !text.empty();
    }
    job->channel->write(sse_event(
        job->chat
            ? chat_chunk(job->header, index, {{"content", text}}, std::move(lp), "",
                         job->include_usage)
            : completion_chunk(job->header, index, text, std::move(lp), "", job->include_usage)));
  }
  if (ev.finished) {
    if (job->stream) finish_choice_stream(*job, i);
    if (--job->remaining == 0) complete(*job);
  }
}

// The last chunk(s) of one choice: with tools, the whole parsed reply; then the finish reason.
void OpenAiApi::finish_choice_stream(Job& job, size_t i) {
  Job::Choice& c = job.choices[i];
  const int index = static_cast<int>(i);
  if (c.reason == engine::FinishReason::Error) {
    job.channel->write(sse_event(internal_error(c.error).to_json()));
    return;
  }
  bool has_tool_calls = false;
  if (job.tools_enabled) {
    const tokenizer::ParsedReply reply = chat_format_->parse(c.text, job.tools);
    has_tool_calls = !reply.tool_calls.empty();
    ojson delta = ojson::object();
    if (!reply.reasoning.empty()) delta["reasoning_content"] = reply.reasoning;
    if (!reply.content.empty()) delta["content"] = reply.content;
    if (has_tool_calls) delta["tool_calls"] = tool_calls_json(reply.tool_calls);
    ojson lp = job.logprobs ? chat_logprobs_json(c.logprobs, c.top) : ojson();
    if (!delta.empty() || job.logprobs) {
      job.channel->write(
          sse_event(chat_chunk(job.header, index, delta, std::move(lp), "", job.include_usage)));
    }
  }
  const std::string reason = finish_reason_text(c.reason, has_tool_calls);
  job.channel->write(sse_event(
      job.chat ? chat_chunk(job.header, index, ojson::object(), nullptr, reason, job.include_usage)
               : completion_chunk(job.header, index, "", nullptr, reason, job.include_usage)));
}

HttpResponse OpenAiApi::final_response(const Job& job, const Usage& usage) const {
  const auto failed = std::find_if(job.choices.begin(), job.choices.end(), [](const auto& c) {
    return c.reason == engine::FinishReason::Error;
  });
  if (failed != job.choices.end()) {
    return error_response(internal_error("generation failed: " + failed->error));
  }
  ojson choices = ojson::array();
  for (size_t i = 0; i < job.choices.size(); ++i) {
    const Job::Choice& c = job.choices[i];
    ojson lp = nullptr;
    if (job.chat) {
      ojson message = {{"role", "assistant"},
                       {"content", std::string(without_leading_newlines(c.text))}};
      bool has_tool_calls = false;
      if (job.tools_enabled) {
        const tokenizer::ParsedReply reply = chat_format_->parse(c.text, job.tools);
        has_tool_calls = !reply.tool_calls.empty();
        message["content"] =
            reply.content.empty() && has_tool_calls ? ojson() : ojson(reply.content);
        if (!reply.reasoning.empty()) message["reasoning_content"] = reply.reasoning;
        if (has_tool_calls) message["tool_calls"] = tool_calls_json(reply.tool_calls);
      }
      if (job.logprobs) lp = chat_logprobs_json(c.logprobs, c.top);
      choices.push_back({{"index", i},
                         {"message", std::move(message)},
                         {"logprobs", std::move(lp)},
                         {"finish_reason", finish_reason_text(c.reason, has_tool_calls)}});
    } else {
      const std::string echo = job.echo.empty() ? "" : job.echo[c.prompt];
      if (job.logprobs) {
        lp = completion_logprobs_json(c.logprobs, c.top, static_cast<int64_t>(echo.size()));
      }
      choices.push_back({{"index", i},
                         {"text", echo + c.text},
                         {"logprobs", std::move(lp)},
                         {"finish_reason", finish_reason_text(c.reason, false)}});
    }
  }
  ojson body = {
      {"id", job.header.id},           {"object", job.chat ? "chat.completion" : "text_completion"},
      {"created", job.header.created}, {"model", job.header.model},
      {"choices", std::move(choices)}, {"usage", usage_json(usage)}};
  return json_response(200, body);
}

void OpenAiApi::end_stream(const Job& job, const Usage& usage) const {
  if (job.include_usage) {
    job.channel->write(sse_event(
        usage_chunk(job.header, job.chat ? "chat.completion.chunk" : "text_completion", usage)));
  }
  job.channel->write(kSseDone);
  job.channel->end_stream();
}

void OpenAiApi::complete(Job& job) {
  if (job.aborted) return;  // the error was already sent when the submission failed
  const auto now = Clock::now();
  Usage usage;
  for (int64_t n : job.prompt_tokens) usage.prompt_tokens += n;
  for (const auto& c : job.choices) usage.completion_tokens += c.completion_tokens;
  const double e2e = seconds_between(job.start, now);
  const double ttft = job.first_token ? seconds_between(job.start, *job.first_token) : 0.0;
  std::string reason = engine::finish_reason_name(job.choices[0].reason);
  int status = 200;
  std::optional<HttpResponse> response;
  if (job.disconnected) {
    status = 499;  // nginx's "client closed request", for logs and metrics only
    reason = "cancelled";
  } else if (!job.stream) {
    response = final_response(job, usage);
    status = response->status;
  }
  // Recorded before the reply ends, so a client that reads /metrics right after its answer
  // arrives already finds the request counted.
  metrics_.observe_request(job.route, status, reason, ttft, e2e, usage.prompt_tokens,
                           usage.completion_tokens);
  log::info("request {}", nlohmann::json{{"id", job.header.id},
                                         {"route", job.route},
                                         {"status", status},
                                         {"stream", job.stream},
                                         {"n", job.choices.size()},
                                         {"prompt_tokens", usage.prompt_tokens},
                                         {"completion_tokens", usage.completion_tokens},
                                         {"ttft_ms", static_cast<int64_t>(ttft * 1000)},
                                         {"duration_ms", static_cast<int64_t>(e2e * 1000)},
                                         {"finish_reason", reason}}
                              .dump());
  if (response) {
    job.channel->respond(std::move(*response));
  } else if (!job.disconnected) {
    end_stream(job, usage);
  }
}

HttpResponse OpenAiApi::list_models() const {
  ojson entry = {{"id", model_.id},
                 {"object", "model"},
                 {"created", 0},
                 {"owned_by", model_.owned_by},
                 {"max_model_len", service_.context_length()},
                 {"autoglm", model_.metadata}};
  return json_response(200, {{"object", "list"}, {"data", ojson::array({entry})}});
}

HttpResponse OpenAiApi::get_model(const std::string& id) const {
  if (id != model_.id) {
    return error_response(not_found_error(
        fmt::format("The model `{}` does not exist; this server serves `{}`", id, model_.id),
        "model_not_found"));
  }
  HttpResponse list = list_models();
  const auto body = ojson::parse(list.body);
  return json_response(200, body["data"][0]);
}

void OpenAiApi::cancel_all() {
  std::vector<uint64_t> ids;
  {
    std::lock_guard lock(live_mutex_);
    ids.assign(live_.begin(), live_.end());
  }
  for (uint64_t id : ids) service_.cancel(id);
}

size_t OpenAiApi::in_flight() const {
  std::lock_guard lock(live_mutex_);
  return live_.size();
}

}  // namespace autoglm::server
