"""Fixtures for the report tests: the sample run of redtest.report.demo, in fresh copies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from redtest.report.demo import sample_run
from redtest.results import RunResult


@pytest.fixture
def run() -> RunResult:
    """passed, failed (fault scenario with a slow step), error (with app output), skipped, matrix cells."""
    return sample_run()


@pytest.fixture
def clean_run() -> RunResult:
    """Only the passing test: a green run."""
    r = sample_run()
    r.tests = r.tests[:1]
    r.matrix = False
    return r


@pytest.fixture(scope="session")
def junit_xsd() -> Path:
    """The shared JUnit XSD beside the clone (<clone>/../shared/junit/), else the vendored copy."""
    here = Path(__file__).resolve().parent
    shared = here.parents[1] / ".." / "shared" / "junit" / "junit-10.xsd"
    return shared if shared.is_file() else here / "junit-10.xsd"


def find_chromium() -> str | None:
    """A headless-capable Chromium on PATH (CI installs Debian's `chromium`), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None
