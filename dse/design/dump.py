"""A design point as the text of a design file (the layout :func:`load_design` reads)."""

from __future__ import annotations

import json
from typing import Any


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, float):
        return repr(value)
    return str(value)


def dumps(design: dict[str, Any], comment: str = "") -> str:
    """TOML text of ``DesignPoint.to_dict()`` output; ``comment`` becomes the first lines."""
    lines = [f"# {line}" for line in comment.splitlines()]
    tables: list[tuple[str, dict[str, Any]]] = []
    for key, value in design.items():
        if isinstance(value, dict):
            tables.append((key, value))
        else:
            lines.append(f"{key} = {_value(value)}")
    for name, table in tables:
        lines.append("")
        lines.append(f"[{name}]")
        nested = []
        for key, value in table.items():
            if isinstance(value, dict):
                nested.append((f"{name}.{key}", value))
            else:
                lines.append(f"{key} = {_value(value)}")
        for sub, values in nested:
            lines.append(f"[{sub}]")
            lines.extend(f"{key} = {_value(value)}" for key, value in values.items())
    return "\n".join(lines) + "\n"
