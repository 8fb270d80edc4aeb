"""The review workspace: `serve` (the web application), `users` (accounts, API tokens) and
`assign` (who reviews which sampled call)."""
from __future__ import annotations

import sys

import click

from qa_inspect.cli.common import CONTEXT, fail, open_existing_store, store_errors
from qa_inspect.cli.config import config_option
from qa_inspect.errors import QAError

DB_HELP = ("Results database: the SQLite file written by `run`, or a postgresql:// URL "
           "(default: the config's db, else qa.db).")


def _db(db: str | None, config_path: str | None) -> str:
    """--db, else the config file's ``db``, else qa.db (as the other commands)."""
    from qa_inspect.cli.config import load_config

    if db:
        return db
    try:
        return load_config(config_path).db or "qa.db"
    except QAError as e:
        fail(e)
        raise  # unreachable: fail exits

ROLES = ("reviewer", "supervisor", "agent", "admin")


def register(main: click.Group) -> None:
    """Add this module's commands to the ``qa-inspect`` group."""
    main.add_command(serve)
    main.add_command(users)
    main.add_command(assign)


@click.command(context_settings=CONTEXT)
@click.option("--db", default=None, help=DB_HELP)
@config_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Keep 127.0.0.1 behind a reverse proxy; 0.0.0.0 exposes it to the network.")
@click.option("--port", default=8765, show_default=True, type=click.IntRange(1, 65535))
@click.option("--audio-root", default=".", show_default=True, type=click.Path(file_okay=False),
              help="Folder that relative audio paths in the database are read from (where `run` was started).")
@click.option("--appeal-window-days", default=7, show_default=True, type=click.IntRange(0, 365),
              help="Agents may appeal a call this many days after it.")
@click.option("--appeal-limit", default=2, show_default=True, type=click.IntRange(1, 20),
              help="Appeals allowed per call.")
@click.option("--appeal-levels", default=1, show_default=True, type=click.IntRange(1, 2),
              help="2: a first supervisor's decision is an opinion; a second supervisor decides.")
def serve(db, config_path, host, port, audio_root, appeal_window_days, appeal_limit, appeal_levels):
    """Run the review workspace (复核工作台): queue, call page with synced audio, appeals, JSON API.

    Sessions are signed with QA_INSPECT_SECRET when set (else a random key: a restart logs
    everyone out). Create accounts first with `qa-inspect users add`."""
    import logging
    import os

    db = _db(db, config_path)
    open_existing_store(db).close()  # a missing file or unreachable server: one line, exit 2
    try:
        import uvicorn

        from qa_inspect.web.app import create_app
    except ImportError as e:
        fail(QAError(f"复核工作台缺少依赖包 {e.name} / the web workspace needs its packages ({e.name}): pip install qa-inspect"))
    if host not in ("127.0.0.1", "localhost", "::1"):
        click.echo(f"warning: listening on {host}: anyone who can reach this address sees the login page; "
                   "put it behind an HTTPS reverse proxy", err=True)
    try:
        app = create_app(db, secret=os.environ.get("QA_INSPECT_SECRET") or None, audio_root=audio_root,
                         appeal_window_days=appeal_window_days, appeal_limit=appeal_limit,
                         appeal_levels=appeal_levels)
    except QAError as e:
        fail(e)
    click.echo(f"qa-inspect workspace on http://{host}:{port}/ (Ctrl+C to stop)", err=True)
    logging.getLogger("qa_inspect").setLevel(logging.INFO)
    uvicorn.run(app, host=host, port=port, log_level="warning", proxy_headers=True, server_header=False)


@click.group(context_settings=CONTEXT)
def users():
    """Workspace accounts: add, API token, list, disable."""


@users.command("add", context_settings=CONTEXT)
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES),
              help="reviewer 质检员 · supervisor 班组长 (decides appeals) · agent 坐席 (own calls only) · admin")
@click.option("--agent-id", default="", help="For --role agent: the agent id in the manifest (e.g. A001).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (scripts).")
@click.option("--db", default=None, help=DB_HELP)
@config_option
def users_add(name, role, agent_id, password_stdin, db, config_path):
    """Create a user (or reset an existing one's role and password)."""
    from qa_inspect.workflow import accounts

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, confirmation_prompt=True)
    db = _db(db, config_path)
    store = open_existing_store(db)
    with store_errors(db, store):
        user, new = accounts.add_user(store, name, role, password, agent_id)
        click.echo(f"{'created' if new else 'updated'} {user.name} ({user.role}"
                   f"{', agent ' + user.agent_id if user.agent_id else ''})")


@users.command("token", context_settings=CONTEXT)
@click.argument("name")
@click.option("--db", default=None, help=DB_HELP)
@config_option
def users_token(name, db, config_path):
    """Print a new API token for NAME (shown once; send it as `Authorization: Bearer TOKEN`)."""
    from qa_inspect.workflow import accounts

    db = _db(db, config_path)
    store = open_existing_store(db)
    with store_errors(db, store):
        click.echo(accounts.make_token(store, name))


@users.command("list", context_settings=CONTEXT)
@click.option("--db", default=None, help=DB_HELP)
@config_option
def users_list(db, config_path):
    """List the accounts."""
    from qa_inspect.workflow import accounts

    db = _db(db, config_path)
    store = open_existing_store(db)
    with store_errors(db, store):
        for u in accounts.list_users(store):
            state = "disabled" if u.disabled else "active"
            click.echo(f"{u.name}\t{u.role}\t{u.agent_id or '-'}\t{state}\t{u.created_at}")


@users.command("disable", context_settings=CONTEXT)
@click.argument("name")
@click.option("--enable", is_flag=True, help="Enable the account again instead.")
@click.option("--db", default=None, help=DB_HELP)
@config_option
def users_disable(name, enable, db, config_path):
    """Disable an account (its sessions and tokens stop working at once)."""
    from qa_inspect.workflow import accounts

    db = _db(db, config_path)
    store = open_existing_store(db)
    with store_errors(db, store):
        u = accounts.set_disabled(store, name, not enable)
        click.echo(f"{u.name}: {'disabled' if u.disabled else 'enabled'}")


@click.command(context_settings=CONTEXT)
@click.argument("sample_id")
@click.option("--reviewers", default="", help="Comma-separated reviewers: the sample's calls go round-robin to them.")
@click.option("--call", "call_id", default="", help="Assign only this call (with --reviewer).")
@click.option("--reviewer", default="", help="The reviewer for --call.")
@click.option("--db", default=None, help=DB_HELP)
@config_option
def assign(sample_id, reviewers, call_id, reviewer, db, config_path):
    """Assign a drawn sample's calls to reviewers (their workspace queue)."""
    from qa_inspect.workflow import workspace

    if bool(call_id) != bool(reviewer) or (call_id and reviewers) or not (call_id or reviewers):
        fail(QAError("请给出 --reviewers A,B（轮流分配），或 --call C 加 --reviewer R / give --reviewers A,B, or --call C with --reviewer R"))
    db = _db(db, config_path)
    store = open_existing_store(db)
    with store_errors(db, store):
        workspace.sync_index(store)
        pairs = workspace.assign(store, sample_id, reviewers.split(","), call_id=call_id, reviewer=reviewer)
        for cid, who in pairs:
            click.echo(f"{cid}\t{who}")
