"""Where a study lives: a journal file in the study folder, or any Optuna database URL,
and the folder's manifest (``study.json``) that says which, so reports can reopen it."""

from __future__ import annotations

import fcntl
import json
import os
import re
from pathlib import Path
from typing import Any

import optuna

from ...files import write_atomic

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
        with open(self.path, "ab") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                f.write(data)
                f.flush()
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def sync(self) -> None:
        """fsync the file (at the end of a sweep)."""
        with open(self.path, "ab") as f:
            os.fsync(f.fileno())


def hide_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages)."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def check_url(url: str) -> None:
    """A storage URL peforge can open: a database URL SQLAlchemy understands, ``ValueError`` otherwise."""
    scheme = url.split("://", 1)[0].split("+", 1)[0] if "://" in url else ""
    if scheme not in RDB_SCHEMES:
        raise ValueError(f"--storage {hide_password(url)}: not a database URL; use e.g. "
                         f"postgresql://user:pass@host/db or sqlite:///path/study.db")


def open_storage(spec: str, folder: Path) -> optuna.storages.BaseStorage:
    """The storage a manifest's ``storage`` names: a journal file relative to ``folder``, or a URL.

    A database that cannot be reached raises ``ValueError`` with one line.
    """
    if "://" not in spec:
        path = (folder / spec).resolve()
        return optuna.storages.JournalStorage(JournalFile(str(path)))
    check_url(spec)
    try:
        # pool_pre_ping: a worker that waited on a long trial still finds a live connection
        return optuna.storages.RDBStorage(spec, engine_kwargs={"pool_pre_ping": True})
    except Exception as error:  # SQLAlchemy / driver errors have many types; all mean "cannot open"
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"--storage {hide_password(spec)}: cannot open ({first})") from None


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
    try:
        data = json.loads(path.read_text())
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
