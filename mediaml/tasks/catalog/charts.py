"""Seed 000's seven Altair charts, drawn from the figure tables of `catalog_figures`.

Same marks, encodings, interactivity and Netflix colours as the seed; the data passed to each chart
is the aggregated table (not the raw rows), so the report stays small and the numbers a chart shows
are the ones the tests check.
"""
from __future__ import annotations

import altair as alt
import pandas as pd

RED, DARK = "#E50914", "#221F1F"
TYPE_SCALE = alt.Scale(domain=["Movie", "TV Show"], range=[RED, DARK])
WIDTH, HEIGHT = 750, 350


def titles_by_year_chart(data: pd.DataFrame) -> alt.Chart:
    """4.1: line per type; the slider `Year` sets the last release year shown."""
    lo, hi = int(data["release_year"].min()), int(data["release_year"].max())
    year = alt.param("Year", value=hi, bind=alt.binding_range(min=lo, max=hi, step=1, name="Year "))
    return (
        alt.Chart(data)
        .mark_line(point=True)
        .encode(
            x=alt.X("release_year:O", axis=alt.Axis(title="Release Year", labelAngle=45)),
            y=alt.Y("count:Q", title="Number of Titles"),
            color=alt.Color("type:N", title="Content Type", scale=TYPE_SCALE),
            tooltip=["type:N", "release_year:O", alt.Tooltip("count:Q", title="titles")],
        )
        .add_params(year)
        .transform_filter("datum.release_year <= Year")
        .properties(width=WIDTH, height=HEIGHT, title=f"Netflix Titles by Release Year ({lo}–{hi}) – Interactive")
    )


def top_genres_chart(data: pd.DataFrame) -> alt.Chart:
    """4.2: horizontal bars in Netflix red, longest first."""
    tooltip = ["genre:N", alt.Tooltip("count:Q", title="titles (main genre)"), alt.Tooltip("share:Q", format=".1%")]
    if "listed" in data:
        tooltip.append(alt.Tooltip("listed:Q", title="titles listing it"))
    return (
        alt.Chart(data)
        .mark_bar(color=RED)
        .encode(x=alt.X("count:Q", title="Number of Titles"), y=alt.Y("genre:N", sort="-x", title="Main Genre"),
                tooltip=tooltip)
        .properties(width=WIDTH, height=HEIGHT, title=f"Top {len(data)} Netflix Genres")
    )


def genre_rating_chart(data: pd.DataFrame, genre_order: list[str]) -> alt.Chart:
    """4.3: genre x rating-group heatmap in reds, one panel per type (the seed's text: faceted by type)."""
    return (
        alt.Chart(data)
        .mark_rect()
        .encode(
            x=alt.X("rating_group:N", title="Rating Category", sort=["Family/Kids", "Teen", "Mature"]),
            y=alt.Y("main_genre:N", title="Main Genre", sort=genre_order),
            color=alt.Color("count:Q", title="Number of Titles", scale=alt.Scale(scheme="reds")),
            tooltip=["type:N", "main_genre:N", "rating_group:N", alt.Tooltip("count:Q", title="titles")],
        )
        .properties(width=WIDTH * 0.35, height=HEIGHT)
        .facet(column=alt.Column("type:N", title="Content Type"), title="Genre vs. Rating Category")
    )


def genre_share_chart(data: pd.DataFrame) -> alt.Chart:
    """4.4: normalised stacked area of the top genres per release year."""
    return (
        alt.Chart(data)
        .mark_area()
        .encode(
            x=alt.X("release_year:O", title="Release Year"),
            y=alt.Y("count:Q", stack="normalize", title="Share of Titles"),
            color=alt.Color("main_genre:N", title="Main Genre"),
            tooltip=["release_year:O", "main_genre:N", alt.Tooltip("count:Q", title="titles"),
                     alt.Tooltip("share:Q", format=".1%")],
        )
        .properties(width=WIDTH, height=HEIGHT, title=f"Relative Genre Share Over Time (Top "
                                                      f"{data['main_genre'].nunique()} Genres)")
    )


def _country_tooltip(data: pd.DataFrame) -> list:
    tooltip = ["country:N", alt.Tooltip("count:Q", title="titles (first country)"),
               alt.Tooltip("share:Q", format=".1%")]
    if "listed" in data:
        tooltip.append(alt.Tooltip("listed:Q", title="titles listing it"))
    return tooltip


def top_countries_chart(data: pd.DataFrame) -> alt.Chart:
    """4.5: horizontal bars in Netflix dark grey."""
    return (
        alt.Chart(data)
        .mark_bar(color=DARK)
        .encode(x=alt.X("count:Q", title="Number of Titles"), y=alt.Y("country:N", sort="-x", title="Country"),
                tooltip=_country_tooltip(data))
        .properties(width=WIDTH, height=HEIGHT, title=f"Top {len(data)} Countries Producing Netflix Titles")
    )


def country_hover_chart(data: pd.DataFrame) -> alt.Chart:
    """4.6: the same bars, dark grey; the hovered bar turns Netflix red until the mouse leaves it.

    `empty=False` and `clear="mouseout"` make the seed's intent explicit ("default dark gray",
    "temporarily highlight"): with Altair's defaults every bar is red before the first hover and
    the last hovered bar stays red.
    """
    highlight = alt.selection_point(name="highlight", on="mouseover", clear="mouseout", fields=["country"],
                                    empty=False)
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("count:Q", title="Number of Titles"),
            y=alt.Y("country:N", sort="-x", title="Country"),
            color=alt.condition(highlight, alt.value(RED), alt.value(DARK)),
            tooltip=_country_tooltip(data),
        )
        .add_params(highlight)
        .properties(width=WIDTH, height=HEIGHT, title="Interactive Country Comparison (hover to highlight)")
    )


def lag_chart(data: pd.DataFrame) -> alt.Chart:
    """4.7: one-year bins of the release-to-addition lag, stacked by type."""
    return (
        alt.Chart(data)
        .mark_bar()
        .encode(
            x=alt.X("lag_years:Q", bin="binned", title="Years Between Release and Added to Netflix"),
            x2="lag_end:Q",
            y=alt.Y("count:Q", title="Number of Titles", stack=True),
            color=alt.Color("type:N", title="Type", scale=TYPE_SCALE),
            tooltip=["type:N", alt.Tooltip("lag_years:Q", title="lag (years)"), alt.Tooltip("count:Q", title="titles")],
        )
        .properties(width=WIDTH, height=HEIGHT,
                    title="Distribution of Delay Between Release and Being Added to Netflix")
    )


def build_charts(figs: dict[str, pd.DataFrame]) -> dict[str, alt.TopLevelMixin]:
    """One chart per figure table, keyed by the same stem."""
    genre_order = figs["fig2_top_genres"]["genre"].tolist()
    return {
        "fig1_titles_by_year": titles_by_year_chart(figs["fig1_titles_by_year"]),
        "fig2_top_genres": top_genres_chart(figs["fig2_top_genres"]),
        "fig3_genre_rating": genre_rating_chart(figs["fig3_genre_rating"], genre_order),
        "fig4_genre_share": genre_share_chart(figs["fig4_genre_share"]),
        "fig5_top_countries": top_countries_chart(figs["fig5_top_countries"]),
        "fig6_country_hover": country_hover_chart(figs["fig6_country_hover"]),
        "fig7_lag": lag_chart(figs["fig7_lag"]),
    }
