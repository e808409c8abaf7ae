"""Only the optional C extension lives here; everything else is in pyproject.toml.

`redtest.proxy._scan` speeds up the proxy's framing; `redtest.proxy._spin` lets its
event loop busy-poll without the GIL. Without a C compiler the build goes on without
them (optional=True): the proxy uses its pure-Python paths and does not busy-poll.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("redtest.proxy._scan", ["redtest/proxy/_scan.c"], optional=True),
        Extension("redtest.proxy._spin", ["redtest/proxy/_spin.c"], optional=True),
    ]
)
