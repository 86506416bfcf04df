#!/usr/bin/env python3
"""A scripted OpenAI-compatible streaming server for the online `bench` tests (tests/ops_net).

POST /v1/chat/completions with "stream": true answers Server-Sent Events: one role chunk, then
max_tokens content chunks `TOKEN_DELAY` seconds apart, a usage chunk when stream_options asks for it,
and `data: [DONE]`. POST /v1/completions (a "prompt", no "messages") streams the same tokens as
`text` chunks; a request to the wrong route for its body answers 400. Every FAIL_EVERY-th request (counted from 1) answers 503 with Retry-After
instead, so the tests know exactly how many errors to expect. Args: --delay S --fail-every N.
Prints "PORT <n>" on stdout once listening; counts requests at GET /stats.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def arg(name, default):
    return type(default)(sys.argv[sys.argv.index(name) + 1]) if name in sys.argv else default


DELAY = arg("--delay", 0.002)
FAIL_EVERY = arg("--fail-every", 0)
LOCK = threading.Lock()
STATS = {"requests": 0, "failed": 0, "auth": None, "paths": {}}


class Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        body = json.dumps(STATS).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        req = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        with LOCK:
            STATS["requests"] += 1
            STATS["auth"] = self.headers.get("Authorization")
            STATS["paths"][self.path] = STATS["paths"].get(self.path, 0) + 1
            n = STATS["requests"]
            fail = FAIL_EVERY > 0 and n % FAIL_EVERY == 0
            if fail:
                STATS["failed"] += 1
        chat = self.path == "/v1/chat/completions"
        if ("messages" in req) != chat or self.path not in ("/v1/chat/completions", "/v1/completions"):
            body = b'{"error":{"message":"wrong route for this body","type":"invalid_request_error"}}'
            self.send_response(400)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if fail:
            body = b'{"error":{"message":"queue full","type":"server_error"}}'
            self.send_response(503)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(obj):
            self.wfile.write(b"data: " + json.dumps(obj).encode() + b"\n\n")
            self.wfile.flush()

        base = {"id": "cmpl-%d" % n, "model": req["model"],
                "object": "chat.completion.chunk" if chat else "text_completion"}
        if chat:
            event(dict(base, choices=[{"index": 0, "delta": {"role": "assistant"}}]))
        count = req.get("max_tokens", 16)
        for i in range(count):
            time.sleep(DELAY)
            piece = {"delta": {"content": " t%d" % i}} if chat else {"text": " t%d" % i}
            event(dict(base, choices=[dict(index=0, **piece)]))
        last = {"delta": {}} if chat else {"text": ""}
        event(dict(base, choices=[dict(index=0, finish_reason="length", **last)]))
        if req.get("stream_options", {}).get("include_usage"):
            event(dict(base, choices=[], usage={"prompt_tokens": 7, "completion_tokens": count,
                                                "total_tokens": 7 + count}))
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()


class Server(ThreadingHTTPServer):
    request_queue_size = 1024  # listen() backlog: the default 5 drops SYNs at 64 clients
    daemon_threads = True


if __name__ == "__main__":
    server = Server(("127.0.0.1", 0), Api)
    print("PORT %d" % server.server_port, flush=True)
    server.serve_forever()
