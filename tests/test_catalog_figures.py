"""Each figure's data equals an independent pandas computation on the real netflix_titles.csv.

The independent side reads the raw CSV itself and follows the seed's notebook code (crosstabs,
value_counts, np.histogram) rather than calling anything in mediaml.tasks.catalog.data.
"""
import numpy as np
import pandas as pd
import pytest

from conftest import require_real
from mediaml.tasks.catalog.data import NetflixTitlesDataset
from mediaml.tasks.catalog.figures import figure_data

REAL = "netflix/netflix_titles.csv"


@pytest.fixture(scope="module", params=[None, 3000], ids=["all", "seed_subset"])
def both(request):
    d = require_real(REAL)
    sample = request.param
    cat = NetflixTitlesDataset("netflix", str(d), REAL, sample_size=sample, random_state=42).load()
    raw = pd.read_csv(d / REAL)
    if sample:
        raw = raw.sample(n=sample, random_state=42)
    return cat, figure_data(cat.titles, cat.genres, cat.countries), independent(raw)


def independent(raw: pd.DataFrame) -> pd.DataFrame:
    df = raw.copy()
    for col in df.columns:
        if col != "release_year":
            df[col] = df[col].str.strip()
    df.loc[df["rating"].str.endswith(" min", na=False), "rating"] = np.nan  # durations in `rating`
    df["main_genre"] = df["listed_in"].str.split(",").str[0].str.strip()
    df["country_primary"] = df["country"].str.extract(r"^[\s,]*([^,]+)")[0].str.strip()
    df["year_added"] = pd.to_datetime(df["date_added"], format="mixed").dt.year
    df["lag"] = df["year_added"] - df["release_year"]
    mature, teen = {"TV-MA", "R", "NC-17"}, {"TV-14", "PG-13"}
    df["group"] = [None if pd.isna(r) else "Mature" if r in mature else "Teen" if r in teen else "Family/Kids"
                   for r in df["rating"]]
    return df


def test_fig1_counts_per_release_year_and_type(both):
    _, figs, df = both
    expected = pd.crosstab(df.loc[df.release_year >= 2004, "release_year"], df.loc[df.release_year >= 2004, "type"])
    got = figs["fig1_titles_by_year"].pivot(index="release_year", columns="type", values="count").fillna(0)
    pd.testing.assert_frame_equal(got.astype(int), expected.astype(int), check_names=False)


def test_fig2_top_genres(both):
    _, figs, df = both
    expected = df["main_genre"].value_counts().head(10)
    got = figs["fig2_top_genres"]
    assert got["genre"].tolist() == expected.index.tolist()
    assert got["count"].tolist() == expected.tolist()
    assert got["share"].iloc[0] == pytest.approx(expected.iloc[0] / len(df))
    listed = [sum(g in [x.strip() for x in s.split(",")] for s in df["listed_in"]) for g in got["genre"]]
    assert got["listed"].tolist() == listed


def test_fig3_heatmap_cells(both):
    _, figs, df = both
    top = df["main_genre"].value_counts().head(10).index
    sub = df[df["main_genre"].isin(top) & df["group"].notna()]
    expected = pd.crosstab([sub["type"], sub["main_genre"]], sub["group"]).stack()
    expected = expected[expected > 0].sort_index()
    got = figs["fig3_genre_rating"].set_index(["type", "main_genre", "rating_group"])["count"].sort_index()
    assert got.to_dict() == expected.to_dict()


def test_fig4_normalised_genre_share(both):
    _, figs, df = both
    top = df["main_genre"].value_counts().head(10).index
    sub = df[(df["release_year"] >= 2004) & df["main_genre"].isin(top)]
    counts = pd.crosstab(sub["release_year"], sub["main_genre"])
    share = counts.div(counts.sum(axis=1), axis=0).stack()
    got = figs["fig4_genre_share"].set_index(["release_year", "main_genre"])
    assert got["count"].to_dict() == counts.stack()[counts.stack() > 0].to_dict()
    np.testing.assert_allclose(got["share"].sort_index().to_numpy(), share[counts.stack() > 0].sort_index().to_numpy())
    assert np.allclose(got.groupby(level=0)["share"].sum(), 1.0)


def test_fig5_and_fig6_top_countries(both):
    _, figs, df = both
    expected = df["country_primary"].value_counts().head(15)
    for stem in ("fig5_top_countries", "fig6_country_hover"):
        got = figs[stem]
        assert got["country"].tolist() == expected.index.tolist()
        assert got["count"].tolist() == expected.tolist()
    listed = [df["country"].fillna("").map(lambda s: c in [x.strip() for x in s.split(",")]).sum()
              for c in expected.index]
    assert figs["fig5_top_countries"]["listed"].tolist() == listed


def test_fig7_lag_histogram_bins(both):
    _, figs, df = both
    got = figs["fig7_lag"]
    for kind in ("Movie", "TV Show"):
        lags = df.loc[(df["type"] == kind) & df["lag"].notna(), "lag"].astype(int)
        edges = np.arange(lags.min(), lags.max() + 2)  # one-year bins [k, k+1), as alt.Bin(step=1)
        hist, _ = np.histogram(lags, bins=edges)
        expected = {int(e): int(h) for e, h in zip(edges[:-1], hist) if h}
        mine = got[got["type"] == kind]
        assert dict(zip(mine["lag_years"], mine["count"])) == expected
        assert (mine["lag_end"] - mine["lag_years"] == 1).all()
    assert got["count"].sum() == df["lag"].notna().sum()


def test_seed_findings_on_its_subset(both):
    cat, figs, _ = both
    # Seed 000 (3,000 rows, random_state=42): Dramas and Comedies lead, the US and India lead,
    # most titles are added within 0-5 years of release (the histogram's mass is at low lags).
    assert figs["fig2_top_genres"]["genre"].tolist()[:2] == ["Dramas", "Comedies"]
    assert figs["fig5_top_countries"]["country"].tolist()[:2] == ["United States", "India"]
    lag = figs["fig7_lag"]
    within5 = lag.loc[lag["lag_years"].between(0, 5), "count"].sum() / lag["count"].sum()
    assert within5 > 0.7
    # "Movies dominate ... TV Shows become increasingly common": TV share rises after 2013.
    f1 = figs["fig1_titles_by_year"]
    tv = lambda part: part.loc[part.type == "TV Show", "count"].sum() / part["count"].sum()  # noqa: E731
    assert tv(f1[f1.release_year >= 2013]) > tv(f1[f1.release_year < 2013])
