"""Plain-language sentences and the sections of notebooks 03 and 04, so that they only loop and display."""

from __future__ import annotations

from functools import partial

import pandas as pd
from IPython.display import Markdown

from analysis import actions, plots
from analysis import report as rp
from analysis.indicators import Indicator, main_indicators, registry
from analysis.plots import fan_chart
from analysis.report import fmt_pct, t


def change_sentence(ind: pd.DataFrame, iid: str, year: int, lang: str = "vi") -> str:
    d = rp.district_rows(ind)
    d = d[d["indicator_id"] == iid].set_index("year")
    if year in d.index and d.loc[year, "series_break"]:
        return t("change_break", lang)
    if year not in d.index or year - 1 not in d.index or pd.isna(d.loc[year - 1, "value"]):
        return t("change_none", lang)
    before, after, dec = d.loc[year - 1, "value"], d.loc[year, "value"], registry()[iid].decimals
    diff = after - before
    if round(diff, dec) == 0:
        return t("change_flat", lang, after=fmt_pct(after, lang, dec))
    return t("change_up" if diff > 0 else "change_down", lang, points=f"{rp.fmt_num(abs(diff), lang, dec)} {t('points_unit', lang)}",
             before=fmt_pct(before, lang, dec), after=fmt_pct(after, lang, dec))


def pace_sentence(row: dict, lang: str = "vi", decimals: int = 1) -> str:
    """What the pace since the baseline says, in the terms its status was decided in: ahead, behind or away."""
    pace, base = row.get("pace"), row.get("baseline_year")
    if pace not in ("ahead", "behind", "away") or pd.isna(base):
        return ""
    points = partial(rp.fmt_points, lang=lang, decimals=decimals + 1)
    if pace == "away":
        text = t("reading_pace_away", lang, base=int(base), change=points(row["change_per_year_since_baseline"]))
    elif pace == "ahead":
        text = t("reading_pace_ahead", lang, base=int(base), observed=points(row["observed_change_per_year"]),
                 needed=points(row["needed_change_per_year"]), reached=int(row["year_reached_at_pace"]))
    else:
        text = t("reading_pace_behind", lang, base=int(base), observed=points(row["observed_change_per_year"]),
                 needed=points(row["needed_change_per_year"]), ratio=fmt_pct(100 * row["progress_ratio"], lang, 0))
    if row.get("comparator") in ("<", "<=") and not pd.isna(row.get("aarr_observed")) \
            and not pd.isna(row.get("aarr_required")):
        text += t("reading_aarr", lang, observed=fmt_pct(row["aarr_observed"], lang, 0),
                  required=fmt_pct(row["aarr_required"], lang, 0))
    return text


def verdict_sentence(row: dict, spec: Indicator, lang: str = "vi", broke: bool = False) -> str:
    """A sentence a head of school can read; its numbers, pace clause and label come from one verdict row."""
    ty, dec = int(row["target_year"]), spec.decimals
    label = row["label"] if lang == "vi" else row.get("label_en", row["label"])
    if row["status"] == "no_target":
        return t("reading_no_target", lang, ty=ty)
    target = rp.target_cell(row["target_value"], spec, lang)
    if row.get("basis") == "observed":
        key = "reading_observed_met" if row.get("met") else "reading_observed_missed"
        value = fmt_pct(row["observed"], lang, rp.decimals_near(row["observed"], [row["target_value"]], dec))
        return t(key, lang, ty=ty, target=target, value=value)
    if row.get("basis") in ("latest", "projected"):
        band = dict(value=fmt_pct(row["projected"], lang, dec), low=fmt_pct(row["lo80"], lang, dec),
                    high=fmt_pct(row["hi80"], lang, dec), prob=fmt_pct(100 * row["probability"], lang, 0))
        bridged = f" {t('reading_bridged', lang)}" if broke else ""  # a territory change, bridged by a level shift
        if row["basis"] == "latest":
            latest = fmt_pct(row["latest_value"], lang, rp.decimals_near(row["latest_value"], [row["target_value"]], dec))
            return t("reading_projected_kept", lang, ty=ty, target=target, latest=latest, label=label, **band) + bridged
        pace = pace_sentence(row, lang, dec)
        return t("reading_projected", lang, ty=ty, target=target, pace=f"{pace}. " if pace else "", label=label,
                 **band) + bridged
    n = int(row.get("n_points") or 0)
    why = t("why_break", lang, n=n) if broke else (t("why_short", lang, n=n) if n < 3 else t("why_other", lang))
    return t("reading_insufficient", lang, ty=ty, label=label, why=why)


def readings(ind: pd.DataFrame, verdicts: pd.DataFrame, year: int, iid: str, lang: str = "vi") -> Markdown:
    spec, broke = registry()[iid], rp.series_broke(ind, iid, year)
    v = rp.district_verdicts(verdicts, year)
    rows = v[v["indicator_id"] == iid].sort_values("target_year").to_dict("records")
    return Markdown("\n".join(f"- {verdict_sentence(r, spec, lang, broke)}" for r in rows))


def verdict_table(verdicts: pd.DataFrame, year: int, lang: str = "vi"):
    """Every verdict of the year with the evidence behind it (notebook 03)."""
    from analysis.projection import method_label

    v = rp.district_verdicts(verdicts, year)
    rows, keys = [], []
    for iid, spec in main_indicators().items():
        dec = spec.decimals
        for r in v[v["indicator_id"] == iid].sort_values("target_year").to_dict("records"):
            shown, paced = r.get("basis") == "projected", r.get("pace") in ("ahead", "behind")
            band = "{} ({}–{})".format(*(fmt_pct(r.get(c), lang, dec) for c in ("projected", "lo80", "hi80")))
            pace = " · ".join(rp.fmt_points(r.get(c), lang, dec + 1, unit=False)
                              for c in ("observed_change_per_year", "needed_change_per_year"))
            rows.append({
                t("indicator", lang): iid, t("indicator_name", lang): spec.text("short", lang),
                t("target_year", lang): str(int(r["target_year"])),
                t("target_level", lang): rp.target_cell(r["target_value"], spec, lang),
                t("projected_or_actual", lang): band if shown else (
                    fmt_pct(r["observed"], lang, dec) if r.get("basis") == "observed" else ""),
                t("probability", lang): rp.pct(100 * r["probability"], lang, 0) if shown else "",
                t("change_observed_needed", lang): pace if shown and paced else "",
                t("status", lang): r["label"] if lang == "vi" else r.get("label_en", r["label"]),
                t("method", lang): method_label(r["method"], lang) if shown and isinstance(r.get("method"), str) else "",
            })
            keys.append({t("status", lang): rp.verdict_key(r)})
    return pd.DataFrame(rows), pd.DataFrame(keys)


def indicator_section(data, projections, verdicts, iid: str, lang: str = "vi") -> list:
    """Everything the report says about one indicator, in reading order."""
    spec, year, ind = registry()[iid], data.year, data.indicators
    out: list = [Markdown(f"### {iid} · {spec.text('name', lang)}\n\n"
                          f"**{t('what_it_measures', lang)}:** {spec.text('definition', lang)} "
                          f"*{spec.text('coverage', lang)}* {spec.text('caveats', lang)}"),
                 Markdown(f"**{t('changed_heading', lang)}:** {change_sentence(ind, iid, year, lang)}"),
                 Markdown(f"**{t('projection_heading', lang)}**"),
                 fan_chart(ind, projections, data.targets, year, iid, lang),
                 readings(ind, verdicts, year, iid, lang)]
    this_year = ind[(ind["indicator_id"] == iid) & (ind["year"] == year)]
    if (this_year["geo_level"] == "ward").any():
        out += [Markdown(f"**{t('by_ward_heading', lang)}**"), plots.ward_chart(ind, iid, year, data.targets, lang),
                rp.show(rp.ward_table(ind, iid, year, lang), f"wards_{iid}", left=(t("ward", lang),), lang=lang)]
    if (this_year["sex"] == "female").any():
        out += [Markdown(f"**{t('by_sex_heading', lang)}**"), plots.sex_chart(ind, iid, lang, until=year)]
    if iid in dict(actions.ACTION_FLAGS):
        table = rp.action_table(actions.institutions_lacking(data.truong, year, lang), iid, lang)
        out += [Markdown(f"**{t('action_heading', lang)}**"),
                rp.show(table, f"action_{iid}", left=(t("institution", lang),), lang=lang)]
    return out


def methods_annex(lang: str = "vi") -> list:
    table = rp.indicator_meta_table(lang)
    return [Markdown("\n\n".join(t(k, lang) for k in ("methods_projection", "methods_verdict", "methods_geography",
                                                       "methods_suppression"))),
            Markdown(f"### {t('definitions_heading', lang)}"),
            rp.show(table, "definitions", left=tuple(table.columns), lang=lang)]


def quality_section(data, lang: str = "vi") -> list:
    q = data.quality[data.quality["year"] <= data.year]
    table = rp.quality_table(q, data.year, lang)
    return [Markdown(t("quality_intro", lang)),
            rp.show(table, "quality_year", left=tuple(table.columns), lang=lang, empty="no_problems"),
            Markdown(f"**{t('not_reported_heading', lang)}**"),
            rp.show(rp.not_reported_table(q, data.year, lang), "not_reported", left=(t("institution", lang),),
                    lang=lang),
            Markdown(f"**{t('quality_history', lang)}**"),
            rp.show(rp.quality_summary(q, lang), "quality_history", lang=lang)]


def close(items: list) -> None:
    """Close the figures of a section after display (memory in long batch runs)."""
    for item in items:
        if isinstance(item, plots.plt.Figure):
            plots.plt.close(item)
