"""hw.pim.gemv_cycles equals the cost model's own vectorized copy (dse.pimmodel), which it
replaces; delete this file together with dse/pimmodel.py. The parameters are passed as the
cost model passes them, attribute columns of an object (not a ``Pim``, whose keys change)."""

from types import SimpleNamespace

import numpy as np

from peforge.dse.pimmodel import pim_gemv_cycles
from peforge.hw.pim import gemv_cycles


def _random_parameters(rng, n):
    lanes = 2 ** rng.integers(0, 7, n)
    t_rcd, t_rp = rng.integers(1, 256, n), rng.integers(1, 256, n)
    return dict(banks=rng.integers(1, 65, n), lanes=lanes, cols=lanes * rng.integers(1, 65, n),
                t_rcd=t_rcd, t_rp=t_rp, t_ras=rng.integers(1, 256, n),
                t_ccd=np.minimum(rng.integers(1, 65, n), t_rcd + t_rp + 1))


def test_equals_cost_model_copy_on_random_shapes_and_parameters():
    rng = np.random.default_rng(0)
    n = 5000
    params = _random_parameters(rng, n)
    # small shapes hit the corners (one row, one word, partial bursts), large ones real caches
    out_rows = np.where(rng.random(n) < 0.5, rng.integers(1, 40, n), rng.integers(1, 1 << 16, n))
    in_cols = np.where(rng.random(n) < 0.5, rng.integers(1, 40, n), rng.integers(1, 1 << 14, n))
    model = SimpleNamespace(row_words=params["cols"], **{k: v for k, v in params.items() if k != "cols"})
    expected = pim_gemv_cycles(model, out_rows, in_cols)
    assert np.array_equal(gemv_cycles(out_rows=out_rows, in_cols=in_cols, **params), expected)


def test_equals_cost_model_copy_broadcast_like_the_cost_model():
    rng = np.random.default_rng(1)
    params = {k: v.astype(np.float64)[:, None, None] for k, v in _random_parameters(rng, 40).items()}
    out_rows = rng.integers(1, 5000, (6, 30)).astype(np.float64)
    in_cols = rng.integers(1, 5000, (6, 30)).astype(np.float64)
    model = SimpleNamespace(row_words=params["cols"], **{k: v for k, v in params.items() if k != "cols"})
    ours = gemv_cycles(out_rows=out_rows, in_cols=in_cols, **params)
    assert ours.shape == (40, 6, 30)
    assert np.array_equal(ours, pim_gemv_cycles(model, out_rows, in_cols))

