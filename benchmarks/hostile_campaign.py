"""A hostile campaign: every subcommand fed bad values for each of its flags and bad files of every
kind, counting tracebacks, silent acceptances (exit 0 for a bad input), unclear answers (not exactly
one line, or exit status other than 2) and anything written to the working folder.

    python benchmarks/hostile_campaign.py [-v]     # -v: print each input before running it

Runs in-process through ``peforge.cli.main`` in a scratch folder; prints one line per failure and
the totals. Every input here is wrong, so the only right answer is one line and exit 2.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
from pathlib import Path

from peforge.cli import main

NUMBERS = ["-1", "0", str(10**30), "nan", "inf", "abc", "", "1.5", "0x"]
DESIGN = 'quant = "w8a8kv8"\n[compute]\npe = "mac"\nrows = 8\ncols = 8\nclock_mhz = 200.0\n'
SPACE = ('[workload]\nmodel = "gpt2"\nseq = 16\ngen = 2\nquant = "w8a8kv8"\n[fixed.compute]\npe = "mac"\nclock_mhz = 200.0\n'
         '[param."compute.rows"]\ntype = "categorical"\nchoices = [4, 8]\n[objectives]\ntokens_per_s = "maximize"\n')


def files(root: Path) -> dict[str, Path]:
    """Bad input files of every kind, by name."""
    made = {}

    def put(name: str, data: bytes) -> None:
        (root / name).write_bytes(data)
        made[name] = root / name

    put("empty.toml", b"")
    put("garbage.toml", b"\x00\x01\x02\xff")
    put("latin1.toml", "name = 'caf\xe9'\n".encode("latin-1"))
    put("huge.toml", b"# " + b"x" * (5 << 20))
    put("not-toml.toml", b"[compute\n")
    put("wrong-types.toml", b'[compute]\nrows = "many"\n')
    put("unknown-key.toml", DESIGN.encode() + b"[compute.pe_params]\nspeed = 3\n")
    put("negative.toml", b"[compute]\nrows = -4\n")
    put("float-rows.toml", b"[compute]\nrows = 8.5\n")
    put("nan-clock.toml", b"[compute]\nclock_mhz = nan\n")
    put("big-batch.toml", DESIGN.encode().replace(b"[compute]", b"batch = 100000000\n[compute]"))
    put("nan-space.toml", SPACE.encode() + b"[constraints]\narea_mm2 = { max = nan }\n")
    put("inf-space.toml", SPACE.encode() + b"[constraints]\narea_mm2 = { min = -inf }\n")
    put("empty-space.toml", b"")
    put("no-objectives.toml", SPACE.split("[objectives]")[0].encode())
    put("bad.json", b"{")
    put("list.json", b"[1, 2]")
    put("huge-layers.json", b'{"model_type": "llama", "hidden_size": 4096, "num_hidden_layers": 100000000, '
                            b'"num_attention_heads": 32, "intermediate_size": 11008, "vocab_size": 32000}')
    put("overflow.json", b'{"model_type": "llama", "hidden_size": ' + str(2**1100).encode() + b', '
                         b'"num_hidden_layers": 2, "num_attention_heads": 32, "intermediate_size": 8, "vocab_size": 8}')
    put("a-file", b"x")
    (root / "folder.toml").mkdir()
    made["folder.toml"] = root / "folder.toml"
    os.mkfifo(root / "fifo.toml")
    made["fifo.toml"] = root / "fifo.toml"
    os.mkfifo(root / "fifo.json")
    made["fifo.json"] = root / "fifo.json"
    os.symlink("/dev/zero", root / "zero.toml")
    made["zero.toml"] = root / "zero.toml"
    os.symlink("/dev/zero", root / "zero.json")
    made["zero.json"] = root / "zero.json"
    (root / "design.toml").write_text(DESIGN)
    (root / "space.toml").write_text(SPACE)
    return made


def cases(bad: dict[str, Path]) -> list[list[str]]:
    out: list[list[str]] = []
    evaluate = ["evaluate", "--design", "design.toml", "--workload", "gpt2"]
    for flag in ("--seq", "--gen", "--batch"):
        out += [[*evaluate, flag, v] for v in NUMBERS]
    out += [[*evaluate, "--quant", v] for v in ("w99", "w4a8kv8-g0", "", "w4a4kv4-g-1", "w4a8kv8-gabc")]
    out += [["evaluate", "--design", name, "--workload", "gpt2"] for name in bad if name.endswith(".toml")
            and "space" not in name and name != "no-objectives.toml"]
    out += [["evaluate", "--design", "design.toml", "--workload", name] for name in bad if name.endswith(".json")]
    out += [[*evaluate, "--plot", "a-file/roof.png"], [*evaluate, "--plot", "roof.svg"]]
    sweep = ["sweep", "--space", "space.toml", "--trials", "2", "--no-progress", "--out", "study"]
    for flag in ("--seq", "--gen", "--trials", "--n-jobs", "--seed", "--export-top"):
        out += [[*sweep, flag, v] for v in NUMBERS if not (flag == "--seed" and v in ("0", "1.5"))
                and not (flag == "--export-top" and v == "0")]
    out += [[*sweep, "--storage", v] for v in ("sqlite://", "sqlite:///:memory:", "nonsense://x", "x", "")]
    out += [[*sweep, "--phases", v] for v in ("", "bogus", "prefill,bogus", ",,")]
    out += [[*sweep, "--resume", "--join"], [*sweep, "--resume"], [*sweep, "--join"]]
    out += [["sweep", "--space", name, "--out", "study"] for name in bad if name.endswith(".toml")]
    out += [["sweep", "--space", "space.toml", "--out", v] for v in ("a-file", "a-file/sub", "/dev/null", "/proc/x")]
    out += [["report", v] for v in ("nowhere", "a-file", "folder.toml", "/dev/null")]
    out += [["export-design", "nowhere", "--trial", "0", "--out", "rtl"], ["export-design", "nowhere", "--trial", "-1",
                                                                            "--out", "rtl"]]
    out += [["characterize", "mac", a] for a in ("w_bits=99", "w_bits=", "=8", "nope=1", "w_bits=abc",
                                                  "output_register=maybe", "w_bits=8.5")]
    out += [["characterize", "mac", "--tech", name] for name in ("nosuch", "empty.toml", "fifo.toml", "zero.toml",
                                                                 "garbage.toml", "huge.toml", "folder.toml")]
    out += [["characterize", "mac", "--cache-dir", "a-file"], ["characterize", "nosuch"]]
    out += [["export", "mac", "--out", "a-file"], ["export", "mac", "--out", "/dev/null"],
            ["export", "systolic", "pe=nosuch", "--out", "rtl"], ["export", "systolic", "pe.k=2", "--out", "rtl"],
            ["export", "systolic", "rows=0", "--out", "rtl"], ["export", "pim-bank", "lanes=3", "--out", "rtl"],
            ["export", "pim-bank", "t_ccd=99", "--out", "rtl"]]
    out += [["verify", "mac", "--sim", "modelsim"], ["verify", "mac", "--seed", "abc"],
            ["verify", "mac", "w_bits=1"]]
    out += [["workload", "show", "gpt2", "--phase", "decode", flag, v] for flag in ("--batch", "--kv")
            for v in ("-1", str(10**30), "abc")]
    out += [["workload", "show", name, "--phase", "prefill"] for name in bad if name.endswith(".json")]
    out += [["blocks", "extra"], ["nosuchcommand"], [], ["sweep", "--outt", "x"], ["evaluate"]]
    return out


def main_campaign(verbose: bool = "-v" in sys.argv) -> int:
    with tempfile.TemporaryDirectory(prefix="peforge-hostile-") as tmp:
        root = Path(tmp)
        bad = files(root)
        os.chdir(root)
        before = {str(p) for p in root.rglob("*")}
        counts = {"inputs": 0, "tracebacks": 0, "silent acceptances": 0, "unclear": 0, "written": 0}
        for argv in cases(bad):
            counts["inputs"] += 1
            if verbose:
                print(" ".join(argv), flush=True)
            err = io.StringIO()
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                try:
                    status = main(argv)
                except SystemExit as stop:  # argparse's own exit (e.g. `--help`): not expected here
                    status = stop.code
            text = err.getvalue()
            lines = text.strip().splitlines()
            problem = None
            if "Traceback" in text or "internal error" in text:
                counts["tracebacks"] += 1
                problem = "traceback"
            elif status == 0:
                counts["silent acceptances"] += 1
                problem = "accepted"
            elif status != 2 or len(lines) != 1:
                counts["unclear"] += 1
                problem = f"exit {status}, {len(lines)} lines"
            now = {str(p) for p in root.rglob("*")}
            if now != before:
                counts["written"] += 1
                problem = (problem or "") + f" wrote {sorted(now - before)[:3]}"
                before = now
            if problem:
                print(f"{problem}: peforge {' '.join(argv)}\n    {lines[-1] if lines else ''}")
    print(", ".join(f"{k}: {v}" for k, v in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main_campaign())
