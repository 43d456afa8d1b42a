"""Where a study lives: a journal file in the study folder, or any Optuna database URL,
and the folder's manifest (``study.json``) that says which, so reports can reopen it."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import optuna

from ...files import read_input, write_atomic

MANIFEST = "study.json"
JOURNAL = "study.log"  # optuna-dashboard opens it directly: `optuna-dashboard results/<study>/study.log`
RDB_SCHEMES = ("sqlite", "postgresql", "mysql", "oracle", "mssql")


class JournalFile(optuna.storages.journal.JournalFileBackend):
    """Optuna's journal file, with appends serialized by an ``fcntl`` lock on the file itself.

    The kernel drops the lock when its holder dies, so a worker killed with SIGKILL never
    leaves a lock file behind for the next run to wait out. Appends are flushed to the
    operating system but not fsynced one by one (that cost a millisecond per write, most of
    a trial): a killed process loses nothing; a power cut may lose the last trials, which
    :func:`sync` narrows to the time since the last call.
    """

    def __init__(self, path: str):
        super().__init__(path)
        self.path = path

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        data = ("\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n").encode()
        try:
            with open(self.path, "ab") as f:
                fcntl.flock(f, fcntl.LOCK_EX)
                try:
                    f.write(data)
                    f.flush()
                finally:
                    fcntl.flock(f, fcntl.LOCK_UN)
        except OSError as error:  # a full disk: name the journal, and how to go on
            raise OSError(error.errno, f"{error.strerror or error}; every trial before the failed write is kept: "
                          f"free space, then `peforge sweep --out {Path(self.path).parent} --resume`",
                          self.path) from None

    def sync(self) -> None:
        """fsync the file (at the end of a sweep)."""
        with open(self.path, "ab") as f:
            os.fsync(f.fileno())


def hide_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def without_password(url: str) -> str:
    """``url`` with its password removed: what a manifest may keep on disk. The server then
    takes the password from the URL given again (``--storage``) or, for PostgreSQL, from the
    ``PGPASSWORD`` environment variable or ``~/.pgpass`` (libpq's own rules)."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1@", url)


# Database drivers the project installs (pip extra `postgres`): SQLAlchemy 2.1 maps a bare
# postgresql:// to psycopg 3, which is the one the extra brings.
_DRIVERS = {"postgresql": ("psycopg", "pip install 'peforge[postgres]'")}


def check_url(url: str) -> None:
    """A storage URL peforge can open: a database URL SQLAlchemy understands, ``ValueError`` otherwise."""
    scheme, _, rest = url.partition("://") if "://" in url else ("", "", "")
    dialect, _, driver = scheme.partition("+")
    if dialect not in RDB_SCHEMES:
        raise ValueError(f"--storage {hide_password(url)}: not a database URL; use e.g. "
                         f"postgresql://user@host/db or sqlite:///path/study.db")
    if dialect == "sqlite" and rest in ("", "/", "/:memory:", ":memory:"):
        raise ValueError(f"--storage {url}: an in-memory database ends with the process; give a file "
                         f"(sqlite:///path/study.db) or leave --storage out for the study folder's journal")
    if dialect in _DRIVERS and not driver:
        module, install = _DRIVERS[dialect]
        try:
            __import__(module)
        except ImportError:
            raise ValueError(f"--storage {hide_password(url)}: the {module} driver is not installed "
                             f"({install})") from None


def open_storage(spec: str, folder: Path) -> optuna.storages.BaseStorage:
    """The storage a manifest's ``storage`` names: a journal file relative to ``folder``, or a URL.

    A database that cannot be reached raises ``ValueError`` with one line; a damaged journal
    too (see :func:`check_journal`).
    """
    if "://" not in spec:
        path = (folder / spec).resolve()
        check_journal(path)
        return optuna.storages.JournalStorage(JournalFile(str(path)))
    check_url(spec)
    try:
        # pool_pre_ping: a worker that waited on a long trial still finds a live connection
        return optuna.storages.RDBStorage(spec, engine_kwargs={"pool_pre_ping": True})
    except Exception as error:  # SQLAlchemy / driver errors have many types; all mean "cannot open"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        hint = " (no password in the URL: set PGPASSWORD or give --storage with it)" \
            if "password" in first.lower() and spec == without_password(spec) else ""
        raise ValueError(f"--storage {hide_password(spec)}: cannot open ({first}){hint}") from None


# --- journal integrity ---------------------------------------------------------------------------

def journal_damage(path: Path) -> tuple[int, int]:
    """``(good, size)``: the journal's first ``good`` bytes are complete records (one JSON object
    per line, each ending in a newline); ``good < size`` means a damaged tail (a full disk or a
    truncated copy cut a record, or garbage follows). A missing file is ``(0, 0)``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return 0, 0
    good = 0
    while good < len(data):
        end = data.find(b"\n", good)
        if end < 0:
            break
        try:
            record = json.loads(data[good:end])
        except (json.JSONDecodeError, UnicodeDecodeError):
            break
        if not isinstance(record, dict):
            break
        good = end + 1
    return good, len(data)


def journal_has_trials(path: Path) -> bool:
    """Whether the journal records any trial (a start interrupted before its first trial has none)."""
    from optuna.storages.journal._storage import JournalOperation

    try:
        with open(path, "rb") as f:
            for line in f:
                try:
                    if json.loads(line).get("op_code") == JournalOperation.CREATE_TRIAL:
                        return True
                except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                    return True  # damaged: not ours to discard
    except FileNotFoundError:
        return False
    return False


class DamagedJournal(ValueError):
    """A journal whose tail is not complete records; the message names the file and the offset."""


def check_journal(path: Path) -> None:
    """Raise :class:`DamagedJournal` (one line: file, byte offset, how to repair) if ``path`` has a damaged tail."""
    good, size = journal_damage(path)
    for _ in range(3):  # a tail that grows is another worker's append in progress, not damage
        if good == size:
            return
        time.sleep(0.1)
        again = journal_damage(path)
        if again[1] == size:
            break
        good, size = again
    if good < size:
        raise DamagedJournal(f"{path}: damaged after byte {good} of {size} (a cut or garbage record); "
                             f"every trial before it is intact: `peforge sweep --out {Path(path).parent} --resume` "
                             f"repairs it, keeping a backup")


def repair_journal(path: Path) -> Path | None:
    """Cut a damaged tail off ``path`` (after copying the whole file to ``<path>.damaged-N``); returns
    the backup, or ``None`` when the journal was intact. Complete records are never touched."""
    good, size = journal_damage(path)
    if good == size:
        return None
    n = 1
    while Path(f"{path}.damaged-{n}").exists():
        n += 1
    backup = Path(f"{path}.damaged-{n}")
    shutil.copy2(path, backup)
    with open(path, "r+b") as f:
        f.truncate(good)
        f.flush()
        os.fsync(f.fileno())
    return backup


def close_storage(storage: optuna.storages.BaseStorage) -> None:
    """Sync a journal file; drop a database storage's connections (before forking workers, and when done)."""
    backend = getattr(storage, "_backend", None)
    if isinstance(backend, JournalFile):
        backend.sync()
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file renamed into place."""
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a study folder (``ValueError`` if the folder holds no study)."""
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise ValueError(f"{folder}: not a study folder (no {MANIFEST}); run `peforge sweep --out {folder}` first")
    try:
        data = json.loads(read_input(path, "study manifest"))
    except FileNotFoundError:
        raise ValueError(f"{folder}: not a study folder (no {MANIFEST}); run `peforge sweep --out {folder}` first") \
            from None
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    for key in ("study", "storage", "space", "workload"):
        if key not in data:
            raise ValueError(f"{path}: missing key {key!r}; not written by peforge sweep")
    return data


def load_study(folder: Path, manifest: dict[str, Any] | None = None) -> optuna.Study:
    """Open the study of a study folder, read-only use (no sampler needed)."""
    manifest = manifest or read_manifest(folder)
    storage = open_storage(manifest["storage"], Path(folder))
    try:
        return optuna.load_study(study_name=manifest["study"], storage=storage)
    except KeyError:
        raise ValueError(f"{folder}: the storage holds no study named {manifest['study']!r}") from None
