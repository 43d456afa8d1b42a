"""``report.html``: one self-contained page (no network: data, script and style inline).

An SVG scatter of the trials on any two metrics (chosen in the page, log axes where useful),
points colored feasible / infeasible / on the front, a tooltip per point, the front as a
sortable table, and each front point's design as a design file one can load again.
"""

from __future__ import annotations

import html
import json
import math
from typing import TYPE_CHECKING, Any

from ..cost.metrics import METRICS, human
from ..design.dump import dumps

if TYPE_CHECKING:
    from .tables import StudyTables


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _clean(value.item())
    return value


def _rows(tables: "StudyTables") -> list[dict[str, Any]]:
    columns = ["trial", "state", "feasible", "pareto", *tables.params, *tables.metrics]
    return [{c: _clean(row[c]) for c in columns} for row in tables.frame[columns].to_dict("records")]


def html_report(tables: "StudyTables") -> str:
    """The page's text."""
    from .tables import axis_label, summary

    front = tables.front()
    labels = {m: axis_label(m) for m in tables.metrics}
    data = {
        "rows": _rows(tables), "metrics": tables.metrics, "labels": labels, "params": tables.params,
        "objectives": tables.objectives, "directions": tables.directions,
    }
    workload = tables.manifest.get("workload", {})
    header = (f"{workload.get('model', '')}, {workload.get('quant', '')}, prompt {workload.get('seq', '')} tokens, "
              f"{workload.get('gen', '')} generated; phases {', '.join(workload.get('phases', []))}; "
              f"sampler {tables.manifest.get('sampler', '')}, seed {tables.manifest.get('seed', '')}")
    constraints = "; ".join(c.describe() for c in tables.space.constraints) or "none"
    objectives = ", ".join(f"{o.direction} {labels.get(o.metric, o.metric)}" for o in tables.space.objectives)
    table_columns = ["trial", *tables.objectives, *[m for m in ("power_w", "area_mm2", "tpot_s", "ttft_s")
                                                     if m in tables.metrics and m not in tables.objectives],
                     *tables.params]
    head = "".join(f"<th data-col='{html.escape(c)}'>{html.escape(labels.get(c, c))}</th>" for c in table_columns)
    body = []
    for _, row in front.iterrows():
        cells = "".join(f"<td data-value='{html.escape(_fmt(row[c]))}'>{html.escape(_shown(c, row[c]))}</td>"
                        for c in table_columns)
        body.append(f"<tr id='row-{int(row['trial'])}' data-trial='{int(row['trial'])}'>{cells}</tr>")
    designs = []
    explained = set(front.sort_values(tables.objectives[0], ascending=tables.directions[0] == "minimize")
                    ["trial"].head(EXPLAINED))
    for _, row in front.iterrows():
        design = json.loads(row["design"]) if row["design"] else {}
        text = dumps(design, f"trial {int(row['trial'])} of study {tables.name}") if design else "(no design)"
        where = _where_it_goes(design, workload) if design and row["trial"] in explained else ""
        designs.append(f"<details id='design-{int(row['trial'])}'><summary>trial {int(row['trial'])}: "
                       f"{html.escape(_headline(row, tables))}</summary>{where}<pre>{html.escape(text)}</pre>"
                       f"<p class='hint'>RTL: <code>peforge export-design DIR --trial {int(row['trial'])} "
                       f"--out rtl/</code></p></details>")
    page = _PAGE.format(
        title=html.escape(f"peforge study {tables.name}"), name=html.escape(tables.name),
        summary=html.escape(summary(tables)), header=html.escape(header),
        objectives=html.escape(objectives), constraints=html.escape(constraints),
        description=html.escape(tables.space.description), head=head, body="\n".join(body),
        designs="\n".join(designs), style=_STYLE, script=_SCRIPT,
        data=json.dumps(data, separators=(",", ":")).replace("</", "<\\/"),
    )
    return page


def _fmt(value: Any) -> str:
    value = _clean(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


EXPLAINED = 10  # front designs (best first objective first) whose time, energy and area are broken down


def _where_it_goes(design: dict[str, Any], workload: dict[str, Any]) -> str:
    """Time by operator class and bound, energy and area by component, and the roofline of one
    design on the study's workload (priced again: milliseconds)."""
    from ..cost import evaluate, prepare
    from ..cost.model import ENERGY_PARTS
    from ..design.point import design_from_dict
    from .roofline import roofline_svg

    try:
        point = design_from_dict(design, "design")
        run = prepare(workload["model"], batch=point.batch, seq=workload["seq"], gen=workload["gen"],
                      quant=point.quant or workload["quant"])
        result = evaluate(point, run, phases=tuple(workload.get("phases", ("prefill", "decode"))))
    except (ValueError, OSError, RuntimeError) as error:
        return f"<p class='hint'>breakdown unavailable: {html.escape(str(error))}</p>"
    ops = result.operators
    rows = []
    for (phase, kind, bound), part in ops.groupby(["phase", "kind", "bound"], sort=False):
        total = ops.loc[ops["phase"] == phase, "time_s"].sum()
        rows.append((f"{phase} {kind}", bound, human(part["time_s"].sum(), "s"), f"{part['time_s'].sum() / total:.1%}"))
    energy = {label: ops[name].sum() for name, label in ENERGY_PARTS.items() if ops[name].sum() > 0}
    area = {label: mm2 for label, mm2 in result.area_mm2.items() if mm2 > 0}

    def table(title: str, head: tuple[str, ...], body: list[tuple[str, ...]]) -> str:
        cells = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in body)
        return (f"<table class='parts'><caption>{html.escape(title)}</caption><tr>"
                + "".join(f"<th>{html.escape(h)}</th>" for h in head) + f"</tr>{cells}</table>")

    return ("<div class='where'>"
            + table("time by operator class", ("operators", "bound", "time", "share"), rows)
            + table("energy by component", ("component", "energy", "share"),
                    [(k, human(v, "J"), f"{v / sum(energy.values()):.1%}") for k, v in energy.items()])
            + table("area by component", ("component", "area", "share"),
                    [(k, f"{v:.3g} mm²", f"{v / sum(area.values()):.1%}") for k, v in area.items()])
            + f"<div class='roofline'>{roofline_svg(result)}</div></div>")


def _shown(column: str, value: Any) -> str:
    """A metric in a readable unit (``420 µs``); anything else as :func:`_fmt` gives it."""
    value = _clean(value)
    if column in METRICS and isinstance(value, (int, float)) and not isinstance(value, bool):
        return human(value, METRICS[column].unit)
    return _fmt(value)


def _headline(row: Any, tables: "StudyTables") -> str:
    return ", ".join(f"{axis} = {_shown(axis, row[axis])}" for axis in tables.objectives)


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1200px}
h1{font-size:1.4em;margin:0 0 .2em}h2{font-size:1.1em;margin-top:1.6em}
.meta{color:#555;margin:.1em 0}
#controls{margin:.8em 0}#controls label{margin-right:1em}
svg{border:1px solid #ddd;background:#fff}
.dot{cursor:pointer}.dot:hover{stroke:#000;stroke-width:1.5}
#tip{position:fixed;pointer-events:none;background:#fffbe6;border:1px solid #cca;padding:4px 6px;font-size:12px;
display:none;white-space:pre;max-width:480px}
table{border-collapse:collapse;font-size:12px}
.where{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start;margin:.5em 0}
table.parts caption{font-weight:600;text-align:left}.roofline svg{max-width:560px;height:auto;border:none}th,td{border:1px solid #ddd;padding:2px 6px;text-align:right}
th{background:#f4f4f4;cursor:pointer;position:sticky;top:0}tr.hl{background:#fff3b0}
pre{background:#f7f7f7;padding:.6em;font-size:12px}.hint{color:#666;font-size:12px}
.legend span{display:inline-block;margin-right:1.2em}.sw{display:inline-block;width:10px;height:10px;margin-right:4px}
"""

_SCRIPT = r"""
const D = JSON.parse(document.getElementById('data').textContent);
const W = 760, H = 480, M = {l: 70, r: 20, t: 16, b: 46};
const xs = document.getElementById('x'), ys = document.getElementById('y');
for (const m of D.metrics) { for (const s of [xs, ys]) { const o = document.createElement('option');
  o.value = m; o.textContent = D.labels[m] || m; s.appendChild(o); } }
xs.value = D.objectives.length > 1 ? D.objectives[1] : D.metrics[0]; ys.value = D.objectives[0];
const tip = document.getElementById('tip');
function scale(vals, lo, hi, log) {
  const v = vals.filter(x => x !== null && (!log || x > 0));
  let a = Math.min(...v), b = Math.max(...v);
  if (log) { a = Math.log10(a); b = Math.log10(b); }
  if (!(b > a)) { a -= 1; b += 1; }
  const pad = (b - a) * 0.04; a -= pad; b += pad;
  const f = x => lo + (hi - lo) * (((log ? Math.log10(x) : x) - a) / (b - a));
  f.ticks = []; for (let i = 0; i <= 5; i++) { const t = a + (b - a) * i / 5; f.ticks.push(log ? Math.pow(10, t) : t); }
  return f;
}
function fmt(x) { return x === null ? '' : (Math.abs(x) >= 1e4 || Math.abs(x) < 1e-2) && x !== 0 ?
  x.toExponential(2) : (+x.toPrecision(4)).toString(); }
function el(tag, attrs, text) { const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const k in attrs) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; }
function draw() {
  const svg = document.getElementById('plot'); svg.innerHTML = '';
  const x = xs.value, y = ys.value, logx = document.getElementById('logx').checked,
        logy = document.getElementById('logy').checked;
  const rows = D.rows.filter(r => r.state === 'COMPLETE' && r[x] !== null && r[y] !== null &&
    (!logx || r[x] > 0) && (!logy || r[y] > 0));
  if (!rows.length) { svg.appendChild(el('text', {x: 20, y: 30}, 'no completed trials')); return; }
  const sx = scale(rows.map(r => r[x]), M.l, W - M.r, logx), sy = scale(rows.map(r => r[y]), H - M.b, M.t, logy);
  for (const t of sx.ticks) { const p = sx(t);
    svg.appendChild(el('line', {x1: p, x2: p, y1: M.t, y2: H - M.b, stroke: '#eee'}));
    svg.appendChild(el('text', {x: p, y: H - M.b + 16, 'text-anchor': 'middle', 'font-size': 11}, fmt(t))); }
  for (const t of sy.ticks) { const p = sy(t);
    svg.appendChild(el('line', {x1: M.l, x2: W - M.r, y1: p, y2: p, stroke: '#eee'}));
    svg.appendChild(el('text', {x: M.l - 6, y: p + 4, 'text-anchor': 'end', 'font-size': 11}, fmt(t))); }
  svg.appendChild(el('text', {x: (W + M.l) / 2, y: H - 8, 'text-anchor': 'middle'}, D.labels[x] || x));
  svg.appendChild(el('text', {x: 14, y: (H - M.b) / 2, 'text-anchor': 'middle',
    transform: `rotate(-90 14 ${(H - M.b) / 2})`}, D.labels[y] || y));
  const order = rows.slice().sort((a, b) => (a.pareto - b.pareto) || (a.feasible - b.feasible));
  for (const r of order) {
    const c = el('circle', {cx: sx(r[x]), cy: sy(r[y]), r: r.pareto ? 5 : 3, class: 'dot',
      fill: r.pareto ? '#d62728' : r.feasible ? '#1f77b4' : '#bbbbbb', 'fill-opacity': r.pareto ? 0.95 : 0.45,
      stroke: r.pareto ? '#000' : 'none'});
    c.addEventListener('mousemove', ev => { tip.style.display = 'block';
      tip.style.left = (ev.clientX + 12) + 'px'; tip.style.top = (ev.clientY + 12) + 'px';
      const lines = [`trial ${r.trial}` + (r.pareto ? ' (Pareto front)' : r.feasible ? '' : ' (infeasible)')];
      for (const p of D.params) if (r[p] !== null && r[p] !== undefined) lines.push(`${p} = ${r[p]}`);
      for (const m of D.metrics) lines.push(`${D.labels[m] || m}: ${fmt(r[m])}`);
      tip.textContent = lines.join('\n'); });
    c.addEventListener('mouseleave', () => { tip.style.display = 'none'; });
    c.addEventListener('click', () => { const row = document.getElementById('row-' + r.trial);
      document.querySelectorAll('tr.hl').forEach(e => e.classList.remove('hl'));
      if (row) { row.classList.add('hl'); row.scrollIntoView({block: 'center'});
        const d = document.getElementById('design-' + r.trial); if (d) d.open = true; } });
    svg.appendChild(c);
  }
}
function autoLog() { for (const [s, box] of [[xs, 'logx'], [ys, 'logy']]) {
  const v = D.rows.map(r => r[s.value]).filter(x => x !== null && x > 0);
  document.getElementById(box).checked = v.length > 1 && Math.max(...v) / Math.min(...v) > 30; } }
xs.addEventListener('change', () => { autoLog(); draw(); }); ys.addEventListener('change', () => { autoLog(); draw(); });
document.getElementById('logx').addEventListener('change', draw);
document.getElementById('logy').addEventListener('change', draw);
document.querySelectorAll('#front th').forEach((th, i) => th.addEventListener('click', () => {
  const body = document.querySelector('#front tbody'), rows = Array.from(body.rows);
  const up = th.dataset.dir !== 'up'; th.dataset.dir = up ? 'up' : 'down';
  rows.sort((a, b) => { const p = a.cells[i].dataset.value, q = b.cells[i].dataset.value;
    const u = parseFloat(p), v = parseFloat(q); const c = isNaN(u) || isNaN(v) ? p.localeCompare(q) : u - v;
    return up ? c : -c; });
  rows.forEach(r => body.appendChild(r)); }));
autoLog(); draw();
"""

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title><style>{style}</style></head>
<body>
<h1>Study {name}</h1>
<p class="meta">{description}</p>
<p class="meta">{header}</p>
<p class="meta">Objectives: {objectives}. Constraints: {constraints}.</p>
<p class="meta"><b>{summary}</b></p>
<div id="controls">
<label>x <select id="x"></select></label><label><input type="checkbox" id="logx"> log</label>
<label>y <select id="y"></select></label><label><input type="checkbox" id="logy"> log</label>
<span class="legend"><span><i class="sw" style="background:#d62728"></i>Pareto front</span>
<span><i class="sw" style="background:#1f77b4"></i>feasible</span>
<span><i class="sw" style="background:#bbb"></i>infeasible</span></span>
</div>
<svg id="plot" width="760" height="480" viewBox="0 0 760 480"></svg>
<div id="tip"></div>
<h2>Pareto front (feasible trials; click a column to sort, a point to find its row)</h2>
<table id="front"><thead><tr>{head}</tr></thead><tbody>
{body}
</tbody></table>
<h2>Designs on the front</h2>
{designs}
<script type="application/json" id="data">{data}</script>
<script>{script}</script>
</body></html>
"""
