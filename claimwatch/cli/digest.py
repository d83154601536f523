"""``claimwatch digest``: the flagged articles in a format, to a file or by email."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from claimwatch.cli.common import db_option, output_option, store, user_errors, write_file


@click.command()
@click.option("--topic", help="Only this topic (its name in the topic file).")
@click.option("--since", default="24h", show_default=True,
              help="Articles fetched since: a duration (24h, 7d) or an ISO date.")
@click.option("--format", "fmt", type=click.Choice(["text", "md", "html", "json", "atom"]),
              default="text", show_default=True)
@click.option("--all", "include_reviewed", is_flag=True,
              help="Include articles already marked reviewed or dismissed.")
@db_option
@output_option
@click.option("--email", is_flag=True,
              help="Email it (HTML with a text part) over SMTP, set by CLAIMWATCH_SMTP_HOST, "
                   "_PORT, _STARTTLS, _USER, _PASSWORD, _FROM, _TO; a digest that cannot be "
                   "sent is kept and sent on the next run.")
@user_errors
def digest(topic: str | None, since: str, fmt: str, include_reviewed: bool, db_url: str | None,
           output: Path | None, email: bool) -> None:
    """Print the flagged articles: new reports, duplicates, conflicts, new-claim candidates.

    \b
    Example:
      claimwatch digest --since 24h
      claimwatch digest --topic demo-twitter-child-safety --format json
      CLAIMWATCH_SMTP_HOST=smtp.example.org ... claimwatch digest --email
    """
    from claimwatch.digest import build_digest, parse_since
    from claimwatch.digest.render import render

    with store(db_url) as sessions, sessions() as session:
        data = build_digest(session, topic=topic, since=parse_since(since),
                            include_reviewed=include_reviewed)
    if os.environ.get("CLAIMWATCH_BASE_URL") and fmt != "json":
        data["review_base"] = os.environ["CLAIMWATCH_BASE_URL"]  # items link to the page
    if email:
        click.echo(email_digest(data))
        return
    text = render(data, fmt)
    if output:
        write_file(output, [text])
    else:
        click.echo(text)


def email_digest(digest: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> str:
    """Send the digest (HTML with a text part) over SMTP, after any digest an earlier run
    could not send. A digest that cannot be sent now is kept in the outbox for the next
    run. Returns a line for the user; raises ClickException (exit 1) on failure."""
    from claimwatch.digest.mail import (
        MailConfigError,
        MailSendError,
        Outbox,
        SmtpSettings,
        deliver_digest,
        outbox_dir,
    )

    try:
        settings = SmtpSettings.from_env(environ)
    except MailConfigError as exc:
        raise click.ClickException(f"cannot email the digest: {exc}") from exc
    outbox = Outbox(outbox_dir(environ))
    try:
        result = deliver_digest(digest, settings, outbox)
    except MailSendError as exc:  # neither sent nor kept
        raise click.ClickException(f"digest not sent: {exc}") from exc
    waiting = result.waiting
    if not result.sent:
        raise click.ClickException(
            f"digest not sent: {result.error}; it is kept in {outbox.directory} and sent on "
            "the next run" + (f" with {waiting} earlier one(s)" if waiting else "")
        )
    line = f"digest sent to {', '.join(settings.recipients)}"
    if result.flushed:
        line += f", after {len(result.flushed)} earlier digest(s) from the outbox"
    if waiting:
        line += f"; {waiting} earlier digest(s) still wait in {outbox.directory}"
    return line


COMMANDS = (digest,)
