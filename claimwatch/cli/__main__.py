"""``python -m claimwatch.cli``: the ``claimwatch`` command, where no script is installed."""

from claimwatch.cli import main

main()
