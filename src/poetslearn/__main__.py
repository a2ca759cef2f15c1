"""`python -m poetslearn` is the same as the `poetslearn` command."""

from poetslearn.cli.main import main

main()
