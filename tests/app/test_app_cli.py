"""The application under test through `redtest run`: what a user sees when the app misbehaves."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

# An app whose /stream never ends: one chunk every 100 ms (an event stream, a log tail).
STREAMING_APP = textwrap.dedent(
    """
    import os, time
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            if self.path == "/health":
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")
                return
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"6\\r\\ndata:\\n\\r\\n")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                print("client went away", flush=True)

        def log_message(self, *args):
            pass

    ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
    """
)

SUITE = textwrap.dedent(
    """
    version: 1
    services:
      app:
        command: [python, app.py]
        env: {PORT: "${self.api.port}"}
        interfaces:
          api: {protocol: http, port: 8080}
        healthcheck: {http: /health, timeout: 10s}
        timeout: 500ms
    scenarios:
      stream:
        steps:
          - app.api.get: {path: /stream}
      after:
        steps:
          - app.api.get: {path: /health}
    """
)


def test_a_streaming_response_ends_at_the_step_timeout(cli, tmp_path: Path) -> None:
    """The step timeout bounds the whole HTTP call: `redtest run` used to wait forever on a
    response whose body kept trickling in (requests' timeout bounds each read only)."""
    (tmp_path / "app.py").write_text(STREAMING_APP)
    (tmp_path / "suite.yaml").write_text(SUITE)
    report = tmp_path / "report.json"
    started = time.monotonic()
    result = cli(["run", "--json", str(report), str(tmp_path / "suite.yaml")], cwd=tmp_path, timeout=60)
    assert time.monotonic() - started < 30
    assert result.returncode == 1, result.stdout + result.stderr
    tests = {t["name"]: t for t in json.loads(report.read_text())["tests"]}
    assert tests["stream"]["status"] == "failed" and tests["after"]["status"] == "passed"
    response = tests["stream"]["steps"][0]["response"]
    assert response.get("status") is None and response["ok"] is False
    assert response["error"].startswith("timed out after 0.5s: GET http://127.0.0.1:")
    assert 400 <= response["duration_ms"] < 3000
