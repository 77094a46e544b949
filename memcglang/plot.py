"""`memcglang plot`: each memcg's usage, memsw, rss, cache and swap over the statements of a
scenario, drawn with matplotlib (SVG or PNG), with plotext on a terminal, or as one
self-contained HTML page with the highlighted scenario, the trace and the plot (docs/plot.md).

The series are sampled after every statement the run executes (a `repeat` gives one point per
iteration). The x axis is the statement's line number; where lines do not increase (a repeat,
threads run one after another), the points are numbered and labelled with their lines.
Output is deterministic: no dates or random ids in the SVG, no timestamps in the PNG.
"""

from __future__ import annotations

import html
import io
import re

import attrs

SERIES = ("usage", "memsw", "rss", "cache", "swap")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
COLOURS = {"usage": "#d62728", "memsw": "#1f77b4", "rss": "#2ca02c", "cache": "#ff7f0e",
           "swap": "#9467bd"}
# series often coincide (usage = rss for anon pages): widths and dashes keep each visible
STYLES = {"usage": dict(linewidth=4.5, alpha=0.45), "memsw": dict(linewidth=2.2, linestyle="--"),
          "rss": dict(linewidth=1.6), "cache": dict(linewidth=2.2, linestyle=":"),
          "swap": dict(linewidth=2.0, linestyle="-.")}


@attrs.define
class Samples:
    """The series of one run: x positions, their labels, and per memcg per series the values."""

    filename: str
    model: str
    lines: list = attrs.Factory(list)  # the line number of each point
    values: dict = attrs.Factory(dict)  # memcg -> series -> [value per point]
    trace: list = attrs.Factory(list)  # the plain trace, for the HTML page
    failed: bool = False

    @property
    def monotonic(self) -> bool:
        return all(a <= b for a, b in zip(self.lines, self.lines[1:], strict=False))

    def shown(self) -> list[str]:
        """The memcgs with something to show (root too when it holds charges, as under v1)."""
        return [m for m, series in self.values.items()
                if any(any(v) for v in series.values())]


def sample(program, resolution, model: str) -> Samples:
    """Run the scenario and take the memcg counters after every executed statement."""
    from memcglang.lang.interpreter import Interpreter
    from memcglang.render import plain

    interp = Interpreter(program, resolution, model)
    out = Samples(program.filename, model)
    out.trace.append(plain.header(program.filename, model, resolution.swapaccount))
    tally = plain.Tally()
    engine = interp.engine
    for rec in interp.run():
        tally.add(rec)
        out.trace.extend(plain.record_output(rec, engine))
        if not rec.results:  # expect, show, skipped: nothing ran
            continue
        # the end of a zap or batch block is shown at the block's last statement
        out.lines.append(out.lines[-1] if rec.text == "}" and out.lines else rec.line)
        for name in engine.memcgs:
            view = engine.memcg_view(name)
            series = out.values.setdefault(name, {s: [0] * (len(out.lines) - 1) for s in SERIES})
            for s in SERIES:
                series[s].append(view[s])
    out.trace.extend(plain.state_block(engine))
    out.trace.append(tally.verdict(interp.statements, interp.failed))
    out.failed = interp.failed
    return out


def _x(samples: Samples) -> tuple[list, list | None]:
    if samples.monotonic:
        return samples.lines, None
    return list(range(1, len(samples.lines) + 1)), samples.lines


def figure(samples: Samples):
    """A matplotlib figure: one panel per memcg, one line per series (pages)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "memcglang"
    from matplotlib.figure import Figure

    memcgs = samples.shown() or list(samples.values)[:1]
    fig = Figure(figsize=(8, 2.4 * max(1, len(memcgs)) + 0.6), layout="constrained")
    axes = fig.subplots(len(memcgs), 1, sharex=True, squeeze=False)[:, 0]
    x, labels = _x(samples)
    for ax, name in zip(axes, memcgs, strict=True):
        for s in SERIES:
            ax.step(x, samples.values[name][s], where="post", label=s, color=COLOURS[s],
                    **STYLES[s])
        ax.set_title(f"memcg {name}", loc="left", fontsize=10)
        ax.set_ylabel("pages")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
        ax.yaxis.get_major_locator().set_params(integer=True)
    axes[-1].set_xlabel("statement (line)" if labels else "line")
    if labels:
        step = max(1, len(labels) // 25)
        axes[-1].set_xticks(x[::step], [str(v) for v in labels[::step]], fontsize=7)
    fig.suptitle(f"{samples.filename}, model {samples.model}", fontsize=11)
    return fig


def save(samples: Samples, path: str) -> None:
    """SVG or PNG by the file name's suffix."""
    fig = figure(samples)
    if path.lower().endswith(".png"):
        fig.savefig(path, format="png", dpi=110, metadata={"Software": None})
    else:
        fig.savefig(path, format="svg", metadata={"Date": None, "Creator": None})


def svg_text(samples: Samples) -> str:
    buf = io.StringIO()
    figure(samples).savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]  # inline: no XML prolog or doctype


def terminal(samples: Samples, width: int | None = None, height: int | None = None) -> str:
    """The plot as text (plotext), one panel per memcg."""
    import plotext as plt

    x, labels = _x(samples)
    memcgs = samples.shown() or list(samples.values)[:1]
    out = []
    for name in memcgs:
        plt.clear_figure()
        plt.plotsize(width or 100, height or 20)
        plt.theme("clear")
        for s in SERIES:
            plt.plot(x, samples.values[name][s], label=s, marker="braille")
        # the file's base name: plotext drops a title wider than the plot
        base = samples.filename.replace("\\", "/").rsplit("/", 1)[-1]
        plt.title(f"{base}, model {samples.model}: memcg {name} (pages)")
        plt.xlabel("statement (line)" if labels else "line")
        out.append(ANSI.sub("", plt.build()))
    return "\n".join(out)


def page(samples: Samples, source: str) -> str:
    """One self-contained HTML page: the scenario highlighted, the plot, the trace."""
    from memcglang.lang.pygments_lexer import highlight_html

    title = html.escape(f"{samples.filename} — memcglang, model {samples.model}")
    verdict = html.escape(samples.trace[-1])
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
h1 {{ font-size: 1.3em; }} h2 {{ font-size: 1.1em; margin-top: 1.6em; }}
pre {{ font-family: ui-monospace, monospace; font-size: 12.5px; line-height: 1.35; }}
#scenario pre, #trace pre {{ background: #f6f8fa; border: 1px solid #d0d7de; padding: 0.8em;
  overflow-x: auto; }}
#trace pre {{ background: #fbf7ec; }}
#plot svg {{ width: 100%; height: auto; }}
.verdict {{ font-family: ui-monospace, monospace; }}
</style>
</head>
<body>
<h1>{title}</h1>
<p class="verdict">{verdict}</p>
<section id="plot"><h2>Counters over the statements</h2>
{svg_text(samples)}
</section>
<section id="scenario"><h2>Scenario</h2>
{highlight_html(source)}
</section>
<section id="trace"><h2>Trace</h2>
<pre>{html.escape(chr(10).join(samples.trace))}</pre>
</section>
</body>
</html>
"""
