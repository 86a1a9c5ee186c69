"""Small inline SVG charts of measured shares for the HTML report (no JavaScript, no external files).

One row per judged outcome: the 0-100 % scale, the acceptance band (green), the expected share
(a dark tick), the observed share (a dot: green inside the band, red outside) and its exact
confidence interval (a whisker). Input is what ProportionVerdict.to_json() writes into figures."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from html import escape
from typing import Any

from markupsafe import Markup

from meshconform.report.figures import find

LABEL_W, TRACK_W, NOTE_W, ROW_H, AXIS_H = 70, 300, 230, 22, 16
# The widest a 12 px system-ui character draws (an "m", a "w"): a label is given room for this many per character,
# so that no name is cut at the chart's left edge ("not_mirrored" was).
CHAR_W = 7.5
VERDICT_KEYS = frozenset({"name", "expected", "observed", "total", "accept_low", "accept_high", "ci_low", "ci_high"})


def find_verdicts(figures: Any) -> Iterator[tuple[str, list[Mapping[str, Any]]]]:
    """(figure name, verdicts) for every group of proportion verdicts anywhere in a test's figures."""
    return find(figures, _verdicts)


def _verdicts(figure: Mapping[str, Any]) -> list[Mapping[str, Any]] | None:
    """A verdict itself, or a figure's list of verdicts (a share sample's)."""
    if VERDICT_KEYS <= figure.keys():
        return [figure]
    verdicts = figure.get("verdicts")
    if isinstance(verdicts, list) and verdicts and all(
            isinstance(v, Mapping) and VERDICT_KEYS <= v.keys() for v in verdicts):
        return verdicts
    return None


def label_width(names: list[str]) -> float:
    """Room for the longest row name, right-aligned before the track."""
    return max(float(LABEL_W), 12 + CHAR_W * max((len(name) for name in names), default=0))


def share_chart(verdicts: list[Mapping[str, Any]]) -> Markup:
    """An SVG for one group of verdicts (a split, or one share judged on its own)."""
    label_w = label_width([str(verdict["name"]) for verdict in verdicts])

    def _x(share: float) -> float:
        return label_w + max(0.0, min(1.0, share)) * TRACK_W
    width, height = label_w + TRACK_W + NOTE_W, AXIS_H + ROW_H * len(verdicts)
    parts = [f'<svg class="share-chart" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height}" '
             f'viewBox="0 0 {width:.0f} {height}" role="img" aria-label="observed versus expected shares">']
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        x = _x(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{AXIS_H - 4}" x2="{x:.1f}" y2="{height}" stroke="#e1e4e8"/>')
        parts.append(f'<text x="{x:.1f}" y="{AXIS_H - 6}" font-size="10" text-anchor="middle" '
                     f'fill="#57606a">{tick:.0%}</text>')
    for row, verdict in enumerate(verdicts):
        total = int(verdict["total"]) or 1
        y = AXIS_H + row * ROW_H + ROW_H / 2
        observed, expected = float(verdict["observed"]) / total, float(verdict["expected"])
        low, high = _x(int(verdict["accept_low"]) / total), _x(int(verdict["accept_high"]) / total)
        passed = int(verdict["accept_low"]) <= int(verdict["observed"]) <= int(verdict["accept_high"])
        colour = "#1a7f37" if passed else "#cf222e"
        name = escape(str(verdict["name"]))
        parts += [
            f'<text x="{label_w - 6:.1f}" y="{y + 4:.1f}" font-size="12" text-anchor="end">{name}</text>',
            f'<line x1="{_x(0)}" y1="{y:.1f}" x2="{_x(1)}" y2="{y:.1f}" stroke="#d0d7de" stroke-width="2"/>',
            f'<rect class="band" x="{low:.1f}" y="{y - 7:.1f}" width="{max(high - low, 2):.1f}" height="14" '
            f'fill="#2da44e" fill-opacity="0.25"><title>accepted {verdict["accept_low"]}..{verdict["accept_high"]} '
            f'of {verdict["total"]}</title></rect>',
            f'<line class="expected" x1="{_x(expected):.1f}" y1="{y - 9:.1f}" x2="{_x(expected):.1f}" '
            f'y2="{y + 9:.1f}" stroke="#24292f" stroke-width="2"><title>expected {expected:.1%}</title></line>',
            f'<line class="interval" x1="{_x(float(verdict["ci_low"])):.1f}" y1="{y:.1f}" '
            f'x2="{_x(float(verdict["ci_high"])):.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="3"/>',
            f'<circle class="observed" cx="{_x(observed):.1f}" cy="{y:.1f}" r="4.5" fill="{colour}">'
            f'<title>observed {verdict["observed"]} of {verdict["total"]}</title></circle>',
            f'<text x="{label_w + TRACK_W + 10:.1f}" y="{y + 4:.1f}" font-size="12" fill="{colour}">'
            f'{observed:.1%} of {verdict["total"]} (expected {expected:.0%})</text>',
        ]
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 (every interpolated text is escaped or numeric)


def share_charts(figures: Any) -> list[tuple[str, Markup]]:
    return [(name, share_chart(verdicts)) for name, verdicts in find_verdicts(figures)]
