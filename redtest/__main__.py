"""`python -m redtest` is the `redtest` command."""

from redtest._entry import main

main()
