"""The ``claimwatch`` command line. Thin: every command calls library code.

Errors from the library become one-line ``click.ClickException`` messages
(exit 1), never tracebacks.

Each module of this package holds a group of commands and lists them in its
``COMMANDS``; :data:`COMMAND_MODULES` names each command's module. A new command is a
module and one line there. A command's module is imported only when that command runs
(or ``--help`` lists them all): ``claimwatch digest`` does not import the crawler, the
claims matcher or the web app, and starts in a fraction of the time.
"""

from __future__ import annotations

import importlib
import logging
import sys

import click

#: Each command and the module of claimwatch/cli/ that holds it (in its ``COMMANDS``).
COMMAND_MODULES = {
    "crawl": "crawl",
    "digest": "digest",  # digest [--email]
    "review": "review",
    "claims": "review",
    "serve": "review",
    "search": "search",
    "export": "search",
    "notify": "notify",
    "users": "users",
    "db": "db",  # db upgrade|current|check
    "daemon": "daemon",
    "worker": "worker",
    "enqueue": "worker",
    "rematch": "rematch",
    "explain": "explain",
}


class LazyGroup(click.Group):
    """A group that imports a command's module when the command is asked for."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMAND_MODULES)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMAND_MODULES.get(cmd_name)
        if module is None:
            return None
        commands = importlib.import_module(f"{__name__}.{module}").COMMANDS
        return next(c for c in commands if c.name == cmd_name)


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


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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

