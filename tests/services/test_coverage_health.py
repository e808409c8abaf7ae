"""HTTP healthchecks against answers urllib refuses to read, through the real CLI.

An app that listens before it speaks HTTP (or a port where something else answers),
and a healthcheck path with a space or a non-ASCII letter, used to end the run as an
internal error (exit 4, "this is a bug in redtest") instead of a service that is not
ready (exit 3) or a run that passes.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from process_support import processes_under

NOT_HTTP = """\
import os, socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"])))
s.listen()
while True:
    c, _ = s.accept()
    c.recv(1000)
    c.sendall(b"garbage here\\r\\n\\r\\n")
    c.close()
"""

ECHO_PATH = """\
import os
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(self.path.encode())
    def log_message(self, *args):
        print("GET", self.path, flush=True)
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"""


def _suite(tmp_path: Path, script: str, health_path: str, steps: str = "      - sleep: 1ms\n") -> Path:
    (tmp_path / "app.py").write_text(script)
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "version: 1\nservices:\n  app:\n    command: [python3, app.py]\n"
        '    env: {PORT: "${self.api.port}"}\n'
        "    interfaces: {api: {protocol: http, port: 8080}}\n"
        f"    healthcheck: {{http: {json.dumps(health_path)}, timeout: 1500ms}}\n"
        f"scenarios:\n  t1:\n    steps:\n{steps}"
    )
    return suite


def test_an_answer_that_is_not_http_is_a_service_not_ready(cli, tmp_path: Path) -> None:
    suite = _suite(tmp_path, NOT_HTTP, "/health")
    report = tmp_path / "r.json"
    result = cli(["run", str(suite), "--json", str(report)])
    assert result.returncode == 3, result.stdout + result.stderr
    assert "internal error" not in result.stderr
    test = json.loads(report.read_text())["tests"][0]
    assert test["status"] == "error"
    assert "service 'app' (runtime process) did not become ready: GET http://127.0.0.1:" in test["error"]
    assert "last seen: an answer that is not HTTP (BadStatusLine: 'garbage here')" in test["error"]
    assert test["error"].startswith(f"{suite}:3:3: ")
    assert processes_under(tmp_path, exact=True) == []


@pytest.mark.parametrize("path", ["/santé", "/health?q=a b"])
def test_a_healthcheck_path_is_percent_encoded_as_the_steps_are(cli, tmp_path: Path, path: str) -> None:
    """The step client (requests) encodes such paths; the healthcheck must reach the same URL."""
    steps = f"      - app.api.get: {{path: {json.dumps(path)}}}\n"
    suite = _suite(tmp_path, ECHO_PATH, path, steps)
    report = tmp_path / "r.json"
    result = cli(["run", str(suite), "--json", str(report)])
    assert result.returncode == 0, result.stdout + result.stderr
    test = json.loads(report.read_text())["tests"][0]
    expected = {"/santé": "/sant%C3%A9", "/health?q=a b": "/health?q=a%20b"}[path]
    assert test["steps"][0]["response"]["data"] == expected
    assert processes_under(tmp_path, exact=True) == []
