"""The data behind each of seed 000's seven figures, one function per figure, separate from the charts.

Each function takes the cleaned titles (`mediaml.tasks.catalog.data.clean_titles`) and returns a small
aggregated table; the charts draw exactly these tables and the report's sentences quote them, so
what a test checks is what a reader sees. Counts are plain int64, sorted deterministically.
"""
from __future__ import annotations

import pandas as pd

MIN_YEAR = 2004  # the seed starts the time views here: earlier years hold very few titles


def _top(values: pd.Series, n: int, name: str) -> pd.DataFrame:
    """The seed's `value_counts().nlargest(n)`: ties at the cut keep the first in count order."""
    counts = values.dropna().value_counts().nlargest(n)
    total = int(values.notna().sum())
    out = pd.DataFrame({name: counts.index.astype(str), "count": counts.to_numpy().astype("int64")})
    out["share"] = out["count"] / total if total else 0.0
    return out


def titles_by_year(titles: pd.DataFrame, min_year: int = MIN_YEAR) -> pd.DataFrame:
    """Fig 4.1: titles per release year and type, from `min_year` on (release_year, type, count)."""
    modern = titles[titles["release_year"] >= min_year]
    out = modern.groupby(["release_year", "type"]).size().rename("count").reset_index()
    return out.astype({"release_year": "int64", "type": str, "count": "int64"}).sort_values(
        ["release_year", "type"], ignore_index=True)


def top_genres(titles: pd.DataFrame, genres: pd.DataFrame | None = None, n: int = 10) -> pd.DataFrame:
    """Fig 4.2: the n most common main genres (genre, count, share of titles with a genre).

    With the exploded view, `listed` is how many titles list the genre anywhere (not only first).
    """
    out = _top(titles["main_genre"], n, "genre")
    if genres is not None:
        listed = genres.groupby("genre")["show_id"].nunique()
        out["listed"] = out["genre"].map(listed).fillna(0).astype("int64")
    return out


def genre_rating(titles: pd.DataFrame, top: list[str]) -> pd.DataFrame:
    """Fig 4.3: titles per (type, main genre, rating group) for the top genres; titles without a rating skipped."""
    rated = titles[titles["main_genre"].isin(top) & titles["rating_group"].notna()]
    out = rated.groupby(["type", "main_genre", "rating_group"]).size().rename("count").reset_index()
    return out.astype({"type": str, "main_genre": str, "rating_group": str, "count": "int64"}).sort_values(
        ["type", "main_genre", "rating_group"], ignore_index=True)


def genre_share_by_year(titles: pd.DataFrame, top: list[str], min_year: int = MIN_YEAR) -> pd.DataFrame:
    """Fig 4.4: titles per (release year, main genre) among the top genres, and the share within the year.

    The share is what the seed's `stack="normalize"` draws: each year's top-genre titles sum to 1.
    """
    modern = titles[(titles["release_year"] >= min_year) & titles["main_genre"].isin(top)]
    out = modern.groupby(["release_year", "main_genre"]).size().rename("count").reset_index()
    out = out.astype({"release_year": "int64", "main_genre": str, "count": "int64"})
    out["share"] = out["count"] / out.groupby("release_year")["count"].transform("sum")
    return out.sort_values(["release_year", "main_genre"], ignore_index=True)


def top_countries(titles: pd.DataFrame, countries: pd.DataFrame | None = None, n: int = 15) -> pd.DataFrame:
    """Figs 4.5 and 4.6: the n countries listed first most often (country, count, share of titles with a country).

    With the exploded view, `listed` counts titles that list the country anywhere (co-productions too).
    """
    out = _top(titles["country_primary"], n, "country")
    if countries is not None:
        listed = countries.groupby("country")["show_id"].nunique()
        out["listed"] = out["country"].map(listed).fillna(0).astype("int64")
    return out


def lag_histogram(titles: pd.DataFrame) -> pd.DataFrame:
    """Fig 4.7: titles per (type, whole-year lag between release and addition); titles without year_added skipped.

    One bin per year, as the seed's `bin=alt.Bin(step=1)` on integer lags: [lag, lag + 1).
    """
    known = titles[titles["lag_years"].notna()]
    out = known.groupby(["type", "lag_years"]).size().rename("count").reset_index()
    out = out.astype({"type": str, "lag_years": "int64", "count": "int64"})
    out["lag_end"] = out["lag_years"] + 1
    return out.sort_values(["type", "lag_years"], ignore_index=True)


def figure_data(titles: pd.DataFrame, genres: pd.DataFrame | None = None,
                countries: pd.DataFrame | None = None, min_year: int = MIN_YEAR, n_genres: int = 10,
                n_countries: int = 15) -> dict[str, pd.DataFrame]:
    """Every figure's table, keyed by the figure's file stem."""
    genre_top = top_genres(titles, genres, n_genres)
    top = genre_top["genre"].tolist()
    country_top = top_countries(titles, countries, n_countries)
    return {
        "fig1_titles_by_year": titles_by_year(titles, min_year),
        "fig2_top_genres": genre_top,
        "fig3_genre_rating": genre_rating(titles, top),
        "fig4_genre_share": genre_share_by_year(titles, top, min_year),
        "fig5_top_countries": country_top,
        "fig6_country_hover": country_top,
        "fig7_lag": lag_histogram(titles),
    }
