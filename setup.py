"""Only the optional C extensions live here; everything else is in pyproject.toml.

`redtest.proxy._scan` speeds up the proxy's framing; `redtest.proxy._spin` lets its
event loop busy-poll without the GIL; `redtest.proxy._relay` is the fast lane that
relays plain traffic in C while no rule is active. Without a C compiler the build goes
on without them (optional=True): the proxy uses its pure-Python paths.
"""

from setuptools import Extension, setup

_SCAN_H = ["redtest/proxy/_resp_scan.h"]

setup(
    ext_modules=[
        Extension("redtest.proxy._scan", ["redtest/proxy/_scan.c"], depends=_SCAN_H, optional=True),
        Extension("redtest.proxy._spin", ["redtest/proxy/_spin.c"], optional=True),
        Extension(
            "redtest.proxy._relay", ["redtest/proxy/_relay.c"], depends=_SCAN_H, optional=True
        ),
    ]
)
