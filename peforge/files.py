"""Writing files so a reader never sees a part: the one atomic write every module uses."""

from __future__ import annotations

import os
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
