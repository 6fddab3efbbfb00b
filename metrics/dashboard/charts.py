"""Plotly figure builders: data in, figure out.

Nothing here touches the database. Every string that came from a user (operation names,
episode codes, models, metadata) goes through ``_text`` before it enters a figure: plotly.js
renders labels and hover text as a small HTML subset, and an escaped ``&lt;script&gt;`` is
shown as the text ``<script>``. ``embed`` then makes the figure's JSON safe to place inside
a ``<script type="application/json">`` element.
"""

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import plotly.graph_objects as go
from django.utils.safestring import SafeString, mark_safe

from metrics.dashboard.colours import styles_for

PALETTE = [
    "#3558d4", "#e07b39", "#2a9d8f", "#b5477b", "#8a6fd1", "#d1a23a", "#4a7f3a", "#7d8597",
    "#c4320a", "#1b998b",
]
OK_COLOUR, FAILED_COLOUR, RUNNING_COLOUR = "#3558d4", "#c4320a", "#98a2b3"
HOVER_CHARS = 300
NARROW_MARGIN_L = 115  # px for row labels on a phone
NARROW_LABEL_CHARS = 12

_JSON_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


def _text(value: object) -> str:
    return html.escape(str(value), quote=False)


def _num(value) -> float | None:
    if value is None:
        return None
    return float(value) if isinstance(value, Decimal) else value


# A small template of our own: plotly's named templates are deep-copied into every figure
# (~0.1 s each). Figures are also built in one go.Figure() call: later update_layout() and
# update_xaxes() calls re-validate the layout and cost several times more.
_AXIS = {"gridcolor": "#eef0f4", "linecolor": "#d0d5dd", "zerolinecolor": "#d0d5dd",
         "automargin": True}
TEMPLATE = {"layout": {"paper_bgcolor": "#fff", "plot_bgcolor": "#fff", "colorway": PALETTE,
                       "hovermode": "closest"}}


def _figure(
    traces: Sequence, *, height: int = 320, y_title: str = "", xaxis: dict | None = None,
    yaxis: dict | None = None, **layout,
) -> go.Figure:
    base = {
        "template": TEMPLATE,
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 20, "b": 60},
        "font": {"family": "system-ui, -apple-system, Segoe UI, sans-serif", "size": 12},
        "legend": {"orientation": "h", "y": -0.2},
        "hoverlabel": {"align": "left"},
        "xaxis": {**_AXIS, **(xaxis or {})},
        "yaxis": {**_AXIS, "title": {"text": y_title}, **(yaxis or {})},
    }
    return go.Figure(data=list(traces), layout={**base, **layout})


def linked(fig: go.Figure, by: str, links: Mapping[str, str]) -> go.Figure:
    """Clicking a point or bar opens its page: dashboard.js looks the point's x, series
    name or text ("by") up in these links. Keys are the figure's (escaped) labels."""
    meta = dict(fig.layout.meta or {})
    meta["links"] = {**meta.get("links", {}), by: {_text(k): v for k, v in links.items()}}
    fig.layout.meta = meta
    return fig


def embed(fig: go.Figure) -> SafeString:
    """The figure's JSON, with <, > and & escaped so it cannot close its <script>."""
    return mark_safe(fig.to_json().translate(_JSON_ESCAPES))  # noqa: S308 - escaped above


# --- trends across episodes ---------------------------------------------------------------


def per_episode_line(
    codes: Sequence[str], values: Sequence, *, y_title: str, percent: bool = False,
    money: bool = False,
) -> go.Figure:
    fmt = ".1f" if percent else ",.4f" if money else ",.2f"
    trace = go.Scatter(
        x=[_text(c) for c in codes],
        y=[_num(v) * 100 if percent and v is not None else _num(v) for v in values],
        mode="lines+markers", line={"color": PALETTE[0]},
        hovertemplate="%{x}: %{y:" + fmt + "}" + ("%" if percent else "") + "<extra></extra>",
    )
    yaxis = {"range": [0, 100], "ticksuffix": "%"} if percent else {}
    if money:
        yaxis["tickprefix"] = "$"
    return _figure([trace], y_title=y_title, xaxis={"type": "category"}, yaxis=yaxis)


def _bars(categories: Sequence, series: Mapping[str, Sequence], *, money: bool,
          escape_x: bool = True, kind: str | None = None, unit: str = "",
          customdata: Sequence | None = None) -> list[go.Bar]:
    """One bar trace per series; with a kind, each series keeps its name's colour."""
    x = [_text(c) for c in categories] if escape_x else list(categories)
    value = "$%{y:,.4f}" if money else "%{y:,.2f}" + (f" {unit}" if unit else "")
    styles = styles_for(kind, series) if kind else {}
    return [
        go.Bar(x=x, y=[_num(v) for v in values], name=_text(name),
               marker=_marker(styles.get(name), PALETTE[i % len(PALETTE)]),
               customdata=customdata,
               hovertemplate="%{fullData.name}<br>%{x}: " + value + "<extra></extra>")
        for i, (name, values) in enumerate(series.items())
    ]


def _marker(style: dict | None, fallback: str) -> dict:
    if style is None:
        return {"color": fallback}
    marker = {"color": style["colour"]}
    if style["pattern"]:
        marker["pattern"] = {"shape": style["pattern"], "fgcolor": "#fff"}
    return marker


def stacked_by_series(
    categories: Sequence, series: Mapping[str, Sequence], *, y_title: str, money: bool = False,
    category_axis: bool = True, kind: str | None = None, customdata: Sequence | None = None,
) -> go.Figure:
    """One bar per category, stacked by series (e.g. cost per episode, stacked by model)."""
    return _figure(
        _bars(categories, series, money=money, escape_x=category_axis, kind=kind,
              customdata=customdata), y_title=y_title,
        barmode="stack", xaxis={"type": "category"} if category_axis else {},
        yaxis={"tickprefix": "$"} if money else {},
    )


def grouped_bars(
    categories: Sequence[str], series: Mapping[str, Sequence], *, y_title: str,
    money: bool = False, height: int = 360, kind: str | None = None, unit: str = "",
) -> go.Figure:
    """Bars side by side: one group per category, one bar per series (e.g. per episode)."""
    return _figure(
        _bars(categories, series, money=money, kind=kind, unit=unit), y_title=y_title,
        barmode="group",
        height=height, xaxis={"type": "category"}, yaxis={"tickprefix": "$"} if money else {},
    )


# --- one episode's runs ---------------------------------------------------------------------


def runs_over_time(
    started: Sequence[datetime], durations: Sequence, costs: Sequence, labels: Sequence[str],
    statuses: Sequence[str],
) -> go.Figure:
    """Each run's duration (left axis) and cost (right axis) by start time."""
    colours = [FAILED_COLOUR if s == "failed" else RUNNING_COLOUR if s == "running"
               else OK_COLOUR for s in statuses]
    text = [_text(label) for label in labels]
    x = [moment.isoformat() for moment in started]
    traces = [
        go.Scatter(x=x, y=[_num(d) for d in durations], name="duration (s)",
                   mode="lines+markers", marker={"color": colours, "size": 8},
                   line={"color": OK_COLOUR}, text=text,
                   hovertemplate="%{text}<br>%{y:,.2f}s<extra></extra>"),
        go.Scatter(x=x, y=[_num(c) for c in costs], name="cost (USD)", yaxis="y2",
                   mode="lines+markers", line={"color": PALETTE[1], "dash": "dot"}, text=text,
                   hovertemplate="%{text}<br>$%{y:,.4f}<extra></extra>"),
    ]
    return _figure(
        traces, y_title="duration (s)", margin={"l": 60, "r": 80, "t": 20, "b": 60},
        yaxis2={"title": {"text": "cost (USD)"}, "overlaying": "y", "side": "right",
                "tickprefix": "$", "tickformat": ",.4f", "rangemode": "tozero",
                "showgrid": False, "tickmode": "auto"},
    )


def horizontal_bars(labels: Sequence[str], values: Sequence, *, x_title: str) -> go.Figure:
    trace = go.Bar(
        y=[_text(label) for label in labels], x=[_num(v) for v in values], orientation="h",
        marker_color=PALETTE[0], hovertemplate="%{y}: %{x:,.2f}<extra></extra>",
    )
    return _figure(
        [trace], height=max(220, 28 * len(labels) + 80),
        margin={"l": 200, "r": 20, "t": 10, "b": 50},
        xaxis={"title": {"text": x_title}}, yaxis={"autorange": "reversed", "type": "category"},
        meta=_narrow(margin_l=NARROW_MARGIN_L, tickvals=[_text(label) for label in labels],
                     ticktext=[_text(_cut(label, NARROW_LABEL_CHARS)) for label in labels]),
    )


# --- the session waterfall --------------------------------------------------------------------


@dataclass(frozen=True)
class WaterfallBar:
    label: str
    depth: int
    start_s: float  # from the session's start
    duration_s: float | None  # None: still running
    status: str  # "ok", "failed" or "running"
    detail: str  # hover: metadata and error, already cut to a readable length
    group: tuple[str, str] | None = None  # (parent id, name) when it stands for siblings


def waterfall(bars: Sequence[WaterfallBar], *, session_elapsed_s: float) -> go.Figure:
    """The operation tree on a time axis, one row per operation in tree order.

    Nesting shows as indentation of the row labels; failed operations are red and running
    ones grey, drawn to the session's elapsed time.
    """
    rows = list(range(len(bars)))
    ticks = [_tick(bar, NARROW_LABEL_CHARS * 4) for bar in bars]
    traces = []
    for status, colour, legend in (("ok", OK_COLOUR, "succeeded"),
                                   ("failed", FAILED_COLOUR, "failed"),
                                   ("running", RUNNING_COLOUR, "running")):
        chosen = [i for i, bar in enumerate(bars) if bar.status == status]
        if not chosen:
            continue
        widths = [
            bars[i].duration_s if bars[i].duration_s is not None
            else max(session_elapsed_s - bars[i].start_s, 0.0)
            for i in chosen
        ]
        traces.append(go.Bar(
            y=[rows[i] for i in chosen], x=widths, base=[bars[i].start_s for i in chosen],
            # One row each: without a fixed width plotly sizes a trace's bars by the gap
            # between its own rows, and two far-apart failures become giant blocks.
            orientation="h", name=legend, marker_color=colour, width=[0.7] * len(chosen),
            # With a base, plotly's %{x} is where the bar ends: the duration goes in
            # customdata so the hover says how long the operation took.
            customdata=[[_text(bars[i].label), bars[i].start_s, _text(bars[i].detail),
                         widths[n], _took(bars[i]), group_key(bars[i].group)]
                        for n, i in enumerate(chosen)],
            hovertemplate="<b>%{customdata[0]}</b><br>starts at %{customdata[1]:,.3f} s, "
            "%{customdata[4]} %{customdata[3]:,.3f} s<br>%{customdata[2]}<extra></extra>",
        ))
    return _figure(
        traces, height=max(240, 18 * len(bars) + 100), barmode="overlay", bargap=0.25,
        margin={"l": 260, "r": 20, "t": 10, "b": 50},
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom"},
        xaxis={"title": {"text": "seconds from the session's start"}, "rangemode": "tozero",
               "ticksuffix": " s"},
        yaxis={"tickmode": "array", "tickvals": rows, "ticktext": ticks,
               "range": [len(bars) - 0.5, -0.5], "showgrid": False},  # first row on top
        meta=_narrow(margin_l=NARROW_MARGIN_L,
                     ticktext=[_tick(bar, NARROW_LABEL_CHARS, indent="\u2002", deepest=3)
                               for bar in bars]),
    )


def _tick(bar: WaterfallBar, chars: int, *, indent: str = "\u2003", deepest: int = 8) -> str:
    """A row label: indented by depth, cut to chars (the hover has the whole name)."""
    label = _cut(bar.label, chars)
    return (indent * min(bar.depth, deepest)) + ("\u2514 " if bar.depth else "") + _text(label)


def _cut(text: str, chars: int) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "\u2026"


def _took(bar: WaterfallBar) -> str:
    if bar.group:
        return "spans"
    return "running for" if bar.duration_s is None else "took"


def group_key(group: tuple[str, str] | None) -> str:
    """The key a group bar's click looks its details up by (charts.linked "detail")."""
    return "" if group is None else _text(f"{group[0]}\u0000{group[1]}")


def _narrow(*, margin_l: int, ticktext: list[str] | None = None,
            tickvals: list | None = None) -> dict:
    """What dashboard.js changes on a narrow screen (a phone): a smaller left margin for
    the row labels and shorter labels, so the bars keep most of the width."""
    narrow = {"margin_l": margin_l}
    if ticktext is not None:
        narrow["ticktext"] = ticktext
    if tickvals is not None:
        narrow["tickvals"] = tickvals
    return {"narrow": narrow}


def hover_detail(metadata: Mapping | None, error: str | None) -> str:
    """Metadata and error of an operation as short hover lines (escaped later)."""
    parts = []
    if metadata:
        parts.append(json.dumps(metadata, ensure_ascii=False, default=str)[:HOVER_CHARS])
    if error:
        parts.append("error: " + error[:HOVER_CHARS])
    return " / ".join(parts)


# --- operations ---------------------------------------------------------------------------------


def quartile_boxes(stats: Mapping[str, Mapping[float, float]], *, y_title: str) -> go.Figure:
    """Box plots from quartiles the database computed; whiskers at the 5th/95th percentile."""
    codes = list(stats)
    trace = go.Box(
        x=[_text(c) for c in codes],
        q1=[stats[c][0.25] for c in codes], median=[stats[c][0.5] for c in codes],
        q3=[stats[c][0.75] for c in codes], lowerfence=[stats[c][0.05] for c in codes],
        upperfence=[stats[c][0.95] for c in codes], marker_color=PALETTE[0],
        name="duration", hoverinfo="x+y",
    )
    return _figure([trace], y_title=y_title, showlegend=False, xaxis={"type": "category"})


def percentile_lines(
    x: Sequence, series: Mapping[str, Sequence], *, y_title: str, category_axis: bool = False,
) -> go.Figure:
    xs = [_text(v) for v in x] if category_axis else [_axis_value(v) for v in x]
    traces = [
        go.Scatter(x=xs, y=[_num(v) for v in values], name=_text(name), mode="lines+markers",
                   line={"color": PALETTE[i % len(PALETTE)]},
                   hovertemplate="%{fullData.name} %{x}: %{y:,.3f}s<extra></extra>")
        for i, (name, values) in enumerate(series.items())
    ]
    return _figure(traces, y_title=y_title, xaxis={"type": "category"} if category_axis else {})


def _axis_value(value):
    return value.isoformat() if isinstance(value, date | datetime) else value


# --- costs -----------------------------------------------------------------------------------


def actual_vs_what_if(codes: Sequence[str], actual: Sequence, what_if: Sequence,
                      *, model: str) -> go.Figure:
    return grouped_bars(
        codes, {"actual": actual, f"priced as {model}": what_if}, y_title="cost (USD)",
        money=True,
    )
