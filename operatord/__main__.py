"""`python -m operatord` runs the CLI."""

from operatord.cli import main

main()
