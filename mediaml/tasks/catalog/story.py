"""Headline numbers and the interpretation sentences under each chart, computed from the figure tables.

Nothing here is hard-coded prose about Netflix: every name and number in a sentence comes from the
tables of `catalog_figures`, so a newer catalogue export gets sentences that describe it.
"""
from __future__ import annotations

import numpy as np
import pandas as pd


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def plural(n: float, word: str) -> str:
    """'1 year', '2 years', '1,008 titles'."""
    return f"{n:,.0f} {word}{'' if n == 1 else 's'}"


def _share(part: float, whole: float) -> float:
    return float(part) / float(whole) if whole else float("nan")


def headline(titles: pd.DataFrame, figs: dict[str, pd.DataFrame]) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, names): `report/...` numbers for MLflow and the names they refer to (top genre, ...)."""
    n = len(titles)
    by_type = titles["type"].value_counts()
    years = figs["fig1_titles_by_year"].groupby("release_year")["count"].sum()
    genres, countries, lag = figs["fig2_top_genres"], figs["fig5_top_countries"], figs["fig7_lag"]
    lags = np.repeat(lag["lag_years"].to_numpy(), lag["count"].to_numpy())
    groups = titles["rating_group"].value_counts(normalize=True)
    m = {
        "report/titles": n,
        "report/titles_movie": int(by_type.get("Movie", 0)),
        "report/titles_tv_show": int(by_type.get("TV Show", 0)),
        "report/share_movie": _share(by_type.get("Movie", 0), n),
        "report/peak_release_year": int(years.idxmax()) if len(years) else float("nan"),
        "report/peak_release_year_titles": int(years.max()) if len(years) else 0,
        "report/top_genre_share": float(genres["share"].iloc[0]) if len(genres) else float("nan"),
        "report/top2_genre_share": float(genres["share"].iloc[:2].sum()) if len(genres) else float("nan"),
        "report/mature_share": float(groups.get("Mature", 0.0)),
        "report/teen_share": float(groups.get("Teen", 0.0)),
        "report/family_kids_share": float(groups.get("Family/Kids", 0.0)),
        "report/top_country_share": float(countries["share"].iloc[0]) if len(countries) else float("nan"),
        "report/top2_country_share": float(countries["share"].iloc[:2].sum()) if len(countries) else float("nan"),
        "report/median_lag_years": float(np.median(lags)) if len(lags) else float("nan"),
        "report/share_added_within_5y": _share(((lags >= 0) & (lags <= 5)).sum(), len(lags)),
        "report/share_added_within_10y": _share(((lags >= 0) & (lags <= 10)).sum(), len(lags)),
        "report/share_added_same_year": _share((lags == 0).sum(), len(lags)),
    }
    for kind, key in (("Movie", "movie"), ("TV Show", "tv_show")):
        sub = lag[lag["type"] == kind]
        vals = np.repeat(sub["lag_years"].to_numpy(), sub["count"].to_numpy())
        m[f"report/median_lag_years_{key}"] = float(np.median(vals)) if len(vals) else float("nan")
    names = {
        "top_genre": genres["genre"].iloc[0] if len(genres) else "",
        "second_genre": genres["genre"].iloc[1] if len(genres) > 1 else "",
        "top_country": countries["country"].iloc[0] if len(countries) else "",
        "second_country": countries["country"].iloc[1] if len(countries) > 1 else "",
        "latest_date_added": str(titles["date_added"].max().date()) if titles["date_added"].notna().any() else "",
    }
    return m, names


def _period_split(years: pd.Series) -> int:
    """The first year of the 'recent' half of the release years shown (the seed speaks of 2014-2016)."""
    lo, hi = int(years.min()), int(years.max())
    return lo + (hi - lo + 1) // 2


def sentences(titles: pd.DataFrame, figs: dict[str, pd.DataFrame], m: dict[str, float],
              names: dict[str, str]) -> dict[str, list[str]]:
    """Interpretation paragraphs per figure stem, each built from the figure's own table."""
    out: dict[str, list[str]] = {}

    f1 = figs["fig1_titles_by_year"]
    if len(f1):
        per_year = f1.groupby("release_year")["count"].sum()
        pivot = f1.pivot_table(index="release_year", columns="type", values="count", fill_value=0)
        split = _period_split(per_year.index.to_series())
        early, late = pivot[pivot.index < split].sum(), pivot[pivot.index >= split].sum()
        tv = lambda part: _share(part.get("TV Show", 0), part.sum())  # noqa: E731
        first, last = int(per_year.index.min()), int(per_year.index.max())
        out["fig1_titles_by_year"] = [
            f"{int(per_year.sum()):,} of {len(titles):,} titles were released in {first}-{last}. "
            f"Titles per release year grow from {int(per_year.iloc[0]):,} in {first} to a peak of "
            f"{int(per_year.max()):,} in {int(per_year.idxmax())}; {pct(_share(late.sum(), per_year.sum()))} "
            f"of them were released in {split} or later.",
            f"TV Shows are {pct(tv(early))} of the titles released {first}-{split - 1} and {pct(tv(late))} "
            f"of those released {split}-{last}: Movies dominate the earlier years, TV Shows gain share later.",
            f"The last year shown is incomplete: the latest title was added on {names['latest_date_added']}, "
            f"so the drop after the peak is partly the export date. Drag the Year slider to see the catalogue "
            f"as it looked up to any release year.",
        ]

    f2 = figs["fig2_top_genres"]
    if len(f2):
        rest = ", ".join(f"{g} ({c:,})" for g, c in zip(f2["genre"].iloc[2:5], f2["count"].iloc[2:5]))
        text = [f"{f2['genre'].iloc[0]} ({int(f2['count'].iloc[0]):,} titles, {pct(f2['share'].iloc[0])}) and "
                f"{f2['genre'].iloc[1]} ({int(f2['count'].iloc[1]):,}, {pct(f2['share'].iloc[1])}) are the most "
                f"common main genres, followed by {rest}. The top ten hold {pct(f2['share'].sum())} of all titles."]
        if "listed" in f2:
            g0 = f2.iloc[0]
            text.append(f"Counting every listed genre, not only the first, {g0['genre']} appears on "
                        f"{int(g0['listed']):,} titles ({int(g0['listed']) - int(g0['count']):,} more than as main "
                        f"genre): the main-genre view undercounts genres that are often listed second.")
        out["fig2_top_genres"] = text

    f3 = figs["fig3_genre_rating"]
    if len(f3):
        text = []
        for kind, cells in f3.groupby("type"):
            top = cells.loc[cells["count"].idxmax()]
            by_group = cells.groupby("rating_group")["count"].sum()
            text.append(f"{kind}s: the largest cell is {top['main_genre']} × {top['rating_group']} "
                        f"({int(top['count']):,} titles); across the top genres "
                        + ", ".join(f"{g} {pct(_share(c, by_group.sum()))}" for g, c in
                                    by_group.sort_values(ascending=False).items()) + ".")
        per_genre = f3.pivot_table(index="main_genre", columns="rating_group", values="count", aggfunc="sum",
                                   fill_value=0)
        per_genre = per_genre[per_genre.sum(axis=1) >= 20]
        if len(per_genre) and {"Mature", "Family/Kids"} <= set(per_genre.columns):
            frac = per_genre.div(per_genre.sum(axis=1), axis=0)
            text.append(f"Most Mature-skewed genre: {frac['Mature'].idxmax()} ({pct(frac['Mature'].max())} "
                        f"Mature); most Family/Kids-skewed: {frac['Family/Kids'].idxmax()} "
                        f"({pct(frac['Family/Kids'].max())}). Overall {pct(m['report/mature_share'])} of rated "
                        f"titles are Mature, {pct(m['report/teen_share'])} Teen and "
                        f"{pct(m['report/family_kids_share'])} Family/Kids: the catalogue skews to older audiences.")
        out["fig3_genre_rating"] = text

    f4 = figs["fig4_genre_share"]
    if len(f4):
        split = _period_split(f4["release_year"])
        period = np.where(f4["release_year"] < split, "early", "late")
        share = f4.groupby([period, "main_genre"])["count"].sum().unstack(0, fill_value=0)
        share = share / share.sum()
        change = (share.get("late", 0) - share.get("early", 0)).sort_values()
        lead = share["late"].idxmax() if "late" in share else share.iloc[:, 0].idxmax()
        out["fig4_genre_share"] = [
            f"Among the top genres, {lead} holds the largest share of titles released from {split} on "
            f"({pct(share.loc[lead, 'late'])}).",
            f"Compared with {int(f4['release_year'].min())}-{split - 1}, the largest gain in share is "
            f"{change.index[-1]} ({change.iloc[-1] * 100:+.1f} points) and the largest loss "
            f"{change.index[0]} ({change.iloc[0] * 100:+.1f} points). Shares are normalised per year, so this "
            f"is the genre mix, not volume; early years have few titles, so their shares are noisy.",
        ]

    f5 = figs["fig5_top_countries"]
    if len(f5):
        c = f5
        out["fig5_top_countries"] = [
            f"{c['country'].iloc[0]} ({int(c['count'].iloc[0]):,} titles, {pct(c['share'].iloc[0])} of titles "
            f"with a country) and {c['country'].iloc[1]} ({int(c['count'].iloc[1]):,}, {pct(c['share'].iloc[1])}) "
            f"lead as primary producing country; next are "
            + ", ".join(f"{x} ({n:,})" for x, n in zip(c["country"].iloc[2:6], c["count"].iloc[2:6])) + ".",
            f"{c['country'].iloc[0]} alone has {c['count'].iloc[0] / max(int(c['count'].iloc[1]), 1):.1f}× the "
            f"titles of {c['country'].iloc[1]}; the 15 countries shown hold {pct(c['share'].sum())} of titles "
            f"with a country ({int(titles['country_primary'].isna().sum()):,} titles list none).",
        ]
    f6 = figs["fig6_country_hover"]
    if len(f6) > 3:
        gaps = f6["count"].diff(-1).iloc[:-1]
        close = int(gaps.iloc[2:].idxmin())
        text = [f"Hover a bar to highlight it. Below the top two the counts are close: "
                f"{f6['country'].iloc[close]} ({int(f6['count'].iloc[close]):,}) and "
                f"{f6['country'].iloc[close + 1]} ({int(f6['count'].iloc[close + 1]):,}) differ by "
                f"{plural(gaps.iloc[close], 'title')}, which is where highlighting helps."]
        if "listed" in f6:
            ratio = f6["listed"] / f6["count"]
            i = int(ratio.idxmax())
            text.append(f"The tooltip also gives the titles listing the country anywhere (co-productions): "
                        f"{f6['country'].iloc[i]} gains most, {int(f6['listed'].iloc[i]):,} listed vs "
                        f"{int(f6['count'].iloc[i]):,} as first country ({ratio.iloc[i]:.1f}×).")
        out["fig6_country_hover"] = text

    f7 = figs["fig7_lag"]
    if len(f7):
        total = int(f7["count"].sum())
        mode = f7.groupby("lag_years")["count"].sum().idxmax()
        neg = int(f7.loc[f7["lag_years"] < 0, "count"].sum())
        out["fig7_lag"] = [
            f"Of {total:,} titles with a date added, {pct(m['report/share_added_within_5y'])} were added 0-5 years "
            f"after release and {pct(m['report/share_added_within_10y'])} within 0-10 years; the most common lag "
            f"is {plural(mode, 'year')} and the median {plural(m['report/median_lag_years'], 'year')}.",
            f"Median lag: Movies {plural(m['report/median_lag_years_movie'], 'year')}, TV Shows "
            f"{plural(m['report/median_lag_years_tv_show'], 'year')}. "
            f"The long tail reaches {plural(f7['lag_years'].max(), 'year')}; {plural(neg, 'title')} "
            f"added before the release year (negative lag).",
        ]
    return out
