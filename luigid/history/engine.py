"""Turning ``[task_history] db_connection`` into a SQLAlchemy engine, or one clear startup error.

Creating an engine loads the database driver but opens no connection, so a bad URL or a
missing driver is reported at startup while a database that is merely down is not (the
writer retries it).
"""

from __future__ import annotations

import importlib.util
from typing import Any

from luigid.config import ConfigError
from luigid.history.config import SECTION

KEY = f"[{SECTION}] db_connection"

#: driver module -> what to pip install for it
DRIVER_PACKAGES = {
    "psycopg2": "psycopg2-binary",
    "psycopg": "'psycopg[binary]'",
    "pg8000": "pg8000",
    "MySQLdb": "mysqlclient",
    "pymysql": "PyMySQL",
    "mysql": "mysql-connector-python",
    "oracledb": "oracledb",
    "cx_Oracle": "cx_Oracle",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
}


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def open_engine(db_connection: str) -> Any:
    """A SQLAlchemy Engine for ``db_connection``; raises ConfigError (one line) when it cannot be made."""
    try:
        import sqlalchemy as sa
        from sqlalchemy.pool import StaticPool
    except ImportError:
        raise ConfigError(f"{KEY}: task history needs SQLAlchemy 2: pip install 'luigid[history]'") from None
    try:
        url = sa.engine.make_url(db_connection)
    except (sa.exc.ArgumentError, ValueError):
        raise ConfigError(f"{KEY}: not a database URL (expected e.g. sqlite:///luigi-task-hist.db)") from None

    shown = url.render_as_string(hide_password=True)
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.drivername == "postgresql" and (_has_module("psycopg2") or not _has_module("psycopg")):
        # SQLAlchemy 2.1 made psycopg 3 the default; luigi setups (and our extra) use psycopg2.
        url = url.set(drivername="postgresql+psycopg2")
    if url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:"):
        # One shared connection, or every thread would see its own empty in-memory database.
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    try:
        return sa.create_engine(url, **kwargs)
    except ModuleNotFoundError as exc:
        module = (exc.name or "").split(".")[0]
        package = DRIVER_PACKAGES.get(module, module or "the database driver")
        raise ConfigError(
            f"{KEY}: the {url.get_backend_name()} driver ({module}) is not installed: pip install {package}"
        ) from None
    except sa.exc.NoSuchModuleError:
        raise ConfigError(f"{KEY}: unknown database kind {url.drivername!r} in {shown}") from None
    except (sa.exc.ArgumentError, ValueError, TypeError) as exc:
        raise ConfigError(f"{KEY}: bad database URL {shown}: {exc}") from None


def describe_db_error(exc: BaseException) -> str:
    """One line for logs and error pages: database errors otherwise carry the full SQL statement."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"
