#include "ops/hub.h"

#include <nlohmann/json.hpp>

#include <cctype>
#include <map>

#include "core/error.h"

namespace autoglm::ops {
namespace {

bool is_hex(const std::string& s, size_t n) {
  if (s.size() != n) return false;
  for (char c : s)
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
  return true;
}

std::string fetch_json(const std::string& url, const HttpOptions& options, const std::string& what,
                       std::string* next_link) {
  std::string body;
  const HttpOutcome o = http_get_text(url, options, body, next_link);
  if (o.curl_code != 0) fail("{}", describe_transfer_failure(o, url));
  if (o.status != 200) fail("{}", describe_http_status(o.status, what, url));
  return body;
}

// j[key] when it is a string, else "". (json::value() with a string default trips GCC 12's
// -Wnull-dereference at -O3 inside nlohmann's inlined code.)
std::string string_field(const nlohmann::json& j, const char* key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get_ref<const std::string&>() : std::string();
}

}  // namespace

std::string normalize_endpoint(const std::string& endpoint) {
  std::string e = endpoint;
  while (!e.empty() && e.back() == '/') e.pop_back();
  if (e.rfind("http://", 0) != 0 && e.rfind("https://", 0) != 0)
    fail(
        "hub endpoint '{}' is not an http:// or https:// URL; write it like "
        "https://huggingface.co or https://hf-mirror.com",
        endpoint);
  return e;
}

std::string url_path_escape(const std::string& path) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : path) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || c == '/') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string resolve_url(const std::string& endpoint, const std::string& repo,
                        const std::string& revision, const std::string& path) {
  return endpoint + "/" + repo + "/resolve/" + url_path_escape(revision) + "/" +
         url_path_escape(path);
}

HubListing parse_listing(const std::string& revision_json,
                         const std::vector<std::string>& tree_pages) {
  HubListing listing;
  std::map<std::string, HubFile> by_path;
  std::vector<std::string> order;
  try {
    const auto info = nlohmann::json::parse(revision_json);
    listing.commit = string_field(info, "sha");
    if (!info.contains("siblings") || !info["siblings"].is_array())
      fail("the hub's revision answer has no \"siblings\" list");
    for (const auto& s : info["siblings"]) {
      const std::string path = s.at("rfilename");
      HubFile f;
      f.path = path;
      by_path[path] = f;
      order.push_back(path);
    }
    for (const auto& page : tree_pages) {
      const auto tree = nlohmann::json::parse(page);
      if (!tree.is_array()) fail("the hub's tree answer is not a list");
      for (const auto& e : tree) {
        if (string_field(e, "type") != "file") continue;
        const std::string path = e.at("path");
        auto it = by_path.find(path);
        if (it == by_path.end()) continue;  // listed in the tree only: not part of the revision
        HubFile& f = it->second;
        if (e.contains("lfs") && e["lfs"].is_object()) {
          f.size = e["lfs"].at("size").get<uint64_t>();
          f.sha256 = string_field(e["lfs"], "oid");
          if (f.sha256.empty()) f.sha256 = string_field(e["lfs"], "sha256");
          if (!is_hex(f.sha256, 64)) fail("the hub gave '{}' a bad sha256 '{}'", path, f.sha256);
        } else {
          f.size = e.at("size").get<uint64_t>();
          f.git_sha1 = string_field(e, "oid");
          if (!f.git_sha1.empty() && !is_hex(f.git_sha1, 40)) f.git_sha1.clear();
        }
        f.has_size = true;
      }
    }
  } catch (const nlohmann::json::exception& e) {
    fail(
        "the hub's file listing is not the JSON expected ({}); is the endpoint a Hugging "
        "Face-compatible hub?",
        e.what());
  }
  for (const auto& p : order) listing.files.push_back(by_path[p]);
  return listing;
}

HubListing list_repo(const std::string& endpoint, const std::string& repo,
                     const std::string& revision, const HttpOptions& options) {
  const std::string base = endpoint + "/api/models/" + repo;
  const std::string what = fmt::format("repository {} at revision {}", repo, revision);
  const std::string info =
      fetch_json(base + "/revision/" + url_path_escape(revision), options, what, nullptr);
  std::vector<std::string> pages;
  std::string next = base + "/tree/" + url_path_escape(revision) + "?recursive=true";
  // 1000 files a page on huggingface.co; 100 pages is far beyond any model repository.
  for (int page = 0; !next.empty() && page < 100; ++page) {
    std::string link;
    pages.push_back(fetch_json(next, options, what, &link));
    next = link;
  }
  HubListing listing = parse_listing(info, pages);
  listing.endpoint = endpoint;
  return listing;
}

}  // namespace autoglm::ops
