"""Only the optional C extension lives here; everything else is in pyproject.toml.

`redtest.proxy._scan` speeds up the proxy's framing. Without a C compiler the build
goes on without it (optional=True) and the proxy uses its pure-Python paths.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("redtest.proxy._scan", ["redtest/proxy/_scan.c"], optional=True),
    ]
)
