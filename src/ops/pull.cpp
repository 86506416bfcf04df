#include "ops/pull.h"

#include <fmt/format.h>
#include <fnmatch.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "core/error.h"

namespace autoglm::ops {
namespace fs = std::filesystem;
namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

uint64_t size_or_zero(const fs::path& p) {
  std::error_code ec;
  const auto n = fs::file_size(p, ec);
  return ec ? 0 : n;
}

std::string gib(uint64_t bytes) {
  return fmt::format("{:.2f} GiB", double(bytes) / (1ull << 30));
}

[[noreturn]] void fail_disk_full(const fs::path& dir, uint64_t need, uint64_t have) {
  fail(
      "disk full: {} needs {} more but the file system holding {} has {} free; free space or "
      "choose another disk with --dir (the .part files resume where they stopped)",
      dir.string(), gib(need), dir.string(), gib(have));
}

bool wanted(const std::string& path, const std::vector<std::string>& globs) {
  if (globs.empty()) return true;
  return std::any_of(globs.begin(), globs.end(), [&](const std::string& g) {
    return fnmatch(g.c_str(), path.c_str(), 0) == 0;
  });
}

// Outcome of one attempt at one file on one mirror.
struct Attempt {
  bool done = false;    // verified and renamed
  bool retry = false;   // a cut or a stall: resuming on the same mirror may finish it
  std::string failure;  // why it did not finish
  uint64_t resumed_from = 0;
};

class FilePull {
 public:
  FilePull(const PullOptions& o, const PullObserver& obs, const HubFile& f, const fs::path& final)
      : options_(o), observer_(obs), file_(f), final_(final), part_(final.string() + ".part") {}

  PulledFile run(const std::vector<std::string>& endpoints) {
    std::vector<std::string> failures;
    for (const auto& endpoint : endpoints) {
      for (int attempt = 0; attempt <= options_.retries; ++attempt) {
        const Attempt a = try_once(endpoint);
        if (a.done) return finished(a.resumed_from);
        failures.push_back(a.failure);
        if (observer_.note) observer_.note(a.failure);
        if (!a.retry) break;
      }
    }
    std::string msg = fmt::format("could not download {}:", file_.path);
    for (const auto& f : failures) msg += "\n  " + f;
    fail("{}", msg);
  }

 private:
  Attempt try_once(const std::string& endpoint) {
    Attempt a;
    uint64_t offset = size_or_zero(part_);
    if (file_.has_size && offset > file_.size) {  // stale .part of another revision
      fs::remove(part_);
      offset = 0;
    }
    a.resumed_from = offset;
    if (!(file_.has_size && offset == file_.size)) {
      const std::string url = resolve_url(endpoint, options_.repo, options_.revision, file_.path);
      if (!fetch(url, offset, a)) return a;
    }
    a.failure = verify();
    if (!a.failure.empty()) {
      fs::remove(part_);  // damaged bytes: the next try starts from zero
      return a;
    }
    fs::rename(part_, final_);
    a.done = true;
    return a;
  }

  // Appends the bytes after `offset` to the .part; false (with a.failure set) on failure.
  bool fetch(const std::string& url, uint64_t offset, Attempt& a) {
    if (observer_.file_begin) observer_.file_begin(file_, offset);
    std::unique_ptr<std::FILE, FileCloser> out(std::fopen(part_.c_str(), "ab"));
    if (!out)
      fail("cannot write {}: {}; check that --dir is writable", part_.string(),
           std::strerror(errno));
    uint64_t done = offset;
    int write_errno = 0;
    auto on_status = [&](long status) {
      // 200 to a ranged GET: the server ignored Range (RFC 9110 14.2); start the file over.
      if (status == 200 && offset > 0) {
        std::fflush(out.get());
        if (ftruncate(fileno(out.get()), 0) != 0) write_errno = errno;
        done = 0;
        a.resumed_from = 0;
      }
    };
    auto sink = [&](const char* data, size_t n) {
      if (write_errno != 0 || std::fwrite(data, 1, n, out.get()) != n) {
        if (write_errno == 0) write_errno = errno ? errno : EIO;
        return false;
      }
      done += n;
      if (observer_.bytes) observer_.bytes(done, file_.size);
      return true;
    };
    const HttpOutcome o = http_get_stream(url, options_.http, offset, on_status, sink);
    if (std::fflush(out.get()) != 0 && write_errno == 0) write_errno = errno;
    if (write_errno == ENOSPC || write_errno == EDQUOT) {
      struct statvfs st {};
      const uint64_t have =
          statvfs(final_.parent_path().c_str(), &st) == 0 ? uint64_t(st.f_bavail) * st.f_frsize : 0;
      fail_disk_full(final_.parent_path(), file_.size > done ? file_.size - done : 0, have);
    }
    if (write_errno != 0)
      fail("writing {} failed: {}; check the disk and --dir", part_.string(),
           std::strerror(write_errno));
    if (o.curl_code != 0) {
      a.failure = describe_transfer_failure(o, url);
      // A cut or a stall keeps its bytes; another attempt resumes from them.
      a.retry = done > offset || o.curl_code == 18 /*PARTIAL_FILE*/ || o.curl_code == 28;
      return false;
    }
    if (o.status == 416) return true;  // the .part already holds every byte: verify decides
    if (o.status != 200 && o.status != 206) {
      a.failure = describe_http_status(
          o.status,
          fmt::format("file {} of {} at revision {}", file_.path, options_.repo, options_.revision),
          url);
      return false;
    }
    return true;
  }

  // "" when the .part is the file the hub described; otherwise why not.
  std::string verify() {
    const uint64_t got = size_or_zero(part_);
    if (file_.has_size && got != file_.size)
      return fmt::format("{}: got {} bytes, the hub lists {}; run pull again to resume", file_.path,
                         got, file_.size);
    if (!file_.sha256.empty()) {
      const std::string h = file_sha256(part_);
      checked_ = "sha256";
      if (h != file_.sha256)
        return fmt::format(
            "{}: sha256 mismatch (expected {}, got {}): the bytes were damaged "
            "in transit or by the mirror; the .part was deleted, run pull again "
            "or use another --endpoint",
            file_.path, file_.sha256, h);
    } else if (!file_.git_sha1.empty()) {
      const std::string h = file_git_blob_sha1(part_);
      checked_ = "git sha1";
      if (h != file_.git_sha1)
        return fmt::format(
            "{}: git blob sha1 mismatch (expected {}, got {}): the bytes were "
            "damaged; the .part was deleted, run pull again",
            file_.path, file_.git_sha1, h);
    } else {
      checked_ = file_.has_size ? "size" : "nothing (the hub gave no size or hash)";
    }
    return "";
  }

  PulledFile finished(uint64_t resumed_from) {
    PulledFile p{file_.path, size_or_zero(final_), resumed_from,
                 resumed_from > 0 ? PullFileState::Resumed : PullFileState::Downloaded, checked_};
    if (observer_.file_end) observer_.file_end(p);
    return p;
  }

  const PullOptions& options_;
  const PullObserver& observer_;
  const HubFile& file_;
  fs::path final_;
  fs::path part_;
  std::string checked_;
};

HubListing list_on_mirrors(const PullOptions& o, const std::vector<std::string>& endpoints,
                           const PullObserver& observer) {
  std::vector<std::string> failures;
  for (const auto& e : endpoints) {
    try {
      return list_repo(e, o.repo, o.revision, o.http);
    } catch (const Error& err) {
      failures.push_back(fmt::format("{}: {}", e, err.what()));
      if (observer.note && &e != &endpoints.back())  // the last one's reason ends the pull
        observer.note(fmt::format("mirror {} failed: {}; trying the next", e, err.what()));
    }
  }
  std::string msg =
      fmt::format("could not list {} at revision {} on any mirror:", o.repo, o.revision);
  for (const auto& f : failures) msg += "\n  " + f;
  fail("{}", msg);
}

void check_free_space(const fs::path& dir, const std::vector<HubFile>& files) {
  uint64_t need = 0;
  for (const auto& f : files) {
    const fs::path final = dir / f.path;
    if (fs::exists(final)) continue;
    const uint64_t have = size_or_zero(final.string() + ".part");
    if (f.size > have) need += f.size - have;
  }
  struct statvfs st {};
  if (statvfs(dir.c_str(), &st) != 0) return;
  const uint64_t free_bytes = uint64_t(st.f_bavail) * st.f_frsize;
  if (need > free_bytes) fail_disk_full(dir, need, free_bytes);
}

}  // namespace

std::vector<std::string> endpoint_list(const std::vector<std::string>& flags) {
  std::vector<std::string> raw;
  if (const char* e = std::getenv("HF_ENDPOINT"); e && *e) raw.push_back(e);
  raw.insert(raw.end(), flags.begin(), flags.end());
  if (raw.empty()) raw.push_back("https://huggingface.co");
  std::vector<std::string> out;
  for (const auto& r : raw) {
    const std::string e = normalize_endpoint(r);
    if (std::find(out.begin(), out.end(), e) == out.end()) out.push_back(e);
  }
  return out;
}

PullResult pull(const PullOptions& o, const PullObserver& observer) {
  if (o.repo.find('/') == std::string::npos || o.repo.front() == '/' || o.repo.back() == '/')
    fail("'{}' is not a repository name; write it as owner/name, e.g. THUDM/glm-edge-1.5b-chat",
         o.repo);
  std::vector<std::string> endpoints = o.endpoints;
  if (endpoints.empty()) endpoints = endpoint_list({});
  const HubListing listing = list_on_mirrors(o, endpoints, observer);
  // Downloads start on the mirror that answered, then fall back in the given order.
  std::stable_partition(endpoints.begin(), endpoints.end(),
                        [&](const std::string& e) { return e == listing.endpoint; });

  std::vector<HubFile> files;
  for (const auto& f : listing.files)
    if (wanted(f.path, o.include)) files.push_back(f);
  if (files.empty())
    fail("no file of {} at {} matches --include {}; the repository has {} files", o.repo,
         o.revision, fmt::format("{}", fmt::join(o.include, " ")), listing.files.size());
  for (const auto& f : files) {
    const fs::path rel(f.path);
    if (rel.is_absolute() ||
        std::any_of(rel.begin(), rel.end(), [](const fs::path& c) { return c == ".."; }))
      fail("the hub listed an unsafe path '{}'; refusing to write outside --dir", f.path);
  }
  std::error_code ec;
  fs::create_directories(o.dir, ec);
  if (ec) fail("cannot create {}: {}; choose a writable --dir", o.dir.string(), ec.message());
  check_free_space(o.dir, files);

  PullResult result{listing.endpoint, listing.commit, {}};
  for (const auto& f : files) {
    const fs::path final = o.dir / f.path;
    fs::create_directories(final.parent_path());
    if (fs::exists(final) && (!f.has_size || fs::file_size(final) == f.size)) {
      // Only verified files ever get their final name, so a present one of the right size is done.
      PulledFile p{f.path, size_or_zero(final), 0, PullFileState::Present, "size"};
      if (observer.file_end) observer.file_end(p);
      result.files.push_back(p);
      continue;
    }
    result.files.push_back(FilePull(o, observer, f, final).run(endpoints));
  }
  return result;
}

}  // namespace autoglm::ops
