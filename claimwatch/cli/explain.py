"""``claimwatch explain URL_OR_ARTICLE_ID``: why an article was stored, matched and flagged
as it was, or why a URL was not stored (the report: claimwatch/explain.py)."""

from __future__ import annotations

from pathlib import Path

import click

from claimwatch.cli.common import db_option, store, user_errors
from claimwatch.explain import explain_article, explain_lines, explain_url, target_topic


@click.command("explain")
@click.argument("target", metavar="URL_OR_ARTICLE_ID")
@click.option("--topic-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The topic file (default: the one in config/topics/ naming the article's "
                   "topic).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@db_option
@user_errors
def explain_command(target: str, topic_file: Path | None, as_json: bool,
                    db_url: str | None) -> None:
    """Say why an article was stored, matched and flagged as it was, or why it was not stored.

    \b
    Example:
      claimwatch explain 12
      claimwatch explain https://example.org/2022/12/story.html --topic-file config/topics/demo.yaml
    """
    import json

    from claimwatch.cli.review import _find_topic_file
    from config.loader import load_topic

    with store(db_url) as sessions:
        if topic_file is None:
            name = target_topic(sessions, target)
            if name is None:
                raise click.ClickException(
                    f"{target} is not in the store: pass --topic-file to ask the topic why")
            topic_file = _find_topic_file(name, [Path("config/topics")])
        topic = load_topic(topic_file)
        report = (explain_article(sessions, topic, int(target)) if target.isdigit()
                  else explain_url(sessions, topic, target))
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        click.echo("\n".join(explain_lines(report)))


COMMANDS = (explain_command,)
