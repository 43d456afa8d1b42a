"""A run's positions: ``gen`` tokens in all, the first from the prefill, so ``gen - 1`` decode
steps and ``seq + gen - 1`` positions; a prefill-only run builds no decode table."""

import pytest

from peforge.dse.cost.workload import prepare
from peforge.models import build_graph, load_config

MODEL = "llama-2-7b"  # 4096 positions; the attention score row's N is the keys it meets


def test_decode_steps_and_their_keys():
    workload = prepare(MODEL, seq=100, gen=5)
    run = workload.decode
    assert run.steps == 4  # tokens 2..5; token 1 came from the prefill
    score = run.base.names.index("attn.score")
    at = run.at([0, 3])
    # step 0 feeds token 1 at position 100 and meets 101 keys; step 3 feeds token 4 at position 103
    assert list(at["n"][:, score]) == [101, 104]


def test_full_context_is_reachable_and_no_further():
    workload = prepare(MODEL, seq=4000, gen=97)  # 4000 + 97 - 1 = 4096 positions
    run = workload.decode
    score = run.base.names.index("attn.score")
    assert run.steps == 96 and run.at([95])["n"][0, score] == 4096  # the last step sits at position 4095
    with pytest.raises(ValueError, match=r"^--gen 98: .* needs 4097 positions; .*"
                                         r"allowed --gen 1\.\.97 with --seq 4000\)$"):
        prepare(MODEL, seq=4000, gen=98)
    # the graph builder agrees: a decode step at 4095 cached tokens is the last one the model has
    build_graph(load_config(MODEL), "decode", kv_len=4095)
    with pytest.raises(ValueError, match="exceeds the 4096 positions"):
        build_graph(load_config(MODEL), "decode", kv_len=4096)


def test_prefill_only_run_builds_no_decode_table():
    workload = prepare(MODEL, seq=4096, gen=1, phases=("prefill",))
    assert workload.decode_run is None
    assert workload.prefill.cols["m"][workload.prefill.names.index("q_proj")] == 4096
    with pytest.raises(ValueError, match=r"^--gen 1: .*no decode step to price; allowed --seq 1\.\.4095"):
        workload.decode
    # asked for prefill only, a longer run still builds no decode table
    assert prepare(MODEL, seq=64, gen=8, phases=("prefill",)).decode_run is None
    with pytest.raises(ValueError, match=r"phases=\('prefil',\)"):
        prepare(MODEL, seq=64, gen=8, phases=("prefil",))
