"""The compiled tiny layer on the RTL tile (Amaranth simulator): the program of a decode step (or
of three more tokens), loaded through ``s_axil`` and run against the AXI memory of
``test_tile_top``, leaves the DRAM the functional interpreter computes (every named tensor bit
for bit against ``IntLayer.execute``, the KV cache included) in exactly the cycles ``predict``
states. Slow: programs of hundreds of instructions, 20 000 cycles and more, on the Python
simulator."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from peforge.dse.cost import mapper
from peforge.dse.design.point import load_design
from peforge.dse.tile.compiler import compile_layer
from peforge.dse.tile.design_tile import design_tile
from peforge.dse.tile.interpret import interpret
from peforge.dse.tile.intlayer import IntLayer, KVCache
from peforge.dse.tile.mapping import OperatorMapping
from peforge.dse.tile.predict import predict
from test_tile_top import MEMORY, run_tile

DESIGN = Path(__file__).parent.parent / "designs" / "tile-tiny.toml"
GEMMS = ("q_proj", "k_proj", "v_proj", "attn.score", "attn.context", "o_proj", "mlp.gate_proj", "mlp.up_proj",
         "mlp.down_proj")
PREFILL = 16


@pytest.mark.slow
@pytest.mark.parametrize("arrays, dataflow, tokens", [(1, "ws", 1), (2, "os", 1), (1, "ws", 3)])
def test_compiled_layer_on_the_tile(arrays, dataflow, tokens):
    """A decode step after a prefill of 16 tokens, or 3 more tokens (causal rows, RoPE rows)."""
    design = load_design(DESIGN)
    design = replace(design, compute=replace(design.compute, arrays=arrays, dataflow=dataflow))
    tile = design_tile(design, max_m=32, max_k=256, max_n=64, imem_depth=2048)
    # projections split over the arrays (N), the KV heads side by side, whole tiles shrunk to fit
    spread = OperatorMapping(candidate=mapper.CANDIDATES.index((True, "N")), arrays=arrays)
    mappings = {name: OperatorMapping() if name.startswith("attn") else spread for name in GEMMS}
    layer = IntLayer()
    x = layer.embed(np.random.default_rng(11).integers(0, layer.config.model.vocab_size, PREFILL + tokens))
    golden = layer.execute(x[:PREFILL])
    cache = KVCache(k=golden["k_cache"], v_t=golden["v_cache_t"], length=PREFILL)
    compiled = compile_layer(layer, tokens, PREFILL, tile, mappings)
    image = compiled.image(x[PREFILL:], cache)
    functional = interpret(compiled, image, MEMORY)
    dram = bytearray(image)
    out = run_tile(tile, list(compiled.program), dram, timeout=200_000)
    expected = layer.execute(x[PREFILL:], cache)
    for name in expected:
        if name in compiled.symbols:
            np.testing.assert_array_equal(compiled.read(dram, name), expected[name], err_msg=name)
    assert bytes(dram) == bytes(functional)
    assert out["measured"] == out["cycles_register"] == predict(compiled, MEMORY).cycles
