"""The Netflix catalogue (seed 000): reading, the seed's cleaning and features, a seeded synthetic twin.

    python train.py task=catalog dataset=netflix [dataset.sample_size=3000 seed=42]

Cleaning follows the seed (strip text, parse `date_added` -> `year_added`, split `duration`, first
country, first genre, three rating groups, release-to-addition lag) and counts every repair and
coercion as a `data/...` metric: the real file has three rows with the duration in `rating`, ten
titles without `date_added`, and country lists with an empty first item (", South Korea").
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from mediaml.errors import DataError, require_file
from mediaml.tables import read_table

log = logging.getLogger(__name__)

COLUMNS = ["show_id", "type", "title", "director", "cast", "country", "date_added", "release_year",
           "rating", "duration", "listed_in", "description"]
TYPES = ("Movie", "TV Show")
# The seed's rating groups; every other rating (PG, TV-PG, G, TV-Y*, and also NR / UR) is Family/Kids.
RATING_GROUPS = {"Mature": ["TV-MA", "R", "NC-17"], "Teen": ["TV-14", "PG-13"]}
DEFAULT_GROUP = "Family/Kids"
UNRATED = {"NR", "UR"}
DURATION_RE = r"^(\d+)\s+(\S.*)$"


@dataclass
class Catalog:
    """One row per kept title with the seed's features, plus the exploded genre/country views."""

    titles: pd.DataFrame
    genres: pd.DataFrame      # show_id, type, genre: one row per listed genre
    countries: pd.DataFrame   # show_id, type, country: one row per listed country
    source: str
    counts: dict[str, int] = field(default_factory=dict)


class NetflixTitlesDataset:
    """`netflix_titles.csv` under `data_dir`, optionally sampled as the seed did (`df.sample(n, random_state)`)."""

    def __init__(self, name: str, data_dir: str, file: str, source: str = "", tasks: Sequence[str] | None = None,
                 sample_size: int | None = None, random_state: int = 0,
                 rating_groups: Mapping[str, Sequence[str]] | None = None, default_group: str = DEFAULT_GROUP,
                 sep: str = ","):
        self.name = name
        self.data_dir = Path(data_dir)
        self.file = file
        self.source = source
        self.tasks = tasks
        self.sample_size = int(sample_size) if sample_size else None
        self.random_state = int(random_state)
        self.rating_groups = {k: list(v) for k, v in (rating_groups or RATING_GROUPS).items()}
        self.default_group = default_group
        self.sep = sep

    def check(self) -> None:
        require_file(self.data_dir, self.file, self.name, self.source)

    def read_raw(self) -> tuple[pd.DataFrame, str]:
        path = require_file(self.data_dir, self.file, self.name, self.source)
        return read_titles_csv(path, self.sep), str(path)

    def load(self) -> Catalog:
        raw, source = self.read_raw()
        counts = {"data/rows_read": len(raw)}
        if self.sample_size and self.sample_size < len(raw):
            # Sample the raw rows before cleaning, exactly as the seed did, so its subset is reproduced.
            raw = raw.sample(n=self.sample_size, random_state=self.random_state)
        counts["data/rows_sampled"] = len(raw)
        titles, clean_counts = clean_titles(raw, source, self.rating_groups, self.default_group)
        counts.update(clean_counts)
        log.info("%s: %d titles kept of %d read (%s)", self.name, len(titles), counts["data/rows_read"], counts)
        return Catalog(titles=titles, genres=explode_list(titles, "listed_in", "genre"),
                       countries=explode_list(titles, "country", "country"), source=source, counts=counts)


def read_titles_csv(path: Path, sep: str = ",") -> pd.DataFrame:
    """The 12 export columns, all as text (types are checked field by field in cleaning, with the row
    named); extra columns a newer export may add are ignored. Bad files: see `mediaml.tables`."""
    df = read_table(path, sep, columns=COLUMNS, dtype=str, keep_default_na=True, sep_key="dataset.sep",
                    expected=f"a CSV with header {COLUMNS} and one row per title")
    return df[COLUMNS]


def clean_titles(raw: pd.DataFrame, source: str = "<frame>",
                 rating_groups: Mapping[str, Sequence[str]] | None = None,
                 default_group: str = DEFAULT_GROUP) -> tuple[pd.DataFrame, dict[str, int]]:
    """The seed's cleaning and features; returns (titles, counts of every repair, coercion and skip)."""
    df = raw.copy()
    counts: dict[str, int] = {}

    # 1. Strip whitespace in every text column. pandas 3 reads text as `str`, not `object`, so the
    #    seed's `select_dtypes(include="object")` would strip nothing here: select both.
    stripped = 0
    for col in df.columns:
        if pd.api.types.is_string_dtype(df[col]) or df[col].dtype == object:
            s = df[col].astype("str")
            new = s.str.strip().replace("", pd.NA)
            stripped += int((s.notna() & (s != new).fillna(True)).sum())
            df[col] = new
    counts["data/stripped_cells"] = stripped

    # 2. Three real rows carry the duration in `rating` ("74 min") and none in `duration`: move it.
    looks_like_duration = df["rating"].str.fullmatch(DURATION_RE).fillna(False).astype(bool)
    move = looks_like_duration & df["duration"].isna()
    df.loc[move, "duration"] = df.loc[move, "rating"]
    df.loc[looks_like_duration, "rating"] = pd.NA
    counts["data/rating_held_duration"] = int(looks_like_duration.sum())
    if looks_like_duration.any():
        log.warning("%s: %d row(s) with a duration in `rating` repaired (show_id %s)", source,
                    int(looks_like_duration.sum()), df.loc[looks_like_duration, "show_id"].tolist()[:10])

    # 3. Rows that cannot be placed at all are skipped and counted: unknown type, no release year.
    year = pd.to_numeric(df["release_year"], errors="coerce")
    bad_year = year.isna() | (year != year.round())
    bad_type = ~df["type"].isin(TYPES)
    for mask, what, expected in [(bad_type, "type", f"one of {list(TYPES)}"),
                                 (bad_year, "release_year", "a whole year such as 2019")]:
        if mask.any():
            i = int(np.flatnonzero(mask.to_numpy())[0])
            log.warning("%s: %d row(s) skipped: column %r expected %s; first at data row %d (show_id=%s): %r",
                        source, int(mask.sum()), what, expected, int(df.index[i]) + 1,
                        df["show_id"].iloc[i], df[what].iloc[i])
    counts["data/bad_type_rows"] = int(bad_type.sum())
    counts["data/bad_release_year_rows"] = int((bad_year & ~bad_type).sum())
    keep = ~bad_type & ~bad_year
    df = df[keep].copy()
    df["release_year"] = year[keep].astype("Int64")
    if df.empty:
        raise DataError(f"{source}: no titles left after cleaning ({len(raw)} read, "
                        f"{counts['data/bad_type_rows']} with an unknown type, "
                        f"{counts['data/bad_release_year_rows']} without a release year)")

    # 4. date_added ("September 9, 2019"): the one format of the export, then any format, then NaT (counted).
    text = df["date_added"]
    date = pd.to_datetime(text, format="%B %d, %Y", errors="coerce")
    retry = text.notna() & date.isna()
    if retry.any():
        date[retry] = pd.to_datetime(text[retry], format="mixed", errors="coerce")
    counts["data/missing_date_added"] = int(text.isna().sum())
    counts["data/date_added_other_format"] = int((retry & date.notna()).sum())
    counts["data/bad_date_added"] = int((text.notna() & date.isna()).sum())
    if counts["data/bad_date_added"]:
        log.warning("%s: %d unparseable date_added value(s) set to missing, e.g. %r", source,
                    counts["data/bad_date_added"], text[text.notna() & date.isna()].iloc[0])
    df["date_added"] = date
    df["year_added"] = date.dt.year.astype("Int64")

    # 5. duration "90 min" / "2 Seasons" -> duration_int, duration_type.
    parts = df["duration"].str.extract(DURATION_RE)
    df["duration_int"] = pd.to_numeric(parts[0], errors="coerce").astype("Int64")
    df["duration_type"] = parts[1].astype("str")
    counts["data/missing_duration"] = int(df["duration"].isna().sum())
    counts["data/bad_duration"] = int((df["duration"].notna() & df["duration_int"].isna()).sum())

    # 6. First listed country / genre. A few country lists start with a comma (", South Korea"):
    #    the first non-empty item is the primary country (the seed's code gave an empty string).
    df["country_primary"] = first_item(df["country"])
    df["main_genre"] = first_item(df["listed_in"])
    counts["data/country_empty_items"] = int(df["country"].str.contains(r"(?:^|,)\s*(?:,|$)", regex=True)
                                             .fillna(False).sum())
    counts["data/missing_country"] = int(df["country_primary"].isna().sum())

    # 7. Rating groups (the seed's mapping) and the release-to-addition lag.
    df["rating_group"] = rating_group(df["rating"], rating_groups or RATING_GROUPS, default_group)
    counts["data/missing_rating"] = int(df["rating"].isna().sum())
    counts["data/unrated_as_default_group"] = int(df["rating"].isin(UNRATED).sum())
    df["lag_years"] = (df["year_added"] - df["release_year"]).astype("Int64")
    counts["data/negative_lag"] = int((df["lag_years"] < 0).sum())
    counts["data/rows_kept"] = len(df)
    return df.reset_index(drop=True), counts


def first_item(s: pd.Series) -> pd.Series:
    """First non-empty item of a comma-separated list, stripped; missing when there is none."""
    return s.str.split(",").map(lambda items: next((x.strip() for x in items if x.strip()), pd.NA)
                                if isinstance(items, list) else pd.NA).astype("str")


def explode_list(titles: pd.DataFrame, column: str, name: str) -> pd.DataFrame:
    """One row per (title, listed item): the all-genre / all-country view beside the first-item one."""
    items = titles[["show_id", "type", column]].dropna(subset=[column]).copy()
    items[name] = items[column].str.split(",")
    items = items.explode(name)
    items[name] = items[name].str.strip()
    items = items[items[name] != ""].drop_duplicates(["show_id", name])
    return items[["show_id", "type", name]].astype({name: "str"}).reset_index(drop=True)


def rating_group(rating: pd.Series, groups: Mapping[str, Sequence[str]], default: str) -> pd.Series:
    lookup = {r: g for g, ratings in groups.items() for r in ratings}
    return rating.map(lambda r: lookup.get(r, default) if isinstance(r, str) else pd.NA).astype("str")


# -- synthetic catalogue ----------------------------------------------------------------------------
GENRES = {  # genre -> (type, rating weights Mature/Teen/Family, words planted in descriptions)
    "Dramas": ("Movie", (0.5, 0.4, 0.1), ["family", "secret", "love", "past", "struggle"]),
    "Comedies": ("Movie", (0.3, 0.5, 0.2), ["hilarious", "misfit", "prank", "wedding", "road"]),
    "Documentaries": ("Movie", (0.3, 0.3, 0.4), ["archival", "experts", "history", "nature", "inside"]),
    "Action & Adventure": ("Movie", (0.6, 0.35, 0.05), ["mercenary", "heist", "explosive", "chase", "mission"]),
    "Children & Family Movies": ("Movie", (0.0, 0.1, 0.9), ["puppy", "magical", "friendship", "princess", "toys"]),
    "Horror Movies": ("Movie", (0.85, 0.15, 0.0), ["haunted", "demon", "curse", "blood", "possessed"]),
    "International TV Shows": ("TV Show", (0.55, 0.35, 0.1), ["village", "dynasty", "rivals", "city", "fate"]),
    "Crime TV Shows": ("TV Show", (0.8, 0.2, 0.0), ["detective", "cartel", "murder", "gang", "corrupt"]),
    "Kids' TV": ("TV Show", (0.0, 0.0, 1.0), ["adventures", "cartoon", "learn", "colorful", "songs"]),
    "Docuseries": ("TV Show", (0.4, 0.3, 0.3), ["episodes", "explores", "real", "investigates", "world"]),
}
RATINGS = {"Mature": ["TV-MA", "R"], "Teen": ["TV-14", "PG-13"], "Family/Kids": ["TV-PG", "PG", "TV-Y7", "G"]}
GROUP_WORDS = {"Mature": ["violent", "drugs", "brutal", "sex"], "Teen": ["teen", "school", "crush", "rebel"],
               "Family/Kids": ["kids", "fun", "gentle", "learn"]}
COUNTRIES = ["United States", "India", "United Kingdom", "Japan", "South Korea", "Canada", "Spain", "France",
             "Mexico", "Egypt", "Nigeria", "Turkey", "Brazil", "Germany", "Australia", "Italy"]
FILLER = ["a", "the", "when", "their", "must", "young", "finds", "new", "life", "after", "an", "old", "story"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]


def generate_catalog(n_titles: int = 600, seed: int = 0, signal: float = 0.6, last_year: int = 2021) -> pd.DataFrame:
    """A raw catalogue in the `netflix_titles.csv` schema with planted structure and the real file's defects.

    Planted: genre popularity (Dramas and Comedies lead), countries (US then India), a growing number
    of titles per release year, a short release-to-addition lag, and descriptions whose words depend
    on the genre and, with probability `signal`, on the rating group (so a text model can predict
    `rating_group` from the words, and `signal=0` leaves it only the genre). Defects: stray
    whitespace, two durations in `rating`, a missing and an unparseable `date_added`, a country list
    starting with a comma, a missing country.
    """
    if n_titles < 20:
        raise ValueError(f"n_titles must be >= 20 (the planted defects need rows), got {n_titles}")
    rng = np.random.default_rng(seed)
    names = list(GENRES)
    genre_p = np.array([14, 11, 8, 7, 6, 3, 7, 4, 4, 3], float)
    country_p = np.array([40, 14, 6, 4, 4, 3, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1], float)
    years = np.arange(last_year - 40, last_year + 1)
    year_p = np.exp(0.18 * (years - last_year))  # titles per release year grow ~20 %/year
    rows = []
    for i in range(n_titles):
        genre = names[rng.choice(len(names), p=genre_p / genre_p.sum())]
        kind, group_p, words = GENRES[genre]
        group = ["Mature", "Teen", "Family/Kids"][rng.choice(3, p=group_p)]
        release = int(rng.choice(years, p=year_p / year_p.sum()))
        added = min(last_year, release + int(rng.geometric(0.35)) - 1)
        n_countries = 1 + int(rng.random() < 0.2)
        countries = list(dict.fromkeys(COUNTRIES[j] for j in rng.choice(len(COUNTRIES), n_countries,
                                                                          p=country_p / country_p.sum())))
        extra = [g for g in names if GENRES[g][0] == kind and g != genre]
        listed = [genre] + list(rng.choice(extra, int(rng.integers(0, 3)), replace=False))
        text = list(rng.choice(FILLER, 8)) + list(rng.choice(words, 2))
        if rng.random() < signal:
            text.append(str(rng.choice(GROUP_WORDS[group])))
        rng.shuffle(text)
        duration = f"{int(rng.integers(70, 160))} min" if kind == "Movie" else (
            lambda k: f"{k} Season" + ("s" if k > 1 else ""))(int(rng.integers(1, 6)))
        rows.append({
            "show_id": f"s{i + 1}", "type": kind, "title": f"Title {i + 1}",
            "director": f"Director {int(rng.integers(0, n_titles // 4))}" if rng.random() < 0.7 else None,
            "cast": ", ".join(f"Actor {int(a)}" for a in rng.integers(0, n_titles // 2, int(rng.integers(1, 6)))),
            "country": ", ".join(countries),
            "date_added": f"{MONTHS[int(rng.integers(0, 12))]} {int(rng.integers(1, 29))}, {added}",
            "release_year": str(release), "rating": str(rng.choice(RATINGS[group])), "duration": duration,
            "listed_in": ", ".join(listed), "description": " ".join(text).capitalize() + ".",
        })
    df = pd.DataFrame(rows, columns=COLUMNS)
    # The real file's defects, at fixed positions so tests can count them.
    df.loc[1, "title"] = "  " + df.loc[1, "title"] + " "
    df.loc[2, "date_added"] = " " + df.loc[2, "date_added"]
    for j in (3, 4):
        df.loc[j, ["type", "rating", "duration"]] = ["Movie", f"{60 + j} min", None]
    df.loc[5, "date_added"] = None
    df.loc[6, "date_added"] = "sometime in 2019"
    df.loc[7, "country"] = ", " + df.loc[7, "country"]
    df.loc[8, "country"] = None
    return df


class SyntheticNetflixDataset(NetflixTitlesDataset):
    """The synthetic catalogue, cleaned by exactly the same code as the real file."""

    def __init__(self, n_titles: int = 600, seed: int = 0, signal: float = 0.6, **kwargs):
        kwargs.setdefault("name", "synthetic_catalog")
        kwargs.setdefault("data_dir", ".")
        kwargs.setdefault("file", "<generated>")
        super().__init__(**kwargs)
        self.n_titles = int(n_titles)
        self.seed = int(seed)
        self.signal = float(signal)

    def check(self) -> None:  # nothing to download
        return None

    def read_raw(self) -> tuple[pd.DataFrame, str]:
        return generate_catalog(self.n_titles, self.seed, self.signal), f"<synthetic_catalog seed={self.seed}>"


def collaborations(titles: pd.DataFrame, top: int = 25, min_titles: int = 2) -> pd.DataFrame:
    """Director-cast pairs that share the most titles (director, actor, titles, type mix, example titles).

    A title with d directors and c cast members adds d x c pairs; a person who both directs and acts
    in a title is not paired with themself.
    """
    cols = titles[["show_id", "type", "title", "director", "cast"]].dropna(subset=["director", "cast"])
    d = explode_list(cols.rename(columns={"director": "d"}), "d", "director")
    c = explode_list(cols.rename(columns={"cast": "c"}), "c", "actor")
    pairs = d.merge(c[["show_id", "actor"]], on="show_id")
    pairs = pairs[pairs["director"] != pairs["actor"]].merge(cols[["show_id", "title"]], on="show_id")
    if pairs.empty:
        return pd.DataFrame(columns=["director", "actor", "titles", "movies", "tv_shows", "examples"])
    # Count every pair first (fast), then describe only the top ones.
    n = pairs.groupby(["director", "actor"])["show_id"].nunique().rename("titles").reset_index()
    n = n[n["titles"] >= min_titles].sort_values(["titles", "director", "actor"], ascending=[False, True, True])
    out = n.head(top).reset_index(drop=True)
    sel = pairs.merge(out[["director", "actor"]], on=["director", "actor"])
    g = sel.groupby(["director", "actor"])
    out = out.join(g["type"].agg(movies=lambda t: int((t == "Movie").sum()),
                                 tv_shows=lambda t: int((t == "TV Show").sum())), on=["director", "actor"])
    out["examples"] = out.set_index(["director", "actor"]).index.map(
        g["title"].agg(lambda t: "; ".join(sorted(t)[:3])))
    return out
