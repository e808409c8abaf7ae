"""How the runner wires an application: sqlite paths and the ports of http interfaces."""

from __future__ import annotations

import json
import os
from pathlib import Path

# Writes what it was told, then serves HTTP on PORT until stopped.
ECHO_ENV = """\
import json, os, sys
from http.server import HTTPServer, SimpleHTTPRequestHandler
json.dump({k: v for k, v in os.environ.items() if k.startswith("T_")}, open(sys.argv[1], "w"))
HTTPServer(("127.0.0.1", int(os.environ["PORT"])), SimpleHTTPRequestHandler).serve_forever()
"""


def test_sqlite_templates_give_an_absolute_path(cli, tmp_path: Path) -> None:
    # The suite sits in project/suites/, redtest runs from elsewhere/, the app in /tmp-ish
    # workdir: every one of them must name project/suites/data/app.db.
    project = tmp_path / "project" / "suites"
    project.mkdir(parents=True)
    (project / "app.py").write_text(ECHO_ENV)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    appdir = tmp_path / "appdir"
    appdir.mkdir()
    seen = tmp_path / "seen.json"
    (project / "suite.yaml").write_text(
        "version: 1\n"
        "services:\n"
        "  db:\n    interfaces: {main: {protocol: sqlite, path: data/app.db}}\n"
        "  app:\n"
        f"    command: [python3, {project / 'app.py'}, {seen}]\n"
        f"    workdir: {appdir}\n"
        "    env: {PORT: '${self.api.port}', T_URL: '${db.main.url}', T_ADDR: '${db.main.addr}',\n"
        "          T_HOST: '${db.main.host}', T_PORT: '${db.main.port}'}\n"
        "    interfaces: {api: {protocol: http, port: 8080}}\n"
        "    depends_on: [db]\n"
        "seeds:\n  schema:\n    - db.main.exec: {sql: 'CREATE TABLE t (x)'}\n"
        "scenarios:\n  s:\n    steps:\n      - db.main.exec: {sql: 'CREATE TABLE IF NOT EXISTS t (x)'}\n"
    )
    (project / "data").mkdir()
    report = tmp_path / "r.json"
    result = cli(["run", os.path.relpath(project / "suite.yaml", elsewhere), "--json", str(report)],
                 cwd=elsewhere)
    assert result.returncode == 0, result.stdout + result.stderr
    expected = str(project / "data" / "app.db")
    told = json.loads(seen.read_text())
    assert told == {"T_URL": expected, "T_ADDR": expected, "T_HOST": expected, "T_PORT": expected}
    db = next(s for s in json.loads(report.read_text())["services"] if s["name"] == "db")
    assert db["endpoints"] == {"main": expected}
    assert (project / "data" / "app.db").is_file()  # the step wrote the file the app was told
    assert not (elsewhere / "data").exists()


def test_http_interfaces_with_the_same_port_share_the_host_port(cli, tmp_path: Path) -> None:
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "hello.txt").write_text("from v1")
    (tmp_path / "root.txt").write_text("from root")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "version: 1\n"
        "services:\n"
        "  app:\n"
        "    command: [python3, -m, http.server, '${self.api.port}', --bind, 127.0.0.1]\n"
        "    interfaces:\n"
        "      api: {protocol: http, port: 8080, path: /v1}\n"
        "      root: {protocol: http, port: 8080}\n"
        "      admin: {protocol: http, port: 9090}\n"
        "    healthcheck: {http: /, timeout: 10s}\n"
        "scenarios:\n  s:\n    steps:\n"
        "      - app.api.get: {path: /hello.txt}\n"
        "        expect: ['assert_eq(r.data, \"from v1\")']\n"
        "      - app.root.get: {path: /root.txt}\n"
        "        expect: ['assert_eq(r.data, \"from root\")']\n"
    )
    report = tmp_path / "r.json"
    result = cli(["run", str(suite), "--json", str(report)])
    assert result.returncode == 0, result.stdout + result.stderr
    (app,) = json.loads(report.read_text())["services"]
    ends = app["endpoints"]
    assert ends["api"] == ends["root"]
    assert ends["admin"] != ends["api"]  # another declared port, another host port
