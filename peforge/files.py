"""Writing files so a reader never sees a part: the one atomic write every module uses."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import Callable


def write_atomic(path: Path | str, content: str | bytes | Callable[[Path], None], *, mode: int = 0o644,
                 sync: bool = False) -> Path:
    """Write ``content`` to ``path`` through a temporary file in the same folder renamed into place,
    so ``path`` holds the old file, the new one, or nothing, never a part.

    ``content``: text, bytes, or a function that writes the file at the path it is given (for
    writers such as pandas or matplotlib). ``mode``: the file's permissions (``mkstemp`` makes
    it private). ``sync``: fsync before the rename (survives a power cut, costs a disk flush).
    The folder is created if needed; on any error the temporary file is removed.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        if callable(content):
            os.close(fd)
            content(Path(tmp))
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(content.encode() if isinstance(content, str) else content)
                if sync:
                    f.flush()
                    os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def check_folder(path: Path | str, flag: str) -> None:
    """``path`` is a writable folder or can be made one (checked before anything is written):
    ``ValueError`` naming ``flag`` and the part of the path that is in the way otherwise."""
    folder = Path(path)
    probe = folder
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise ValueError(f"{flag} {folder}: {probe} is not a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {folder}: {probe} is not writable")


INPUT_LIMIT = 4 << 20  # bytes: a design, space, preset, manifest or config.json is kilobytes


def read_input(path: Path | str, what: str, *, limit: int = INPUT_LIMIT) -> str:
    """The text of an input file, read only if it is a regular file of at most ``limit`` bytes
    (a FIFO would block, a device never end); ``ValueError`` naming the file otherwise.

    ``what`` says what the file is for the message (``design file``, ``space file`` ...).
    """
    path = Path(path)
    try:
        info = path.stat()  # follows symlinks: what would be read
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file (expected a {what})") from None
    except OSError as error:
        raise ValueError(f"{path}: cannot read the {what} ({error.strerror or error})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ValueError(f"{path}: is a folder, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path}: not a regular file (a pipe, socket or device), not a {what}")
    if info.st_size > limit:
        raise ValueError(f"{path}: {info.st_size} bytes is too large for a {what} (at most {limit})")
    try:
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except OSError as error:
        raise ValueError(f"{path}: cannot read the {what} ({error.strerror or error})") from None
    if len(data) > limit:
        raise ValueError(f"{path}: too large for a {what} (at most {limit} bytes)")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text at byte {error.start}, not a {what}") from None
