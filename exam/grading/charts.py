"""Charts of an item analysis, rendered on the server as self-contained SVG strings.

matplotlib through its object API (``matplotlib.figure.Figure``, never pyplot): no global
figure state, so a worker thread can render while another does. Text is drawn as glyph
outlines in DejaVu Sans (matplotlib's own font, which covers Vietnamese), so the SVG needs
no font on the viewer's machine and references nothing outside itself. The XML prologue is
left out and ``href`` replaces ``xlink:href``: the string can be written to a ``.svg`` file
or put inline in a page (``{{ svg | safe }}``) as it is.

Both functions take the results of ``exam.grading.item_analysis`` or their ``to_dict()`` form (as
stored in a question's history), and labels that default to Vietnamese; pass translated
``labels`` for another interface language.
"""
from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence
from typing import Any

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from exam.grading.item_analysis import (
    LOW_POINT_BISERIAL,
    NEGATIVE_DISCRIMINATION,
    POSSIBLE_WRONG_KEY,
    TOO_EASY,
    TOO_HARD,
)

DEFAULT_LABELS = {
    "score": "Điểm",
    "candidates": "Số thí sinh",
    "mean": "Điểm trung bình",
    "difficulty": "Độ khó p (tỉ lệ trả lời đúng)",
    "discrimination": "Độ phân biệt r_pb (tương quan với điểm còn lại)",
    "difficulty_discrimination": "Độ khó và độ phân biệt của câu hỏi",
    "ok": "Đạt",
    "flagged": "Cần xem lại",
    "serious": "Phân biệt âm / nghi sai đáp án",
    "undefined": "r_pb không xác định (vẽ ở 0)",
}
ANNOTATE_AT_MOST = 30  # flagged items are labelled with their id when there are this many or fewer

_COLOURS = {"ok": "#2b6cb0", "flagged": "#dd6b20", "serious": "#c53030", "undefined": "#dd6b20", "bar": "#4a7ab5",
            "line": "#555555"}
_METADATA = {"Date": None, "Creator": None, "Format": None, "Type": None}  # no RDF block, no links


def _field(record: Any, name: str) -> Any:
    return record[name] if isinstance(record, Mapping) else getattr(record, name)


def _number_format(decimal: str) -> FuncFormatter:
    """Tick labels with the interface's decimal mark (Vietnamese: comma) and a true minus."""
    return FuncFormatter(lambda value, _: f"{value:g}".replace("-", "−").replace(".", decimal))


def _finish(axes, title: str, xlabel: str, ylabel: str, decimal: str) -> None:
    axes.set_title(title, fontsize=11)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.xaxis.set_major_formatter(_number_format(decimal))
    axes.yaxis.set_major_formatter(_number_format(decimal))
    axes.spines[["top", "right"]].set_visible(False)


def _svg(figure: Figure, title: str) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata=_METADATA)
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]  # drop the XML declaration and the DOCTYPE (a DTD address)
    svg = svg.replace(' xmlns:xlink="http://www.w3.org/1999/xlink"', "").replace("xlink:href=", "href=")
    label = (title.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))
    # An accessible name for the picture: role and <title> right after the opening tag.
    return re.sub(r"<svg\b([^>]*)>", lambda m: f'<svg{m.group(1)} role="img"><title>{label}</title>', svg, count=1)


def score_histogram_svg(distribution: Any, title: str, *, labels: Mapping[str, str] | None = None,
                        decimal: str = ",") -> str:
    """Histogram of candidates' totals (a ``ScoreDistribution`` or its ``to_dict()``), with
    the mean marked. ``decimal``: the decimal mark of the numbers shown."""
    text = {**DEFAULT_LABELS, **(labels or {})}
    edges = [float(e) for e in _field(distribution, "bin_edges")]
    counts = [int(c) for c in _field(distribution, "counts")]
    mean = _field(distribution, "mean")
    figure = Figure(figsize=(7.5, 3.6), layout="constrained")
    axes = figure.add_subplot()
    if counts:
        widths = [b - a for a, b in zip(edges, edges[1:], strict=False)]
        axes.bar(edges[:-1], counts, width=widths, align="edge", color=_COLOURS["bar"], edgecolor="white",
                 linewidth=0.5)
        axes.set_xlim(edges[0], edges[-1])
    if mean is not None:
        axes.axvline(mean, color=_COLOURS["line"], linestyle="--", linewidth=1,
                     label=f"{text['mean']}: {mean:.2f}".replace("-", "−").replace(".", decimal))
        axes.legend(loc="upper left", frameon=False, fontsize=8)
    _finish(axes, title, text["score"], text["candidates"], decimal)
    axes.grid(axis="y", color="#dddddd", linewidth=0.5)
    axes.set_axisbelow(True)
    return _svg(figure, title)


def difficulty_discrimination_svg(items: Sequence[Any], *, title: str | None = None,
                                  labels: Mapping[str, str] | None = None, decimal: str = ",") -> str:
    """Scatter of difficulty p against point-biserial r_pb, one point per item (``ItemStatistics``
    or their ``to_dict()``); flagged items highlighted, negative discrimination and possible
    wrong key most strongly; the flag thresholds drawn as lines. Items whose r_pb is undefined
    (everyone with the same points, e.g. all right) are drawn hollow at r = 0; items nobody
    had are left out."""
    text = {**DEFAULT_LABELS, **(labels or {})}
    title = text["difficulty_discrimination"] if title is None else title
    groups: dict[str, list] = {"ok": [], "flagged": [], "serious": [], "undefined": []}
    for item in items:
        p, r = _field(item, "difficulty"), _field(item, "point_biserial")
        if p is None:
            continue
        flags = set(_field(item, "flags"))
        kind = ("undefined" if r is None else "serious" if flags & {NEGATIVE_DISCRIMINATION, POSSIBLE_WRONG_KEY}
                else "flagged" if flags else "ok")
        groups[kind].append((float(p), 0.0 if r is None else float(r), _field(item, "item_id")))

    figure = Figure(figsize=(7.5, 5.0), layout="constrained")
    axes = figure.add_subplot()
    points = [point for group in groups.values() for point in group]
    low = min([-0.2] + [r for _, r, _ in points]) - 0.05
    high = max([0.6] + [r for _, r, _ in points]) + 0.05
    axes.set_xlim(-0.02, 1.02)
    axes.set_ylim(max(-1.05, low), min(1.05, high))
    axes.axhspan(max(-1.05, low), 0, color="#fde8e8", zorder=0)
    for x in (TOO_HARD, TOO_EASY):
        axes.axvline(x, color=_COLOURS["line"], linestyle=":", linewidth=1)
    axes.axhline(0, color=_COLOURS["line"], linewidth=0.8)
    axes.axhline(LOW_POINT_BISERIAL, color=_COLOURS["line"], linestyle=":", linewidth=1)
    styles = {"ok": ("o", 22), "flagged": ("D", 26), "serious": ("^", 40), "undefined": ("o", 30)}
    for kind, group in groups.items():
        if group:
            marker, size = styles[kind]
            hollow = kind == "undefined"
            axes.scatter([p for p, _, _ in group], [r for _, r, _ in group], s=size, marker=marker,
                         facecolors="none" if hollow else _COLOURS[kind], edgecolors=_COLOURS[kind],
                         linewidths=1 if hollow else 0, alpha=0.8, label=f"{text[kind]} ({len(group)})", zorder=3)
    flagged = groups["flagged"] + groups["serious"] + groups["undefined"]
    if len(flagged) <= ANNOTATE_AT_MOST:
        for p, r, item_id in flagged:
            axes.annotate(str(item_id), (p, r), xytext=(4, 3), textcoords="offset points", fontsize=7, zorder=4)
    if points:
        axes.legend(loc="upper left", frameon=False, fontsize=8)
    _finish(axes, title, text["difficulty"], text["discrimination"], decimal)
    return _svg(figure, title)
