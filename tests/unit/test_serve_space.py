"""A space's [serving] table: validated, and serving metrics allowed only with it."""

from __future__ import annotations

import pytest

from peforge.dse.search.space import load_space, parse_space

BODY = """
[workload]
model = "llama-2-7b"
[fixed]
tech = "7nm"
[fixed.compute]
pe = "mac"
[param."compute.rows"]
type = "int"
low = 16
high = 32
scale = "pow2"
"""


def space(text: str):
    return parse_space(BODY + text, where="s.toml", name="s")


def test_serving_objectives_need_a_serving_table():
    with pytest.raises(ValueError, match=r"s.toml: objectives.goodput_rps: unknown metric"):
        space('[objectives]\ngoodput_rps = "maximize"\n')
    s = space('[serving]\ntrace = "conversation"\nttft_p99_s = 1.5\n[objectives]\ngoodput_rps = "maximize"\n'
              '[constraints]\nmax_rate_rps = { min = 0.5 }\n')
    assert s.serving == {"trace": "conversation", "ttft_p99_s": 1.5}
    assert s.metrics == ["goodput_rps", "max_rate_rps"]


@pytest.mark.parametrize("table, message", [
    ('speed = 1\ntrace = "x"', "unknown key serving.speed"),
    ("ttft_p99_s = 1.0", "needs trace"),
    ('trace = "x"\nttft_p99_s = -1.0', "serving.ttft_p99_s must be positive"),
    ('trace = "x"\ndecode_count = "two"', "serving.decode_count must be an integer"),
    ('trace = "x"\ndecode_design = "edge"', "decode_design needs disaggregated = true"),
    ('trace = "x"\nchunk_tokens = 1', "chunk_tokens=1"),
])
def test_bad_serving_table_is_one_line(table, message):
    with pytest.raises(ValueError, match=message):
        space(f'[serving]\n{table}\n[objectives]\narea_mm2 = "minimize"\n')


def test_shipped_serving_spaces():
    single, split = load_space("serving"), load_space("serving-disagg")
    assert "max_rate_rps" in single.metrics and not single.serving.get("disaggregated", False)
    assert split.serving["disaggregated"] and split.serving["decode_count"] == 2
