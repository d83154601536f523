"""``claimwatch users``: named accounts of the review page, their roles and API tokens."""

from __future__ import annotations

import sys

import click

from claimwatch.cli.common import db_option, store, user_errors

password_stdin_option = click.option("--password-stdin", is_flag=True,
                                     help="Read the password from standard input.")


def _password(stdin: bool) -> str:
    if stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group()
def users() -> None:
    """Accounts of the review page: once one exists, everybody signs in.

    \b
    Example:
      claimwatch users add alice --role admin
      claimwatch users token alice --label ci
    """


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["reviewer", "admin"]), default="reviewer",
              show_default=True, help="admin may also start crawls from the page.")
@password_stdin_option
@db_option
@user_errors
def users_add(name: str, role: str, password_stdin: bool, db_url: str | None) -> None:
    """Add an account (the password is asked twice, or read with --password-stdin).

    \b
    Example:
      claimwatch users add alice --role admin
      printf '%s\\n' "$PASSWORD" | claimwatch users add bot --password-stdin
    """
    from claimwatch.accounts import add_user

    with store(db_url) as sessions:
        account = add_user(sessions, name, _password(password_stdin), role)
    click.echo(f"user {account.name} added ({account.role}); the review page now asks "
               "everybody to sign in")


@users.command("passwd")
@click.argument("name")
@password_stdin_option
@db_option
@user_errors
def users_passwd(name: str, password_stdin: bool, db_url: str | None) -> None:
    """Set an account's password."""
    from claimwatch.accounts import set_password

    with store(db_url) as sessions:
        set_password(sessions, name, _password(password_stdin))
    click.echo(f"password of {name} changed")


@users.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(["reviewer", "admin"]))
@db_option
@user_errors
def users_role(name: str, role: str, db_url: str | None) -> None:
    """Change an account's role."""
    from claimwatch.accounts import set_role

    with store(db_url) as sessions:
        set_role(sessions, name, role)
    click.echo(f"{name} is now {role}")


@users.command("remove")
@click.argument("name")
@db_option
@user_errors
def users_remove(name: str, db_url: str | None) -> None:
    """Remove an account and its API tokens (its review history stays)."""
    from claimwatch.accounts import remove_user

    with store(db_url) as sessions:
        remove_user(sessions, name)
    click.echo(f"user {name} removed")


@users.command("list")
@db_option
@user_errors
def users_list(db_url: str | None) -> None:
    """The accounts, their roles and how many API tokens each has."""
    from claimwatch.accounts import list_users

    with store(db_url) as sessions:
        rows = list_users(sessions)
    if not rows:
        click.echo("no accounts: the review page answers this machine only (loopback)")
        return
    for account, created, tokens in rows:
        click.echo(f"{account.name:<24} {account.role:<9} since {created:%Y-%m-%d}  "
                   f"{tokens} API token{'s' if tokens != 1 else ''}")


@users.command("token")
@click.argument("name")
@click.option("--label", default="api", show_default=True, help="What the token is for.")
@click.option("--revoke", is_flag=True, help="Revoke every token of NAME instead.")
@db_option
@user_errors
def users_token(name: str, label: str, revoke: bool, db_url: str | None) -> None:
    """Make an API token for NAME (shown once), or revoke them all.

    Send it as `Authorization: Bearer TOKEN` to the page's JSON and the daemon's API.
    """
    from claimwatch.accounts import create_token, revoke_tokens

    with store(db_url) as sessions:
        if revoke:
            click.echo(f"{revoke_tokens(sessions, name)} token(s) of {name} revoked")
            return
        token = create_token(sessions, name, label)
    click.echo(token)
    click.echo(f"(API token of {name}, {label}: shown once, keep it safe)", err=True)


COMMANDS = (users,)
