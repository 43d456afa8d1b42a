"""GEMM shapes under which every term of the array's cycle formula binds, with the totals that
:meth:`SystolicConfig.cycles` and the cost model claim for them (the cycle property tests).

The formula (:func:`peforge.hw.systolic.gemm_cycles`): ws, F = ceil(K / (R·lanes))·ceil(N / C)
folds of P = max(M, R) beats; os, F = ceil(M / R)·ceil(N / C) folds of P = max(Kb, R, C - 1)
beats, Kb = ceil(K / lanes), r = M - (ceil(M / R) - 1)·R rows in the last fold. The shapes
below make each argument of each max the largest one in some GEMM with F > 1, leave the last
fold in K (ws), in N and in M (os) partial, and cover every run-time precision of a bit-serial
PE, so that any term dropped or changed by one moves a total.
"""

from __future__ import annotations

from typing import Any

from peforge.dse.cost.array import array_shapes, gemm_cycles
from peforge.dse.design.point import Compute
from peforge.hw import params
from peforge.hw.pe import PE_KINDS
from peforge.hw.systolic import SystolicConfig

# Narrow PE parameters per kind, so that large arrays build fast; a kind not listed runs with
# its defaults. mixed, fpmixed: a group of 48 is a multiple of rows x lanes for every array used here.
PE_PARAMS: dict[str, dict[str, Any]] = {
    "mac": dict(a_bits=4, w_bits=4),
    "bitserial": dict(lanes=2, k=2, a_bits=4, max_w_bits=6),
    "mixed": dict(lanes=1, group=48, w_bits=2, scale_bits=4, scale_frac_bits=2),
    "fpmac": dict(fmt="e4m3", acc="bf16", lanes=1, subnormals=False),
    # FP-activation PEs: short aligned activations, no FP32 output stage (unused in arrays).
    "fpbitserial": dict(lanes=1, k=2, max_w_bits=4, align_bits=5, fp32_out=False),
    "fpmixed": dict(lanes=1, group=48, w_bits=2, scale_bits=4, scale_frac_bits=2, align_bits=5, fp32_out=False),
}


def small_pe(kind: str) -> Any:
    """The narrow config of PE ``kind`` (:data:`PE_PARAMS`, else the kind's defaults)."""
    return PE_KINDS[kind].config(**PE_PARAMS.get(kind, {}))


def precisions(pe_config: Any) -> list[int | None]:
    """Run-time weight precisions to cycle through: every one of a bit-serial PE, else None."""
    return list(range(2, pe_config.max_w_bits + 1)) if pe_config.k_bits else [None]


def binding_shapes(rows: int, cols: int, dataflow: str, lanes: int, *, big_k: int) -> list[tuple[int, int, int]]:
    """GEMM shapes ``(M, K, N)`` for an array of ``rows x cols`` cells of ``lanes`` lanes, one
    per term of the formula that must bind (see the module docstring); ``big_k``: the K of the
    long-reduction GEMM (M up to 64 in another)."""
    R, C, L = rows, cols, lanes
    if dataflow == "ws":
        Kf = R * L
        shapes = [
            (R + 3, big_k, C),  # P = M > R, many K folds, the last one partial unless big_k % Kf == 0
            (max(1, R // 2 - 1), 3 * Kf - 1, 2 * C + 1),  # P = R > M; partial last folds in K and N
            (61, Kf + 1, 3 * C - 1),  # M near 64: two K folds (the second of 1), three N folds
            (R, Kf, C),  # P = M = R, exact multiples
            (1, 1, 1),
        ]
    else:
        shapes = [
            (R + 1, big_k, C),  # P = Kb over two folds, the last of one row
            (61, L * (max(R, C - 1) + 5) - 1, 3 * C - 1),  # P = Kb; M near 64, partial last M and N folds
            (R, L * R, C),  # exact multiples, r = R
            (1, 1, 1),
        ]
        if R > C - 1:  # P = R > Kb, C - 1; last fold of three rows
            shapes.append((2 * R + 3, max(1, L * (R // 2) - 1), C + 1))
        if C - 1 > R:  # P = C - 1 > Kb, R: needs cols > rows + 1
            shapes.append((2 * R + 1, 2 * L + 1, 2 * C))
    return shapes


def cases(config: SystolicConfig, shapes: list[tuple[int, int, int]]) -> list[dict[str, Any]]:
    """The shapes as :func:`peforge.sim.testbench.systolic.run_shapes` takes them (a precision
    each, cycling through :func:`precisions`), with the totals claimed by
    :meth:`SystolicConfig.cycles` and by the cost model's ``gemm_cycles`` for the same design."""
    pe = config.pe_config
    design = array_shapes([Compute(pe=config.pe, rows=config.rows, cols=config.cols, dataflow=config.dataflow,
                                   pe_params=tuple(params.as_dict(pe).items()))])
    widths = precisions(pe)
    out = []
    for index, (m, k, n) in enumerate(shapes):
        w_bits = widths[index % len(widths)]
        model = gemm_cycles(design, m, k, n, pe.max_w_bits if w_bits is None else w_bits)[0, 0, 0]
        out.append(dict(m=m, k=k, n=n, w_bits=w_bits,
                        totals={"SystolicConfig.cycles": config.cycles(m, k, n, w_bits), "cost model": float(model)}))
    return out


def array_for(kind: str, dataflow: str, rows: int, cols: int, shapes: list[tuple[int, int, int]]) -> SystolicConfig:
    """The array of narrow PEs ``kind``, its ``max_m/max_k/max_n`` just large enough for ``shapes``."""
    return SystolicConfig(rows=rows, cols=cols, pe=kind, dataflow=dataflow, pe_config=small_pe(kind),
                          max_m=max(s[0] for s in shapes), max_k=max(s[1] for s in shapes),
                          max_n=max(s[2] for s in shapes))
