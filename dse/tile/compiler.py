"""The compiler from the integer decoder layer and the mapper's mappings to the tile's program.

:func:`compile_layer` lowers the steps of :meth:`IntLayer.steps
<peforge.dse.tile.intlayer.IntLayer.steps>` one by one:

- every named tensor lives in DRAM (:mod:`peforge.dse.tile.dram`): the inputs, the constants
  (weights packed in the tiles the GEMMs load, RoPE's tables in the vector unit's layout, per-channel
  requantization multipliers), each step's output and the KV cache (at the same addresses for any
  ``tokens`` and ``position``, so a decode image takes over a prefill's cache); a step loads its
  operands tile by tile into the scratchpads and stores its result;
- a :class:`~peforge.dse.tile.intlayer.Gemm` follows its operator's :class:`OperatorMapping`: the
  products side by side or one at a time over the arrays, each product's arrays splitting M, N, K
  or two of them (N and M, N and K, shared as :func:`~peforge.dse.cost.mapper.two_way` says; a
  shared operand is loaded once into every slice that needs it, by the DMA's slice mask; the
  partial sums of a K split added by the vector unit into the first slice's tile, then stored), the
  tiling family as the loop order (*on chip* and *activations resident*: a row block of A stays
  while weight tiles stream; *weights resident*: the converse; *K-blocked*: output tiles whose K
  blocks of one array fold accumulate in the output scratchpad), the mapping's tile sizes
  (shrunk, and said so in :attr:`Compiled.plans`, where a slice's scratchpads or the array's GEMM
  limits cannot hold them; the free side of a resident family as large as fits), and double
  buffering (two copies of each streamed operand and of the output tile: the DMA fills one while
  the array reads the other). Where no tile of the mapping's family fits a slice, the K-blocked
  tiling of the widest K block that does; several accumulation passes over K (a K beyond the PE's
  accumulation bound): K-blocked, one array fold per GEMM. Refused, with a ``ValueError`` naming
  the operator: fused attention, a PE with per-column metadata other than the mixed PE with 4-bit
  codes and a zero point (whose INT8 operands run as two digit planes: :mod:`.lower_mixed`);
- a :class:`~peforge.dse.tile.intlayer.Vector` step runs on the vector unit over row blocks (and
  column blocks for an elementwise op whose rows do not fit), double-buffered where two copies
  fit: ``requantize`` one ``MULSHIFT`` (per-channel multipliers as a streamed row), ``rmsnorm``
  and ``softmax`` the unit's programs (the causal rows of a token as one command group of their
  length, the rest of the row zero), ``rope`` the unit's rotation program per head (the tables
  and products at one head's pitch), ``silu``, ``mul``, ``add`` one command each, in place where
  that saves room (the tile reads a vector command's operands on ports of their own). Its
  buffers (8-bit data in an activation scratchpad, 32-bit in an output one) are slice 0's, or
  where those do not hold them, moved to other scratchpads of their width in any slice;
- a :class:`~peforge.dse.tile.intlayer.Move` is DMA only: rows loaded into a scratchpad, stored
  back in the new layout by 2-D transfers (the V cache's transposed columns one byte per row).

Each kind of step has its module (:mod:`~peforge.dse.tile.lower_gemm`,
:mod:`~peforge.dse.tile.lower_vector`, :mod:`~peforge.dse.tile.lower_move`), over the state of one
compilation (:mod:`~peforge.dse.tile.context`). ``Wait`` instructions come from
:class:`~peforge.dse.tile.program.ProgramBuilder`: only where a
command depends on, or would overwrite, what another unit may still be doing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...hw.tile.config import TileConfig
from ...hw.tile.isa import Instruction
from .context import Context
from .dram import Symbol
from .intlayer import ACT_BITS, Gemm, IntLayer, KVCache, Step, Vector, output_bits
from .lower_gemm import lower_gemm
from .lower_move import lower_move
from .lower_vector import lower_vector
from .mapping import OperatorMapping
from .program import ProgramBuilder

__all__ = ["Compiled", "compile_layer", "operator_of_steps", "CACHE_NAMES"]

CACHE_NAMES = ("k_cache", "v_cache_t")
# The graph operator of a step that is not a Gemm, by the tensor it writes (a requantization of a
# GEMM's accumulators is that GEMM's epilogue, found by its input; a cache write is the K or V
# projection's, as the graph's rows count it; the queries split into heads are the rotation's).
_OPERATOR_OF_OUTPUT = {
    "attn_norm_rms": "input_norm", "attn_norm": "input_norm", "q_rot": "rope", "k_rot": "rope",
    "k_cache": "k_proj", "v_cache_t": "v_proj", "q_heads": "rope", "probs": "attn.softmax",
    "attn": "attn.context", "h": "residual_add", "mlp_norm_rms": "post_attention_norm",
    "mlp_norm": "post_attention_norm", "gate_silu": "mlp.silu_mul", "gate_up": "mlp.silu_mul",
    "mlp_act": "mlp.silu_mul", "out": "residual_add",
}


def operator_of_steps(steps: list[Step]) -> list[str]:
    """The operator of :mod:`peforge.models.graph` each step belongs to (the cycle table's rows)."""
    producer: dict[str, str] = {}
    names = []
    for step in steps:
        if isinstance(step, Gemm):
            name = step.name
        elif isinstance(step, Vector) and step.op == "requantize" and step.inputs[0] in producer:
            name = producer[step.inputs[0]]
        else:
            name = _OPERATOR_OF_OUTPUT.get(step.out, step.out)
        producer[step.out] = name
        names.append(name)
    return names


@dataclass(frozen=True)
class Compiled:
    """A layer compiled for a tile.

    Attributes
    ----------
    tile : TileConfig
    tokens, position : int
        The new tokens and the first one's position (the cache holds ``position`` tokens).
    program : tuple of Instruction
        Ends with ``End``; ``Issue`` commands are the units' command dataclasses.
    tags : tuple of str
        The graph operator of each instruction (``end`` for the ``End``).
    symbols : dict of str to Symbol
        Every named tensor in DRAM.
    dram_bytes : int
        Size of the DRAM image.
    constants : dict of str to numpy array
        The constant tensors the image holds (the layer's, and the derived tables).
    plans : dict of str to str
        Per step (``"<index> <operator>"``): the mapping followed, tiles and buffers used.
    lifetimes : dict of str to tuple of int
        Per named tensor: the first step writing it and the last reading it (-1: an input / none).
    """

    tile: TileConfig
    tokens: int
    position: int
    program: tuple[Instruction, ...]
    tags: tuple[str, ...]
    symbols: dict[str, Symbol]
    dram_bytes: int
    constants: dict[str, np.ndarray]
    plans: dict[str, str]
    lifetimes: dict[str, tuple[int, int]]

    def image(self, x, cache: KVCache | None = None) -> bytearray:
        """The DRAM image to start from: constants, the input rows ``x`` ``[tokens][hidden]`` and
        ``cache`` (zeros if None)."""
        dram = bytearray(self.dram_bytes)
        for name, value in self.constants.items():
            self.symbols[name].write(dram, value)
        self.symbols["x"].write(dram, x)
        if cache is not None:
            self.symbols["k_cache"].write(dram, cache.k)
            self.symbols["v_cache_t"].write(dram, cache.v_t)
        return dram

    def read(self, dram: bytes, name: str) -> np.ndarray:
        """Named tensor ``name`` as held in ``dram``."""
        return self.symbols[name].read(dram)


def _shapes(layer: IntLayer, steps: list[Step], tokens: int) -> dict[str, tuple[int, ...]]:
    """Shape of every named tensor the steps read or write."""
    cfg = layer.config.model
    g, d, p = cfg.num_kv_heads, cfg.head_dim, cfg.max_positions
    shapes = {name: tuple(v.shape) for name, v in layer.constants.items()}
    shapes.update(x=(tokens, cfg.hidden_size), k_cache=(g, p, d), v_cache_t=(g, d, p))
    for step in steps:
        if isinstance(step, Gemm):
            shapes[step.out] = (step.count, step.m, step.n) if step.count > 1 else (step.m, step.n)
        elif isinstance(step, Vector):
            shapes[step.out] = shapes[step.inputs[0]]
        elif step.op == "split_heads":
            c = step.constants
            shapes[step.out] = (c["kv_heads"], c["group"] * tokens, c["head_dim"])
        elif step.op == "merge_heads":
            c = step.constants
            shapes[step.out] = (tokens, c["kv_heads"] * c["group"] * c["head_dim"])
    return shapes


def compile_layer(layer: IntLayer, tokens: int, position: int, tile_config: TileConfig,
                  mappings: dict[str, OperatorMapping]) -> Compiled:
    """Compile ``layer``'s steps for ``tokens`` new tokens at positions ``position ..`` (the cache
    holding ``position`` tokens) for the tile ``tile_config``.

    Parameters
    ----------
    layer : IntLayer
    tokens, position : int
    tile_config : TileConfig
    mappings : dict of str to OperatorMapping
        The mapping of each GEMM operator by name (the cost model's: :func:`cost_model_mappings
        <peforge.dse.tile.mapping.cost_model_mappings>` of the phase).

    Raises ``ValueError`` (one line naming the operator) for a mapping or a shape the tile cannot
    run (see the module docstring for what it can), and for a program longer than the
    sequencer's instruction memory or an image beyond the DRAM address space.
    """
    steps = layer.steps(tokens, position)
    bits = output_bits(steps)
    shapes = _shapes(layer, steps, tokens)
    ctx = Context(tile=tile_config, builder=ProgramBuilder(), symbols={}, constants={}, top=0)
    # the caches first, at addresses that do not depend on tokens or position
    for name in CACHE_NAMES:
        ctx.add(name, shapes[name], ACT_BITS)
    for name, value in layer.constants.items():
        if name.startswith("w_"):
            # a weight: its packed tiles are placed as the GEMM's plan needs them
            ctx.symbols[name] = Symbol(name=name, addr=0, shape=tuple(value.shape), elem_bytes=1, layout="tiles")
            ctx.constants[name] = value
        else:
            ctx.constant(name, value, 32)
    ctx.add("x", shapes["x"], ACT_BITS)
    for step in steps:
        if step.out not in ctx.symbols:
            ctx.add(step.out, shapes[step.out], bits[step.out])

    names = operator_of_steps(steps)
    lifetimes: dict[str, list[int]] = {}
    for index, (step, name) in enumerate(zip(steps, names)):
        label = f"{index} {name}"
        reads = ((step.a, step.b_t) if isinstance(step, Gemm) else
                 step.inputs if isinstance(step, Vector) else (step.src,))
        for tensor in reads:
            lifetimes.setdefault(tensor, [-1, -1])[1] = index
        life = lifetimes.setdefault(step.out, [-1, -1])
        life[0] = index if life[0] < 0 else life[0]
        if isinstance(step, Gemm):
            if step.name not in mappings:
                raise ValueError(f"{step.name}: no mapping given; known: {', '.join(sorted(mappings)) or 'none'}")
            lower_gemm(ctx, step, mappings[step.name], name, label)
        elif isinstance(step, Vector):
            lower_vector(ctx, step, name, label, layer)
        else:
            lower_move(ctx, step, name, label)
    ctx.builder.end()
    # the packed weights' symbols start at their first tile
    for name, symbol in list(ctx.symbols.items()):
        if symbol.layout == "tiles":
            if not symbol.tiles:
                del ctx.symbols[name], ctx.constants[name]  # no step reads it
            else:
                ctx.symbols[name] = replace(symbol, addr=symbol.tiles[0].addr)
    if len(ctx.builder.instructions) > tile_config.imem_depth:
        raise ValueError(f"the layer's program of {len(ctx.builder.instructions)} instructions exceeds the "
                         f"sequencer's imem_depth={tile_config.imem_depth}")
    if ctx.top > 1 << tile_config.dram_addr_bits:
        raise ValueError(f"the layer's DRAM image of {ctx.top} bytes exceeds the tile's "
                         f"{tile_config.dram_addr_bits}-bit address space")
    return Compiled(tile=tile_config, tokens=tokens, position=position, program=tuple(ctx.builder.instructions),
                    tags=tuple(ctx.builder.tags), symbols=dict(ctx.symbols), dram_bytes=ctx.top,
                    constants=dict(ctx.constants), plans=dict(ctx.plans),
                    lifetimes={k: (v[0], v[1]) for k, v in lifetimes.items()})
