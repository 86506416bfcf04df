// A Hugging Face-compatible hub's file listing (huggingface_hub's HfApi routes):
//   GET {endpoint}/api/models/{repo}/revision/{rev}        -> {"sha": commit, "siblings": [...]}
//   GET {endpoint}/api/models/{repo}/tree/{rev}?recursive=true
//       -> [{"type": "file", "path", "size", "oid": git blob sha1,
//            "lfs": {"oid": sha256, "size", "pointerSize"}}, ...]   (paginated by a Link header)
//   GET {endpoint}/{repo}/resolve/{rev}/{path}             -> the bytes (often a 302 to a CDN)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ops/hub_http.h"

namespace autoglm::ops {

struct HubFile {
  std::string path;      // "model-00001-of-00002.safetensors", may contain '/'
  uint64_t size = 0;     // bytes of the real file (the LFS object's size for LFS files)
  std::string sha256;    // LFS files: the object's sha256 (hex); empty for plain git files
  std::string git_sha1;  // plain git files: the blob id, sha1("blob <size>\0" + bytes)
  bool has_size = false;
};

struct HubListing {
  std::string endpoint;  // the endpoint that answered
  std::string commit;    // the revision's commit sha ("sha"), when the hub gives one
  std::vector<HubFile> files;
};

// "https://hf-mirror.com/" -> "https://hf-mirror.com"; throws Error on anything but http(s)://.
std::string normalize_endpoint(const std::string& endpoint);

// Percent-encodes each path segment (file names may hold spaces or '#'); keeps '/'.
std::string url_path_escape(const std::string& path);

std::string resolve_url(const std::string& endpoint, const std::string& repo,
                        const std::string& revision, const std::string& path);

// Lists `repo` at `revision` on one endpoint. Throws Error with the hub's reason and the fix.
HubListing list_repo(const std::string& endpoint, const std::string& repo,
                     const std::string& revision, const HttpOptions& options);

// Parses the two JSON answers (exposed for tests); throws Error on a malformed answer.
HubListing parse_listing(const std::string& revision_json,
                         const std::vector<std::string>& tree_pages);

}  // namespace autoglm::ops
