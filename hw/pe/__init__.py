"""The PE kinds: every module of this package that defines ``KIND = PeKind(...)`` is one.

Adding a kind is adding its module here (and its testbench module ``peforge.sim.testbench.<name>``);
no list elsewhere names it. :data:`PE_KINDS` is sorted by each kind's ``order``, then by name
(mac, bitserial, mixed first, as ``peforge blocks`` lists them).
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from .protocol import PeConfigBase, PeFigures, PeKind

__all__ = ["PE_KINDS", "PeConfigBase", "PeFigures", "PeKind", "kind_of", "pe_kind"]


def _discover() -> dict[str, PeKind]:
    kinds = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        kind = getattr(module, "KIND", None)
        if isinstance(kind, PeKind):
            kinds.append(kind)
    kinds.sort(key=lambda kind: (kind.order, kind.name))
    names = [kind.name for kind in kinds]
    if len(set(names)) != len(names):
        raise RuntimeError(f"two PE modules declare the same kind name: {names}")
    return {kind.name: kind for kind in kinds}


PE_KINDS: dict[str, PeKind] = _discover()


def pe_kind(name: str) -> PeKind:
    """The kind called ``name``; a one-line ``ValueError`` lists the known ones."""
    if name not in PE_KINDS:
        raise ValueError(f"unknown PE kind {name!r}; known: {', '.join(PE_KINDS)}")
    return PE_KINDS[name]


def kind_of(config: Any) -> PeKind:
    """The kind whose config class ``config`` is an instance of."""
    for kind in PE_KINDS.values():
        if type(config) is kind.config:
            return kind
    raise TypeError(f"not a PE config: {config!r}")
