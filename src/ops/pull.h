// `autoglm pull`: a repository from a Hugging Face-compatible hub into a directory. Mirrors in
// order, resume into `<file>.part` with HTTP Range, size + sha256 (LFS) or git blob sha1 (plain
// files) checked before the rename to the final name, one message with the fix on every failure.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "ops/hub.h"
#include "ops/hub_http.h"

namespace autoglm::ops {

struct PullOptions {
  std::string repo;                    // "owner/name"
  std::string revision = "main";       // branch, tag or commit
  std::filesystem::path dir;           // destination; files keep their repository paths below it
  std::vector<std::string> endpoints;  // mirrors, tried in order (see endpoint_list)
  std::vector<std::string> include;    // fnmatch globs on repository paths; empty: every file
  HttpOptions http;
  int retries = 3;  // resumed attempts per mirror after a cut or a stall, before the next mirror
};

enum class PullFileState { Downloaded, Resumed, Present };

struct PulledFile {
  std::string path;
  uint64_t size = 0;
  uint64_t resumed_from = 0;  // bytes already in the .part when the last attempt began
  PullFileState state = PullFileState::Downloaded;
  std::string checked;  // "sha256", "git sha1" or "size" (what was verified)
};

struct PullResult {
  std::string endpoint;  // the mirror that listed the repository
  std::string commit;
  std::vector<PulledFile> files;
};

// Progress callbacks; every member may be empty.
struct PullObserver {
  std::function<void(const std::string& line)> note;  // "mirror X failed: ...; trying Y"
  std::function<void(const HubFile& file, uint64_t offset)> file_begin;
  std::function<void(uint64_t done, uint64_t total)> bytes;  // within the current file
  std::function<void(const PulledFile& file)> file_end;
};

// HF_ENDPOINT (when set) first, then `flags` in order, normalized and without duplicates;
// https://huggingface.co when both are empty.
std::vector<std::string> endpoint_list(const std::vector<std::string>& flags);

PullResult pull(const PullOptions& options, const PullObserver& observer = {});

// Hex digests of a file on disk (OpenSSL EVP); git_blob_sha1 hashes "blob <size>\0" + bytes the
// way git names a blob (the tree API's "oid" of a non-LFS file).
std::string file_sha256(const std::filesystem::path& path);
std::string file_git_blob_sha1(const std::filesystem::path& path);

}  // namespace autoglm::ops
