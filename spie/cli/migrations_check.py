"""CI check of the migrations on a scratch database.

``python -m spie.cli.migrations_check [URL]``: single head, upgrade from empty, models equal
migrations (``alembic check``), downgrade to base, upgrade again. The database is emptied first.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[2]


def _config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def _empty(url: str) -> None:
    if url.startswith("postgresql"):
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.execute(text("DROP SCHEMA public CASCADE"))
            connection.execute(text("CREATE SCHEMA public"))
        engine.dispose()


def check(url: str) -> None:
    config = _config(url)
    heads = ScriptDirectory.from_config(config).get_heads()
    if len(heads) != 1:
        raise SystemExit(f"expected a single migration head, found {heads}")
    _empty(url)
    command.upgrade(config, "head")
    command.check(config)
    command.downgrade(config, "base")
    command.upgrade(config, "head")
    command.check(config)
    print(f"migrations OK on {url.split('@')[-1]}: single head {heads[0]}, round trip clean")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1]:
        check(sys.argv[1])
        return
    with tempfile.TemporaryDirectory() as tmp:
        check(f"sqlite:///{tmp}/migrations-check.sqlite3")


if __name__ == "__main__":
    main()
