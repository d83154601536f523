"""The ``claimwatch`` command line. Thin: every command calls library code.

Errors from the library become one-line ``click.ClickException`` messages
(exit 1), never tracebacks.

Each module of this package holds a group of commands and lists them in its
``COMMANDS``; :data:`COMMAND_MODULES` names the modules. A new command is a module
and one line there.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

#: The modules of claimwatch/cli/ whose ``COMMANDS`` make the command line.
COMMAND_MODULES = (
    "crawl",  # crawl
    "digest",  # digest [--email]
    "review",  # review, claims, serve
    "search",  # search, export
    "notify",  # notify
    "users",  # users
    "db",  # db upgrade|current|check
    "daemon",  # daemon
    "worker",  # worker, enqueue
    "rematch",  # rematch
    "explain",  # explain
)


def _configure_logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for handler in logging.getLogger().handlers:
        handler.setLevel(level)  # Scrapy sets its own loggers to DEBUG: filter at the handler
    if verbose < 2:
        for noisy in ("scrapy", "twisted", "trafilatura", "htmldate", "courlan", "filelock"):
            logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True, help="More logging (-v info, -vv debug).")
@click.version_option(package_name="claimwatch")
def main(verbose: int) -> None:
    """claimwatch: watch news coverage of a topic, match it to known claims, flag what is new.

    \b
    Example:
      claimwatch crawl config/topics/demo.yaml
      claimwatch digest --since 24h
    """
    _configure_logging(verbose)


def _register(group: click.Group) -> None:
    for name in COMMAND_MODULES:
        for command in importlib.import_module(f"{__name__}.{name}").COMMANDS:
            group.add_command(command)


_register(main)
