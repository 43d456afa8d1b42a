"""A folder of JSON entries written atomically and checked on every read.

An entry is ``{"schema", "key", "payload", "digest"}`` where ``digest`` is the SHA-256 of the
canonical JSON of ``payload``. A write goes to a temporary file in the same folder, is flushed
to disk and renamed over the entry (``os.replace``), so a reader sees the old entry, the new
one, or none, never a part. A read that finds anything wrong (unparsable, other schema, other
key, digest mismatch) reports a miss, and the caller recomputes and overwrites.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from ..files import write_atomic

log = logging.getLogger(__name__)


def default_dir() -> Path:
    """``$XDG_CACHE_HOME/peforge``, or ``~/.cache/peforge``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "peforge"


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def digest(data: Any) -> str:
    return hashlib.sha256(canonical(data).encode()).hexdigest()


class Store:
    """Entries of one kind under ``root``; ``schema`` is bumped when the payload changes shape."""

    def __init__(self, root: Path, schema: int):
        self.root = Path(root)
        self.schema = schema

    def path(self, name: str) -> Path:
        return self.root / f"{name}.json"

    def load(self, name: str, key: dict[str, Any]) -> dict[str, Any] | None:
        """The payload stored under ``name`` for exactly ``key``, or ``None``."""
        path = self.path(name)
        try:
            entry = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            log.warning("cache entry %s unreadable (%s): recomputing", path, error)
            return None
        if not isinstance(entry, dict) or entry.get("schema") != self.schema:
            log.info("cache entry %s has another schema: recomputing", path)
            return None
        payload = entry.get("payload")
        if entry.get("key") != key or entry.get("digest") != digest(payload):
            log.warning("cache entry %s does not match its key or digest: recomputing", path)
            return None
        return payload

    def save(self, name: str, key: dict[str, Any], payload: dict[str, Any]) -> Path:
        """Write the entry atomically and return its path."""
        text = canonical({"schema": self.schema, "key": key, "payload": payload, "digest": digest(payload)})
        return write_atomic(self.path(name), text, sync=True)
