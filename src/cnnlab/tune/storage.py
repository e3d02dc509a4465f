"""Where a study lives: a SQLite file in the sweep directory, or a shared database for many machines.

Optuna stores studies through SQLAlchemy (:class:`optuna.storages.RDBStorage`); cnnlab only
checks the URL first, so a typo or an unreachable server is one line naming the URL (its
password hidden), and provides :func:`claim_lock`, which makes "is the budget spent? if not,
start a trial" one atomic step across workers, so a sweep of N trials runs exactly N:

- SQLite: an ``flock`` on a file beside the database (workers share one machine's disk);
- PostgreSQL: a session-level advisory lock keyed by the study name (workers on many machines).

>>> shown_url("postgresql://me:secret@db.example:5432/sweeps")
'postgresql://me:***@db.example:5432/sweeps'
>>> check_storage_url("postgres//db")
Traceback (most recent call last):
...
cnnlab.errors.CnnlabError: storage URL 'postgres//db' is malformed; expected sqlite:///PATH/study.db or postgresql://USER@HOST[:PORT]/DATABASE
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path
from typing import Iterator

from cnnlab.errors import CnnlabError

STUDY_FILE = "study.db"
FORMS = "sqlite:///PATH/study.db or postgresql://USER@HOST[:PORT]/DATABASE"
BACKENDS = ("sqlite", "postgresql", "mysql")


def require_optuna() -> None:
    """One line naming the extra to install, instead of an ImportError deep inside a sweep."""
    try:
        import optuna  # noqa: F401
    except ModuleNotFoundError:
        raise CnnlabError("sweeps run on Optuna, which is not installed: pip install 'cnnlab[sweep]' "
                          "(Optuna and the PostgreSQL driver)") from None


def default_storage_url(sweep_dir: str | os.PathLike) -> str:
    """The SQLite file inside the sweep directory (an absolute path, so workers anywhere find it)."""
    return f"sqlite:///{Path(sweep_dir).absolute() / STUDY_FILE}"


def shown_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (for messages and files)."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # a malformed URL is shown as given (it holds no parseable password)
        return url


def check_storage_url(url: str) -> str:
    """Parse ``url``; return its backend (``sqlite``/``postgresql``/``mysql``) or raise one line."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise CnnlabError(f"storage URL '{shown_url(url)}' is malformed; expected {FORMS}") from None
    backend = parsed.get_backend_name()
    if backend not in BACKENDS:
        raise CnnlabError(f"storage URL '{shown_url(url)}' names the backend '{backend}'; cnnlab sweeps use "
                          f"{FORMS}")
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise CnnlabError(f"storage URL '{url}' names no file; an in-memory database cannot be shared by "
                              "workers: use sqlite:///PATH/study.db")
        folder = Path(parsed.database).absolute().parent
        if not folder.is_dir():
            raise CnnlabError(f"storage URL '{url}': the folder {folder} does not exist; create it or choose "
                              "another path")
    elif not parsed.host and not parsed.query.get("host"):
        raise CnnlabError(f"storage URL '{shown_url(url)}' names no host; expected {FORMS}")
    return backend


def driver_advice(backend: str) -> str:
    """How to get the missing database driver: the sweep extra ships PostgreSQL's only.

    >>> driver_advice("mysql")
    "cnnlab's extras ship no MySQL driver: pip install pymysql and name it in the URL, mysql+pymysql://USER@HOST/DATABASE"
    """
    if backend == "mysql":
        return ("cnnlab's extras ship no MySQL driver: pip install pymysql and name it in the URL, "
                "mysql+pymysql://USER@HOST/DATABASE")
    return "install the database driver (pip install 'cnnlab[sweep]')"


def open_storage(url: str):
    """An :class:`optuna.storages.RDBStorage` on ``url``; a server that does not answer is one line."""
    import optuna
    from sqlalchemy.exc import SQLAlchemyError

    backend = check_storage_url(url)
    # SQLite: wait up to a minute for another worker's write instead of failing at once.
    # PostgreSQL: give up on a silent host after 10 s rather than the OS's minutes.
    connect_args = {"timeout": 60} if backend == "sqlite" else {"connect_timeout": 10} if backend == "postgresql" else {}
    check_study_schema(url, backend, connect_args)  # before Optuna adds its tables to someone's database
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs={"connect_args": connect_args})
    except (SQLAlchemyError, ImportError, OSError, RuntimeError, ValueError) as exc:
        reason = getattr(exc, "orig", None) or exc
        text = " ".join(str(reason).split())
        if isinstance(exc, (ImportError, ModuleNotFoundError)):
            text = f"{text}; {driver_advice(backend)}"
        raise CnnlabError(f"cannot open the study storage {shown_url(url)}: {text[:300]}") from None


OPTUNA_TABLES = {"studies", "trials", "version_info"}  # present in every schema Optuna has made


def check_study_schema(url: str, backend: str, connect_args: dict) -> None:
    """Refuse a database that holds tables but not Optuna's: a sweep never writes into another app's data.

    An empty database (or a SQLite file that does not exist yet) is fine, and so is one Optuna made.
    """
    from sqlalchemy import create_engine, inspect
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    if backend == "sqlite":
        database = make_url(url).database
        if not database or database == ":memory:" or not Path(database).exists():
            return
        if Path(database).is_dir():
            raise CnnlabError(f"--storage {shown_url(url)}: {database} is a folder; name a database file")
    try:
        engine = create_engine(url, connect_args=connect_args)
    except (SQLAlchemyError, ImportError, ValueError):
        return  # RDBStorage reports the driver or URL problem in its own words
    try:
        with engine.connect() as conn:
            tables = set(inspect(conn).get_table_names())
    except SQLAlchemyError as exc:
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())[:200]
        raise CnnlabError(f"cannot open the study storage {shown_url(url)}: {reason}") from None
    finally:
        engine.dispose()
    if tables and not OPTUNA_TABLES <= tables:
        shown = ", ".join(sorted(tables)[:4]) + (", ..." if len(tables) > 4 else "")
        raise CnnlabError(f"--storage {shown_url(url)} holds {len(tables)} other table(s) ({shown}) and no Optuna "
                          "study: a sweep adds its tables only to an empty database or one Optuna made; "
                          "name a new database")


@contextlib.contextmanager
def claim_lock(storage, url: str, study_name: str) -> Iterator[None]:
    """Hold a lock shared by every worker of ``study_name`` on ``url`` (see the module docstring)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        lock_file = Path(parsed.database).absolute().with_suffix(".claim-lock")
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock
    elif backend == "postgresql":
        from sqlalchemy import text

        # A signed 64-bit key from the study name: every worker of this study agrees on it.
        key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
        with storage.engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
    else:  # MySQL and others: Optuna's own row locking; a surplus trial is possible but harmless
        yield
