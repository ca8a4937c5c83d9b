"""`hotline users ...`: sign-in accounts for the API, the agent console and the supervisor view.

    hotline users add USERNAME --role agent|supervisor|admin [--password-stdin] [--display-name NAME]
    hotline users passwd USERNAME [--password-stdin]
    hotline users list

All take `--db` like `hotline serve` (default sqlite:///./hotline.db, or HOTLINE_DB) and work while the service
runs. Passwords are never command-line arguments (they would end up in shell history and `ps`): with
`--password-stdin` the first line of standard input is the password (`printf '%s\\n' "$PW" | hotline users
add ...`); without it, the password is asked for twice on the terminal. Setting a password signs the user out
everywhere and enables the account (users created from the call-center file without a password start disabled
until one is set).
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click
from sqlalchemy import select

from callcenter_api.models import Agent, User
from callcenter_api.people import ROLES, UserExists, create_user, set_password
from hotline.cli_db import db_option, open_sessions

_stdin_option = click.option(
    "--password-stdin", is_flag=True, help="Read the password from the first line of standard input."
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise click.UsageError("--password-stdin: standard input has no password on its first line")
        return password
    if not sys.stdin.isatty():
        raise click.UsageError("no terminal to ask for the password: use --password-stdin")
    return str(click.prompt("Password", hide_input=True, confirmation_prompt=True))


@click.group(help="Users and roles: add accounts, set passwords.")
def users() -> None:
    pass


@users.command(help="Add a user (an admin, a supervisor, or an agent who signs in to the console).")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the user may do.")
@click.option("--display-name", help="Name shown in the consoles [the username].")
@_stdin_option
@db_option
def add(username: str, role: str, display_name: str | None, password_stdin: bool, db: str) -> None:
    password = _password(password_stdin)
    factory = open_sessions(db)
    try:
        with factory() as session, session.begin():
            user = create_user(session, username, password, role=role, display_name=display_name,
                               now=datetime.now(UTC))  # fmt: skip
            user_id = user.id
    except UserExists as exc:
        raise click.ClickException(f"{exc}; change its password with: hotline users passwd {username}") from None
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"added {role} {username} ({user_id})")


@users.command(help="Set a user's password (signs them out everywhere and enables the account).")
@click.argument("username")
@_stdin_option
@db_option
def passwd(username: str, password_stdin: bool, db: str) -> None:
    factory = open_sessions(db)
    with factory() as session:
        if session.scalar(select(User.id).where(User.username == username)) is None:
            raise click.ClickException(f"no user {username!r}")
    password = _password(password_stdin)
    try:
        with factory() as session, session.begin():
            user = session.scalar(select(User).where(User.username == username).with_for_update())
            if user is None:
                raise click.ClickException(f"no user {username!r}")
            set_password(session, user, password)
            was_disabled, user.disabled = user.disabled, False
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"password of {username} changed" + (" (account enabled)" if was_disabled else ""))


@users.command("list", help="Users, their roles and whether they are agents.")
@db_option
def list_(db: str) -> None:
    factory = open_sessions(db)
    with factory() as session:
        rows = session.execute(
            select(User.username, User.role, User.disabled, Agent.name)
            .outerjoin(Agent, Agent.user_id == User.id).order_by(User.username)
        ).all()  # fmt: skip
    for username, role, disabled, agent in rows:
        extras = [f"agent {agent}"] if agent else []
        extras += ["disabled"] if disabled else []
        click.echo(f"{username}\t{role}" + (f"\t({', '.join(extras)})" if extras else ""))
