#!/usr/bin/env python3
"""A fake Hugging Face hub for the `pull` tests (tests/ops_net), on 127.0.0.1 and a free port.

Serves every repository found as ROOT/<owner>/<name>/ at revision "main" with the routes `pull` uses:
  GET /api/models/<owner>/<name>/revision/<rev>   {"sha", "siblings": [{"rfilename"}]}
  GET /api/models/<owner>/<name>/tree/<rev>        [{"type","path","size","oid","lfs"?}], paginated
  GET /<owner>/<name>/resolve/<rev>/<path>         the bytes, with Range support (206)
Files whose name ends in .safetensors or .gguf are listed as LFS objects (sha256); the others as plain
git blobs (sha1 of "blob <size>\\0" + bytes), as huggingface.co does.

Misbehaviour is read from ROOT/_hub.json at every request (the test rewrites it between pulls):
  {"token": "T"}              no Authorization -> 401, another token -> 403
  {"cut": {"path": K}}        close the connection after byte K of that file (once; "cut_always")
  {"corrupt": {"path": I}}    flip byte I of that file as it is served (listing keeps the real hash)
  {"stall": {"path": S}}      send half the file, then go silent for S seconds
  {"ignore_range": true}      answer 200 with the whole file to ranged requests
  {"page_size": N}            N tree entries per page, with a Link: <...>; rel="next" header
Every request is appended to ROOT/_log.jsonl as {"path", "range", "auth"}.
Prints "PORT <n>" on stdout once listening.
"""
import hashlib
import json
import os
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = sys.argv[sys.argv.index("--root") + 1]
LOCK = threading.Lock()
CUT_DONE = set()
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def config():
    try:
        with open(os.path.join(ROOT, "_hub.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return {}


def repo_files(repo_dir):
    out = []
    for base, _, names in os.walk(repo_dir):
        for n in sorted(names):
            full = os.path.join(base, n)
            out.append(os.path.relpath(full, repo_dir).replace(os.sep, "/"))
    return sorted(out)


def tree_entry(repo_dir, path):
    data = open(os.path.join(repo_dir, path), "rb").read()
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    if path.endswith((".safetensors", ".gguf")):
        pointer = "version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %d\n" % (
            hashlib.sha256(data).hexdigest(), len(data))
        return {"type": "file", "path": path, "size": len(pointer),
                "oid": hashlib.sha1(pointer.encode()).hexdigest(),
                "lfs": {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                        "pointerSize": len(pointer)}}
    return {"type": "file", "path": path, "size": len(data), "oid": blob}


class Hub(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_json(self, status, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        cfg = config()
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path)
        with LOCK, open(os.path.join(ROOT, "_log.jsonl"), "a") as log:
            log.write(json.dumps({"path": path, "range": self.headers.get("Range"),
                                  "auth": self.headers.get("Authorization")}) + "\n")
        if "token" in cfg:
            auth = self.headers.get("Authorization")
            if auth is None:
                return self.send_json(401, {"error": "Invalid credentials in Authorization header"})
            if auth != "Bearer " + cfg["token"]:
                return self.send_json(403, {"error": "Access to this model is restricted"})
        parts = path.strip("/").split("/")
        if len(parts) >= 6 and parts[0] == "api" and parts[1] == "models":
            repo, kind, rev = "/".join(parts[2:4]), parts[4], "/".join(parts[5:])
            return self.api(cfg, repo, kind, rev, urllib.parse.parse_qs(url.query))
        if len(parts) >= 5 and parts[2] == "resolve":
            return self.resolve(cfg, "/".join(parts[:2]), parts[3], "/".join(parts[4:]))
        self.send_json(404, {"error": "Not Found"})

    def api(self, cfg, repo, kind, rev, query):
        repo_dir = os.path.join(ROOT, repo)
        if not os.path.isdir(repo_dir):
            return self.send_json(404, {"error": "Repository not found"})
        if rev != "main":
            return self.send_json(404, {"error": "Invalid rev id: " + rev})
        files = repo_files(repo_dir)
        if kind == "revision":
            return self.send_json(200, {"id": repo, "sha": COMMIT,
                                        "siblings": [{"rfilename": f} for f in files]})
        entries = [tree_entry(repo_dir, f) for f in files]
        size = cfg.get("page_size", 1000)
        start = int(query.get("cursor", ["0"])[0])
        headers = []
        if start + size < len(entries):
            nxt = "http://127.0.0.1:%d/api/models/%s/tree/%s?recursive=true&cursor=%d" % (
                self.server.server_port, repo, rev, start + size)
            headers.append(("Link", '<%s>; rel="next"' % nxt))
        self.send_json(200, entries[start:start + size], headers)

    def resolve(self, cfg, repo, rev, path):
        full = os.path.join(ROOT, repo, path)
        if rev != "main" or not os.path.isfile(full):
            return self.send_json(404, {"error": "Entry not found"})
        data = bytearray(open(full, "rb").read())
        if path in cfg.get("corrupt", {}):
            data[cfg["corrupt"][path]] ^= 0xFF
        start = 0
        rng = self.headers.get("Range")
        if rng and rng.startswith("bytes=") and not cfg.get("ignore_range"):
            start = int(rng[6:].split("-")[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(data) - start))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        cut = cfg.get("cut", {}).get(path)
        if cut is not None and cut > start:
            key = (path, cut)
            with LOCK:
                first = key not in CUT_DONE
                CUT_DONE.add(key)
            if first or cfg.get("cut_always"):
                self.wfile.write(bytes(data[start:cut]))
                self.wfile.flush()
                self.close_connection = True
                return
        stall = cfg.get("stall", {}).get(path)
        if stall is not None:
            half = start + (len(data) - start) // 2
            self.wfile.write(bytes(data[start:half]))
            self.wfile.flush()
            time.sleep(stall)
            start = half
        self.wfile.write(bytes(data[start:]))


class Server(ThreadingHTTPServer):
    request_queue_size = 1024  # listen() backlog: the default 5 drops SYNs at 64 clients
    daemon_threads = True


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Hub)
    print("PORT %d" % server.server_port, flush=True)
    server.serve_forever()
