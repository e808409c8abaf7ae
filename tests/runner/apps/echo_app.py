"""A tiny HTTP app for runner tests: echoes requests, and proves its wiring.

GET/POST/PUT/DELETE /api/echo... answer {"method", "path", "body", "json", "header"};
/api/env answers the environment variables named ECHO_*; /api/text answers text.
With UPSTREAM set, it refuses to start unless that URL answers (start order).
"""

import json
import os
import sys
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

if os.environ.get("UPSTREAM"):
    with urllib.request.urlopen(os.environ["UPSTREAM"] + "/health", timeout=2) as answer:
        assert answer.status == 200
print(f"echo app starting on {os.environ['PORT']}", flush=True)
if os.environ.get("NEVER_HEALTHY"):
    print("this app never becomes healthy", flush=True)


class Handler(BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if self.path == "/health" and not os.environ.get("NEVER_HEALTHY"):
            return self._send(200, "text/plain", "ok")
        if self.path == "/api/text":
            return self._send(200, "text/plain", "plain text")
        if self.path == "/api/env":
            env = {k: v for k, v in os.environ.items() if k.startswith("ECHO_")}
            return self._send(200, "application/json", json.dumps(env))
        if self.path.startswith("/api/"):
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            status = int(self.headers.get("X-Status", "200"))
            return self._send(status, "application/json", json.dumps({
                "method": self.command, "path": self.path, "body": body, "json": parsed,
                "header": self.headers.get("X-Test"),
            }))
        self._send(404, "text/plain", "not found")

    def _send(self, status: int, kind: str, text: str) -> None:
        data = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _answer

    def log_message(self, *args: object) -> None:
        sys.stdout.write("request: " + (args[0] % args[1:]) + "\n")  # type: ignore[operator]


ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler).serve_forever()
