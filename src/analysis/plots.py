"""The charts: Vietnamese titles and decimal commas, the targets, and series breaks as gaps in the line."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import Formatter, FuncFormatter, MaxNLocator

from analysis import config
from analysis import report as rp
from analysis.indicators import registry
from analysis.report import fmt_num, fmt_pct, t

COLOURS = {"total": "#1f4e79", "female": "#c2185b", "male": "#2e7d32", "target": "#d35400",
           "band80": "#9ecae1", "band95": "#deebf7", "break": "#7f7f7f"}


def setup() -> None:
    """One look for every chart (DejaVu Sans has every Vietnamese glyph)."""
    plt.rcParams.update({
        "figure.figsize": (8, 4.2), "figure.dpi": 96, "savefig.dpi": 96, "font.family": "DejaVu Sans",
        "font.size": 10, "axes.titlesize": 12, "axes.titleweight": "bold", "axes.spines.top": False,
        "axes.spines.right": False, "axes.grid": True, "grid.alpha": 0.3, "legend.frameon": False,
        "svg.hashsalt": "analysis", "figure.max_open_warning": 0,
    })


def _layout(fig):
    """Room for labels without a tight-layout pass (it re-measures every text; the inline backend crops)."""
    fig.subplots_adjust(left=0.12, right=0.95, top=0.9, bottom=0.14)
    return fig


class PercentFormatter(Formatter):
    """One number of decimals per axis, the fewest that tell its ticks apart (never '0,50%' beside '1,5%')."""

    def __init__(self, lang: str):
        self.lang, self.ticks = lang, []

    def set_locs(self, locs) -> None:
        self.ticks = list(locs)

    def __call__(self, v, pos=None) -> str:
        locs = np.asarray(self.ticks or [v], dtype=float)
        d = next(d for d in range(4) if d == 3 or np.allclose(locs, np.round(locs, d), atol=1e-9))
        return fmt_num(v, self.lang, d) + "%"


def _over_time(ax, iid: str, lang: str, frame: pd.DataFrame, targets: pd.DataFrame | None = None,
               about: str = "") -> None:
    """A chart over the years: the plan's targets, the series breaks of ``frame``, title, percent and year axes."""
    spec = registry()[iid]
    for r in () if targets is None else targets[targets["indicator_id"] == iid].itertuples(index=False):
        # the value in the legend, not beside the star: there it would overlap the observed value's label
        first = r.target_year == config.TARGET_YEARS[0]
        ax.scatter([r.target_year], [r.target_value], marker="*" if first else "P", s=170 if first else 90,
                   color=COLOURS["target"], zorder=5,
                   label=t("target_marker", lang, year=r.target_year, target=rp.target_cell(r.target_value, spec, lang)))
    for year in frame.loc[frame["series_break"], "year"]:
        ax.axvline(year - 0.5, color=COLOURS["break"], linestyle=":", linewidth=1.2)
        ax.annotate(t("series_break", lang), (year - 0.5, 0.02), xycoords=("data", "axes fraction"),
                    rotation=90, fontsize=8, color=COLOURS["break"], ha="right", va="bottom")
    ax.set_title(f"{iid} · {spec.text('short', lang)}{about}")
    ax.set_ylabel(t("percent_axis", lang))
    ax.yaxis.set_major_formatter(PercentFormatter(lang))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{int(v)}"))


def _series(ax, frame: pd.DataFrame, colour: str, label: str | None = None, **style) -> None:
    """A series as a line split at its breaks (territory changes), never drawn across them."""
    frame = frame.sort_values("year")
    ids = frame["territory_id"].astype(str)
    for i, (_, seg) in enumerate(frame.groupby((ids != ids.shift()).cumsum(), sort=True)):
        ax.plot(seg["year"], seg["value"], marker="o", color=colour, label=label if i == 0 else None, **style)


def trend_chart(ind: pd.DataFrame, iid: str, targets: pd.DataFrame | None = None, lang: str = "vi",
                until: int | None = None, level: str = "district", ax=None):
    """The indicator over the years, the targets and any series break (a census: no sampling interval)."""
    setup()
    d = ind[(ind["indicator_id"] == iid) & (ind["geo_level"] == level) & (ind["sex"] == "total")]
    d = d if until is None else d[d["year"] <= until]
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots()
    _series(ax, d, COLOURS["total"], linewidth=2)
    _over_time(ax, iid, lang, d, targets)
    ax.set_xlabel(t("year_axis", lang))
    for last in d.dropna(subset=["value"]).tail(1).itertuples():
        ax.annotate(fmt_pct(last.value, lang), (last.year, last.value), textcoords="offset points", xytext=(6, -12),
                    fontsize=9, color=COLOURS["total"])
    if targets is not None and (targets["indicator_id"] == iid).any():
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
    return _layout(fig)


def sex_chart(ind: pd.DataFrame, iid: str, lang: str = "vi", until: int | None = None, ax=None):
    setup()
    d = ind[(ind["indicator_id"] == iid) & (ind["geo_level"] == "district") & ind["sex"].isin(["female", "male"])]
    d = d if until is None else d[d["year"] <= until]
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 3.6))
    for sex in ("female", "male"):
        _series(ax, d[d["sex"] == sex], COLOURS[sex], t(sex, lang))
    _over_time(ax, iid, lang, d[d["sex"] == "female"], about=f" — {t('sex', lang).lower()}")
    ax.legend(fontsize=8)
    return _layout(fig)


def ward_chart(ind: pd.DataFrame, iid: str, year: int, targets: pd.DataFrame | None = None, lang: str = "vi",
               target_year: int = config.TARGET_YEARS[0], level: str = "ward", ax=None):
    """Wards in one year: bars from zero (a cut axis exaggerates), counts, why a ward is hidden, the district target."""
    setup()
    spec = registry()[iid]
    w = rp.ward_rows(ind, iid, year, level).sort_values("value", ascending=spec.direction == "decrease")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots(figsize=(8, 0.42 * max(len(w), 4) + 1.3))
    ypos = np.arange(len(w))
    shown = (w["hidden"] == "") & w["value"].notna()
    ax.barh(ypos[shown.to_numpy()], w.loc[shown, "value"], color=COLOURS["total"], alpha=0.85)
    for y, r in zip(ypos, w.itertuples(index=False)):
        blank = bool(r.hidden) or pd.isna(r.value)
        text = (rp.hidden_label(r.hidden, lang) if r.hidden else t("not_available", lang) if pd.isna(r.value)
                else f"{fmt_pct(r.value, lang, spec.decimals)} ({fmt_num(r.numerator, lang)}/{fmt_num(r.denominator, lang)})")
        ax.annotate(text, (0 if blank else r.value, y), xytext=(4, 0), textcoords="offset points", va="center",
                    fontsize=8, color=COLOURS["break"] if blank else "#222222")
    ax.set_yticks(ypos, list(w["geo_name"]))
    top = 100.0 if spec.direction == "increase" else max(float(w["value"].max(skipna=True) or 0), 0.1)
    ax.set_xlim(0, top * 1.3)  # room for the labels right of the longest bar
    if targets is not None:
        tv = targets[(targets["indicator_id"] == iid) & (targets["target_year"] == target_year)]
        if len(tv):
            value = tv["target_value"].iloc[0]
            ax.axvline(value, color=COLOURS["target"], linestyle="--", label=t(
                "target_district", lang, year=target_year, target=rp.target_cell(value, spec, lang)))
            ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=1)
    ax.xaxis.set_major_formatter(PercentFormatter(lang))
    ax.set_xticks([x for x in ax.get_xticks() if 0 <= x <= top])
    ax.grid(axis="y", visible=False)
    ax.set_title(f"{iid} · {spec.text('short', lang)} — {t('wards', lang).lower()}, {year}")
    return _layout(fig)


def fan_chart(ind: pd.DataFrame, projections: pd.DataFrame, targets: pd.DataFrame | None, year: int, iid: str,
              lang: str = "vi", ax=None):
    """History, the projection made in ``year`` with its 80% and 95% intervals, the targets and any break."""
    setup()
    history = rp.district_rows(ind)
    history = history[(history["indicator_id"] == iid) & (history["year"] <= year)]
    p = projections[(projections["as_of"] == year) & (projections["indicator_id"] == iid)
                    & (projections["sex"] == "total")]
    p = p[p["geo_level"] == rp.top_level(p)].dropna(subset=["value"]).sort_values("year")
    fig, ax = (ax.figure, ax) if ax is not None else plt.subplots()
    _series(ax, history, COLOURS["total"], t("history", lang), linewidth=2)
    if len(p):
        last = history.dropna(subset=["value"]).sort_values("year").tail(1)
        joined = pd.concat([last.assign(lo80=last["value"], hi80=last["value"], lo95=last["value"],
                                        hi95=last["value"]), p], ignore_index=True)
        for level in ("95", "80"):
            ax.fill_between(joined["year"], joined[f"lo{level}"], joined[f"hi{level}"], color=COLOURS[f"band{level}"],
                            linewidth=0, label=t(f"band{level}", lang))
        ax.plot(joined["year"], joined["value"], color=COLOURS["total"], linestyle="--", linewidth=1.8,
                label=t("projection", lang))
    _over_time(ax, iid, lang, history, targets)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3)
    return _layout(fig)

