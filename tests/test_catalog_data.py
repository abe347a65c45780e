"""task=catalog data: the seed's cleaning rules on hand-made rows, every coercion counted, bad input named."""
import numpy as np
import pandas as pd
import pytest

from conftest import require_real
from mediaml.tasks.catalog.data import (COLUMNS, NetflixTitlesDataset, SyntheticNetflixDataset, clean_titles,
                                  collaborations, explode_list, generate_catalog, read_titles_csv)
from mediaml.errors import DataError, DataNotFoundError

REAL = "netflix/netflix_titles.csv"


def row(**kw):
    base = {"show_id": "s1", "type": "Movie", "title": "T", "director": "D", "cast": "A, B",
            "country": "United States", "date_added": "September 25, 2021", "release_year": "2020",
            "rating": "TV-MA", "duration": "90 min", "listed_in": "Dramas, Thrillers", "description": "x"}
    base.update(kw)
    return base


def clean(*rows):
    raw = pd.DataFrame([row(show_id=f"s{i + 1}", **r) for i, r in enumerate(rows)], columns=COLUMNS)
    return clean_titles(raw, "<test>")


def test_features_as_the_seed_derives_them():
    df, counts = clean({}, {"type": "TV Show", "duration": "2 Seasons", "date_added": " August 4, 2017",
                            "release_year": "2012", "country": "India, United States",
                            "listed_in": "International TV Shows, TV Dramas", "rating": "TV-14"})
    a, b = df.iloc[0], df.iloc[1]
    assert (a["year_added"], a["duration_int"], a["duration_type"], a["lag_years"]) == (2021, 90, "min", 1)
    assert (a["country_primary"], a["main_genre"], a["rating_group"]) == ("United States", "Dramas", "Mature")
    assert (b["year_added"], b["duration_int"], b["duration_type"], b["lag_years"]) == (2017, 2, "Seasons", 5)
    assert (b["country_primary"], b["main_genre"], b["rating_group"]) == ("India", "International TV Shows", "Teen")
    assert b["date_added"] == pd.Timestamp("2017-08-04")
    assert counts["data/stripped_cells"] == 1 and counts["data/rows_kept"] == 2


@pytest.mark.parametrize("rating,group", [("TV-MA", "Mature"), ("R", "Mature"), ("NC-17", "Mature"),
                                          ("TV-14", "Teen"), ("PG-13", "Teen"), ("PG", "Family/Kids"),
                                          ("TV-Y7", "Family/Kids"), ("G", "Family/Kids"), ("NR", "Family/Kids")])
def test_rating_groups_are_the_seeds_mapping(rating, group):
    df, _ = clean({"rating": rating})
    assert df["rating_group"].iloc[0] == group


def test_whitespace_is_stripped_in_every_text_column():
    # pandas 3 reads text as `str`: the seed's select_dtypes("object") would strip nothing.
    df, counts = clean({"title": "  Padded ", "country": " Spain ", "listed_in": " Comedies ,Dramas"})
    assert df["title"].iloc[0] == "Padded" and df["country_primary"].iloc[0] == "Spain"
    assert df["main_genre"].iloc[0] == "Comedies"
    assert counts["data/stripped_cells"] == 3


def test_duration_in_rating_is_moved_and_counted():
    df, counts = clean({"rating": "74 min", "duration": None})
    assert pd.isna(df["rating"].iloc[0]) and pd.isna(df["rating_group"].iloc[0])
    assert (df["duration"].iloc[0], df["duration_int"].iloc[0], df["duration_type"].iloc[0]) == ("74 min", 74, "min")
    assert counts["data/rating_held_duration"] == 1 and counts["data/missing_rating"] == 1


def test_unparseable_and_missing_dates_are_counted_not_dropped():
    df, counts = clean({"date_added": "sometime in 2019"}, {"date_added": None}, {"date_added": "2019-03-01"}, {})
    assert counts["data/bad_date_added"] == 1 and counts["data/missing_date_added"] == 1
    assert counts["data/date_added_other_format"] == 1  # ISO date: not the export's format, still parsed
    assert len(df) == 4
    assert df["year_added"].isna().tolist() == [True, True, False, False]
    assert df["lag_years"].isna().sum() == 2


def test_country_list_starting_with_a_comma_uses_the_first_real_country():
    df, counts = clean({"country": ", South Korea"}, {"country": "France, Algeria,"}, {"country": None})
    assert df["country_primary"].tolist()[:2] == ["South Korea", "France"]
    assert pd.isna(df["country_primary"].iloc[2])
    assert counts["data/country_empty_items"] == 2 and counts["data/missing_country"] == 1


def test_rows_without_type_or_year_are_skipped_and_counted():
    df, counts = clean({"type": "Podcast"}, {"release_year": "nineteen"}, {"release_year": "1999.5"}, {})
    assert len(df) == 1
    assert counts["data/bad_type_rows"] == 1 and counts["data/bad_release_year_rows"] == 2


def test_no_titles_left_is_a_clear_error():
    with pytest.raises(DataError, match="<test>: no titles left after cleaning .*1 with an unknown type"):
        clean({"type": "Podcast"})


def test_negative_lag_is_counted():
    _, counts = clean({"release_year": "2022"})
    assert counts["data/negative_lag"] == 1


def test_exploded_views_have_one_row_per_listed_item():
    df, _ = clean({"listed_in": "Dramas, Comedies, Dramas"}, {"country": ", Japan, , Spain"})
    genres = explode_list(df, "listed_in", "genre")
    assert sorted(genres.loc[genres.show_id == "s1", "genre"]) == ["Comedies", "Dramas"]
    countries = explode_list(df, "country", "country")
    assert countries.loc[countries.show_id == "s2", "country"].tolist() == ["Japan", "Spain"]


def test_collaborations_count_shared_titles_not_self_pairs():
    df, _ = clean({"director": "Ann", "cast": "Bob, Ann"}, {"director": "Ann, Cy", "cast": "Bob"},
                  {"director": "Cy", "cast": "Dee"})
    top = collaborations(df, min_titles=1)
    assert top.iloc[0][["director", "actor", "titles", "movies"]].tolist() == ["Ann", "Bob", 2, 2]
    assert not ((top["director"] == "Ann") & (top["actor"] == "Ann")).any()
    assert len(collaborations(df, min_titles=2)) == 1


# -- bad files -----------------------------------------------------------------------------------------
def write(tmp_path, text, name="netflix_titles.csv"):
    (tmp_path / "netflix").mkdir(exist_ok=True)
    p = tmp_path / "netflix" / name
    p.write_bytes(text) if isinstance(text, bytes) else p.write_text(text)
    return p


def test_empty_file_is_named(tmp_path):
    with pytest.raises(DataError, match=r"netflix_titles.csv: is empty \(0 bytes\); expected a CSV with header"):
        read_titles_csv(write(tmp_path, ""))


def test_header_only_file_is_named(tmp_path):
    with pytest.raises(DataError, match="netflix_titles.csv: has a header but no rows"):
        read_titles_csv(write(tmp_path, ",".join(COLUMNS) + "\n"))


def test_missing_columns_are_listed(tmp_path):
    df = generate_catalog(30).drop(columns=["listed_in", "rating"])
    path = tmp_path / "t.csv"
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"t.csv: missing column\(s\) \['rating', 'listed_in'\]"):
        read_titles_csv(path)


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00\x01",
                                     '{"show_id": "s1", "type": "Movie"}\n', "<html><body>nope</body></html>\n"])
def test_non_csv_input_is_a_data_error(tmp_path, content):
    with pytest.raises(DataError, match="netflix_titles.csv: (not a readable CSV|missing column)"):
        read_titles_csv(write(tmp_path, content))


def test_missing_file_names_path_and_source(tmp_path):
    ds = NetflixTitlesDataset("netflix", str(tmp_path), "netflix/netflix_titles.csv", source="Kaggle shivamb")
    with pytest.raises(DataNotFoundError) as err:
        ds.check()
    assert str(tmp_path / "netflix" / "netflix_titles.csv") in str(err.value) and "Kaggle shivamb" in str(err.value)


# -- synthetic and real --------------------------------------------------------------------------------
def test_synthetic_catalog_is_seeded_and_carries_the_real_defects():
    a, b, c = generate_catalog(200, seed=1), generate_catalog(200, seed=1), generate_catalog(200, seed=2)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    cat = SyntheticNetflixDataset(n_titles=200, seed=1).load()
    k = cat.counts
    assert (k["data/rating_held_duration"], k["data/missing_date_added"], k["data/bad_date_added"]) == (2, 1, 1)
    assert (k["data/country_empty_items"], k["data/missing_country"], k["data/rows_kept"]) == (1, 1, 200)
    assert k["data/stripped_cells"] == 2


def test_sample_is_the_seeds_subset(tmp_path):
    d = require_real(REAL)
    ds = NetflixTitlesDataset("netflix", str(d), REAL, sample_size=3000, random_state=42)
    cat = ds.load()
    raw = pd.read_csv(d / REAL)
    expected = raw.sample(n=3000, random_state=42)["show_id"]
    assert cat.titles["show_id"].tolist() == expected.tolist()
    assert cat.counts["data/rows_read"] == 8807 and cat.counts["data/rows_sampled"] == 3000


def test_real_file_cleaning_counts():
    d = require_real(REAL)
    cat = NetflixTitlesDataset("netflix", str(d), REAL).load()
    k = cat.counts
    # The description of the file: 8,807 rows, three durations in `rating`, ten without date_added.
    assert k["data/rows_read"] == k["data/rows_kept"] == 8807
    assert k["data/rating_held_duration"] == 3 and k["data/missing_duration"] == 0
    assert k["data/missing_date_added"] == 10 and k["data/bad_date_added"] == 0
    assert k["data/missing_rating"] == 4 + 3
    t = cat.titles
    repaired = t.set_index("show_id").loc[["s5542", "s5795", "s5814"]]
    assert repaired["duration_int"].tolist() == [74, 84, 66] and repaired["rating"].isna().all()
    # Two quoted fields hold line breaks: they stay inside their rows.
    assert t["show_id"].str.fullmatch(r"s\d+").all() and t["show_id"].is_unique
    multiline = t[t["title"].str.contains("\n") | t["description"].str.contains("\n")]
    assert multiline["show_id"].tolist() == ["s8202", "s8420"]
    assert t["type"].isin(["Movie", "TV Show"]).all()
    assert np.array_equal(t["year_added"].dropna().to_numpy(), t["date_added"].dropna().dt.year.to_numpy())
