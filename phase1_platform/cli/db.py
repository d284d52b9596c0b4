"""``phase1 db``: manage the store's schema (Alembic migrations)."""

from __future__ import annotations

import argparse

from ._args import add_command, add_database_url


def add_parser(sub) -> None:
    p = add_command(
        sub, "db", run,
        help="database schema: upgrade, current",
        description="Manage the schema of the store of record. The database is "
        "--database-url, else DATABASE_URL, else sqlite:///phase1.sqlite in the working "
        "directory.",
    )
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("upgrade", "migrate the schema to the latest revision"),
                       ("current", "print the schema revision of the database")):
        a = actions.add_parser(name, help=text, description=text)
        add_database_url(a)


def run(args: argparse.Namespace) -> int:
    from ..storage import Store

    store = Store.from_url(args.database_url, migrate=False)
    if args.action == "upgrade":
        before = store.current_revision()
        head = store.upgrade()
        state = "already at" if before == head else f"upgraded from {before or 'empty'} to"
        print(f"database {store.masked_url}: {state} revision {head} (head)")
    else:
        current = store.current_revision()
        head = store.head_revision()
        note = "head" if current == head else f"behind head {head}: run phase1 db upgrade"
        print(f"database {store.masked_url}: revision {current or 'none'} ({note})")
    store.dispose()
    return 0
