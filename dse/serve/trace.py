"""Request traces: arrival time, prompt tokens and output tokens of every request.

Readers for the two public formats users have, and a generator of synthetic traces:

- **BurstGPT** CSV (Wang et al., "BurstGPT: A Real-world Workload Dataset to Optimize LLM
  Serving Systems", 2024; github.com/HPMLL/BurstGPT): columns ``Timestamp`` (s from the trace's
  start), ``Model``, ``Request tokens``, ``Response tokens``, ``Total tokens``, ``Log Type``.
  Rows whose ``Response tokens`` is 0 are failed requests (the dataset's own note) and are dropped.
- **Azure LLM inference trace 2023** CSV (Patel et al., "Splitwise", ISCA 2024;
  github.com/Azure/AzurePublicDataset): ``TIMESTAMP`` (a date-time, or seconds),
  ``ContextTokens``, ``GeneratedTokens``.
- **peforge** CSV (what :func:`write_trace` writes): ``arrival_s``, ``prompt_tokens``, ``output_tokens``.

A bad trace is one ``ValueError`` naming the file, the row (1 = the header) and the column.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from ...files import read_input, write_atomic

__all__ = ["Trace", "read_trace", "synthetic", "parse_synthetic", "write_trace", "shipped_trace", "TRACE_LIMIT"]

TRACE_LIMIT = 256 << 20  # bytes: a day of BurstGPT is a few MB
FORMATS = {
    "burstgpt": ("Timestamp", "Request tokens", "Response tokens"),
    "azure": ("TIMESTAMP", "ContextTokens", "GeneratedTokens"),
    "peforge": ("arrival_s", "prompt_tokens", "output_tokens"),
}


@dataclass(frozen=True, kw_only=True)
class Trace:
    """Requests in arrival order.

    Parameters
    ----------
    arrival_s : arrival times (s), non-decreasing, the first at 0 or later
    prompt : prompt tokens of each request (>= 1)
    output : tokens each request generates, the first by the prefill (>= 1)
    name : where it came from (a file, ``synthetic:...``)
    columns : names of the prompt and output columns (for messages)
    rows : the file's row of each request (1 = the header; None: request i is row i + 2)
    """

    arrival_s: np.ndarray
    prompt: np.ndarray
    output: np.ndarray
    name: str = "trace"
    columns: tuple[str, str] = ("prompt_tokens", "output_tokens")
    rows: np.ndarray | None = None

    def __post_init__(self):
        n = len(self.arrival_s)
        if n == 0:
            raise ValueError(f"{self.name}: no requests")
        if len(self.prompt) != n or len(self.output) != n:
            raise ValueError(f"{self.name}: {n} arrivals but {len(self.prompt)} prompts and {len(self.output)} outputs")
        if np.any(np.diff(self.arrival_s) < 0):
            raise ValueError(f"{self.name}: arrival times must not decrease")
        if self.prompt.min() < 1 or self.output.min() < 1:
            raise ValueError(f"{self.name}: every request needs a prompt and an output of at least one token")

    def __len__(self) -> int:
        return len(self.arrival_s)

    @property
    def rate_rps(self) -> float:
        """Mean arrival rate (requests/s): requests over the span of arrivals (n - 1 gaps)."""
        span = float(self.arrival_s[-1] - self.arrival_s[0])
        return (len(self) - 1) / span if span > 0 else math.inf

    def at_rate(self, rate_rps: float) -> Trace:
        """The same requests with the arrival times scaled so the mean rate is ``rate_rps``
        (the burst pattern kept)."""
        if not rate_rps > 0:
            raise ValueError(f"rate {rate_rps!r}: must be a positive number of requests per second")
        start = self.arrival_s[0]
        scale = self.rate_rps / rate_rps if math.isfinite(self.rate_rps) else 0.0
        return Trace(arrival_s=(self.arrival_s - start) * scale, prompt=self.prompt, output=self.output,
                     name=f"{self.name}@{rate_rps:g}rps", columns=self.columns, rows=self.rows)

    def check_context(self, max_positions: int, model: str) -> None:
        """Every request must fit the model's context: ``prompt + output - 1`` positions (the
        last generated token is never fed back); one line naming the first that does not."""
        need = self.prompt + self.output - 1
        bad = np.nonzero(need > max_positions)[0]
        if len(bad):
            i = int(bad[0])
            row = int(self.rows[i]) if self.rows is not None else i + 2
            prompt, output = self.columns
            raise ValueError(f"{self.name}: row {row}: columns {prompt!r} + {output!r}: {self.prompt[i]} + "
                             f"{self.output[i]} tokens need {need[i]} positions; {model} has {max_positions}")


def _number(text: str, where: str, *, integer: bool) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError(f"{where}: {text!r} is not a finite number")
    if integer and value != int(value):
        raise ValueError(f"{where}: {text!r} is not a whole number of tokens")
    return value


def _timestamp(text: str, where: str) -> float:
    """Seconds: a number, or an ISO date-time (the Azure trace's ``2023-11-16 18:15:46.6805900``)."""
    try:
        return _number(text, where, integer=False)
    except ValueError:
        pass
    head = text.strip()
    if "." in head:  # seven-digit fractions: datetime takes six
        whole, frac = head.split(".", 1)
        head = f"{whole}.{frac[:6]}"
    try:
        return datetime.fromisoformat(head).timestamp()
    except ValueError:
        raise ValueError(f"{where}: {text!r} is neither seconds nor a date-time") from None


def read_trace(path: Path | str) -> Trace:
    """Read a BurstGPT, Azure or peforge trace CSV (recognized by its header)."""
    path = Path(path)
    text = read_input(path, "trace CSV", limit=TRACE_LIMIT)
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if not header:
        raise ValueError(f"{path}: row 1: empty file, expected a header naming the columns")
    header = [h.strip() for h in header]
    kind = next((k for k, cols in FORMATS.items() if cols[0] in header), None)
    if kind is None:
        raise ValueError(f"{path}: row 1: no timestamp column (expected one of "
                         f"{', '.join(c[0] for c in FORMATS.values())})")
    cols = FORMATS[kind]
    missing = [c for c in cols if c not in header]
    if missing:
        raise ValueError(f"{path}: row 1: column {missing[0]!r} missing (a {kind} trace has {', '.join(cols)})")
    index = [header.index(c) for c in cols]
    arrival, prompt, output, numbers = [], [], [], []
    previous = -math.inf
    for number, row in enumerate(rows, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            raise ValueError(f"{path}: row {number}: {len(row)} fields, the header has {len(header)}")
        t = _timestamp(row[index[0]], f"{path}: row {number}: column {cols[0]!r}")
        if t < previous:
            raise ValueError(f"{path}: row {number}: column {cols[0]!r}: {row[index[0]]} is before the row above "
                             f"(the trace must be sorted by arrival)")
        previous = t
        lengths = []
        for col, i in zip(cols[1:], index[1:]):
            value = _number(row[i], f"{path}: row {number}: column {col!r}", integer=True)
            if value < 0:
                raise ValueError(f"{path}: row {number}: column {col!r}: {row[i]} is negative")
            lengths.append(int(value))
        if kind == "burstgpt" and lengths[1] == 0:
            continue  # a failed request (BurstGPT marks them with 0 response tokens)
        for col, value in zip(cols[1:], lengths):
            if value == 0:
                raise ValueError(f"{path}: row {number}: column {col!r}: 0 tokens (a request needs at least one)")
        arrival.append(t)
        numbers.append(number)
        prompt.append(lengths[0])
        output.append(lengths[1])
    if not arrival:
        raise ValueError(f"{path}: no requests after the header")
    times = np.asarray(arrival, dtype=np.float64)
    return Trace(arrival_s=times - times[0], prompt=np.asarray(prompt, dtype=np.int64),
                 output=np.asarray(output, dtype=np.int64), name=str(path), columns=(cols[1], cols[2]),
                 rows=np.asarray(numbers, dtype=np.int64))


def write_trace(trace: Trace, path: Path | str) -> Path:
    """Write ``trace`` as a peforge trace CSV."""
    lines = [",".join(FORMATS["peforge"])]
    lines += [f"{a:.6f},{p},{o}" for a, p, o in zip(trace.arrival_s, trace.prompt, trace.output)]
    return write_atomic(path, "\n".join(lines) + "\n")


# Lengths of the shipped trace: the medians Splitwise (ISCA 2024, Section III) reports for the
# Azure conversation trace, 1020 prompt tokens and 129 output tokens. The spread (lognormal
# sigma) is this module's choice, not a published figure: 0.6 for prompts, 1.0 for outputs
# (requests longer than the context are drawn again, which trims the long tail).
CONVERSATION = {"prompt_median": 1020, "output_median": 129, "prompt_sigma": 0.6, "output_sigma": 1.0}


def synthetic(*, n: int, rate_rps: float, arrivals: str = "poisson", cv: float = 1.0, prompt_median: float = 1020,
              output_median: float = 129, prompt_sigma: float = 0.6, output_sigma: float = 1.0,
              max_positions: int = 4096, histogram: tuple[np.ndarray, np.ndarray] | None = None,
              seed: int = 0) -> Trace:
    """A synthetic trace of ``n`` requests at a mean ``rate_rps``.

    ``arrivals``: ``poisson`` (exponential gaps) or ``gamma`` (gamma gaps of coefficient of
    variation ``cv``: cv > 1 is burstier than Poisson, as BurstGPT finds its traces are).
    Lengths: lognormal with the given medians and sigmas, or (``histogram``) an empirical
    ``(prompt lengths, output lengths)`` pair sampled with replacement; pairs that do not fit
    ``prompt + output - 1 <= max_positions`` are drawn again.
    """
    if type(n) is not int or n < 1:
        raise ValueError(f"n={n!r}: allowed a positive number of requests")
    if not rate_rps > 0:
        raise ValueError(f"rate={rate_rps!r}: must be a positive number of requests per second")
    if arrivals not in ("poisson", "gamma"):
        raise ValueError(f"arrivals={arrivals!r}: allowed poisson, gamma")
    if not cv > 0:
        raise ValueError(f"cv={cv!r}: must be positive")
    rng = np.random.default_rng(seed)
    if arrivals == "poisson":
        gaps = rng.exponential(1.0 / rate_rps, n)
    else:
        shape = 1.0 / cv**2  # gamma gaps: mean shape x scale = 1 / rate, cv = 1 / sqrt(shape)
        gaps = rng.gamma(shape, 1.0 / (rate_rps * shape), n)
    gaps[0] = 0.0
    prompt, output = np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    for _ in range(64):  # draw pairs, keep those that fit the context (the shape below it kept)
        if histogram is not None:
            pick = rng.integers(0, len(histogram[0]), n)
            p, o = np.asarray(histogram[0])[pick], np.asarray(histogram[1])[pick]
        else:
            p = np.round(prompt_median * np.exp(prompt_sigma * rng.standard_normal(n)))
            o = np.round(output_median * np.exp(output_sigma * rng.standard_normal(n)))
        p, o = np.maximum(p, 1).astype(np.int64), np.maximum(o, 1).astype(np.int64)
        fits = p + o - 1 <= max_positions
        prompt, output = np.concatenate([prompt, p[fits]]), np.concatenate([output, o[fits]])
        if len(prompt) >= n:
            break
    else:
        raise ValueError(f"max_positions={max_positions}: too few drawn requests fit (lengths around "
                         f"{prompt_median:g} + {output_median:g} tokens)")
    prompt, output = prompt[:n], output[:n]
    return Trace(arrival_s=np.cumsum(gaps), prompt=prompt, output=output,
                 name=f"synthetic:rate={rate_rps:g},n={n}")


def parse_synthetic(text: str, *, max_positions: int) -> Trace:
    """A trace from ``synthetic:rate=R,n=N[,arrivals=gamma,cv=C,seed=S,prompt=P,output=O]``."""
    body = text.split(":", 1)[1] if ":" in text else ""
    keys = {"rate": float, "n": int, "arrivals": str, "cv": float, "seed": int, "prompt": float, "output": float}
    values: dict = {}
    for item in filter(None, (x.strip() for x in body.split(","))):
        key, _, value = item.partition("=")
        if key not in keys or not value:
            raise ValueError(f"--trace {text}: {item!r}: allowed keys {', '.join(keys)} as key=value")
        try:
            values[key] = keys[key](value)
        except ValueError:
            raise ValueError(f"--trace {text}: {key}={value!r} is not a {keys[key].__name__}") from None
    if "rate" not in values or "n" not in values:
        raise ValueError(f"--trace {text}: give at least rate=R,n=N")
    kwargs = {"arrivals": values.get("arrivals", "poisson"), "cv": values.get("cv", 1.0),
              "seed": values.get("seed", 0), "prompt_median": values.get("prompt", 1020.0),
              "output_median": values.get("output", 129.0)}
    return synthetic(n=values["n"], rate_rps=values["rate"], max_positions=max_positions, **kwargs)


TRACES = Path(__file__).parent / "traces"


def shipped_trace(name: str = "conversation") -> Path:
    """The path of a trace shipped in ``dse/serve/traces``."""
    path = TRACES / f"{name}.csv"
    if not path.exists():
        shipped = sorted(p.stem for p in TRACES.glob("*.csv"))
        raise ValueError(f"trace {name!r}: not shipped (shipped: {', '.join(shipped)})")
    return path
