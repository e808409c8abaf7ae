"""`python -m redtest` is the `redtest` command."""

from redtest.cli import main

main()
