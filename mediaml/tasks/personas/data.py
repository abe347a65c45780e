"""Film characters as three bags of words (adj / active / patient) plus TV Tropes gold personas.

Every dataset's `load()` returns `CharacterBags`: one row per character (`wiki_id`, `character`,
`adj`, `active`, `patient` as lists of lower-case alphabetic tokens, the seed's `w.isalpha()`), the
gold items (one per gold line: `row` into the characters, `trope`, `char_id`), counts as `data/...`
metrics and a plain-text report of what gold matching did.

- `CharacterFeaturesDataset` (dataset=cmu_personas): the realigned utopiansky2022 features TSV
  (agent/patient verbs as Python-list strings or 0.0, attributes space-separated) + CMU movie
  metadata + tvtropes.clusters.txt, matched by `match_gold`.
- `PersonasSampleDataset` (dataset=personas_sample): seed 003's own CSV (adj/active/patient as
  Python-list strings), matched the same way.
- `SyntheticPersonasDataset` (dataset=synthetic_personas): planted personas over word topics.
"""
from __future__ import annotations

import csv
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mediaml.errors import DataError, require_file
from mediaml.tables import read_table, read_text

log = logging.getLogger(__name__)

ROLES = ("adj", "active", "patient")
# Honorifics dropped before comparing name tokens ("Professor Philip Brainard" ~ "Philip").
TITLES = {"dr", "doctor", "professor", "prof", "captain", "capt", "sergeant", "sgt", "lieutenant", "lt",
          "colonel", "col", "general", "gen", "major", "mr", "mrs", "ms", "miss", "sir", "lady", "lord",
          "king", "queen", "prince", "princess", "father", "uncle", "aunt", "agent", "detective",
          "officer", "judge", "the", "of", "de", "van", "von", "jr", "sr", "mister", "madame", "count"}
_ITEM = re.compile(r"'((?:[^'\\]|\\.)*)'|\"((?:[^\"\\]|\\.)*)\"")
_EMPTY = {"", "0", "0.0", "nan", "none", "[]"}


@dataclass
class CharacterBags:
    chars: pd.DataFrame  # wiki_id, character, adj, active, patient
    gold: pd.DataFrame   # row (index into chars), trope, char_id, gold_name, movie, n_candidates
    counts: dict[str, float] = field(default_factory=dict)
    report: str = ""
    resolutions: pd.DataFrame | None = None  # one row per gold line: how it was matched
    # Box-office revenue per movie (index wiki_id, NaN = none or not a positive number); None = no metadata.
    revenue: pd.Series | None = None


# -- parsing ---------------------------------------------------------------------------------------
def parse_list(text, where: str) -> list[str]:
    """A Python-list string ("['a', \"b's\"]"), possibly CSV-quoted twice, or 0.0/''/NaN for empty."""
    if text is None or (isinstance(text, float) and np.isnan(text)):
        return []
    s = str(text).strip()
    while len(s) >= 2 and s[0] == '"' and s[-1] == '"':  # the TSV double-quotes some cells, twice
        s = s[1:-1].replace('""', '"').strip()
    if s.lower() in _EMPTY:
        return []
    if not (s.startswith("[") and s.endswith("]")):
        raise DataError(f"{where}: expected a Python-list string like \"['word', ...]\", got {s[:80]!r}")
    items = [a or b for a, b in _ITEM.findall(s)]
    if not items and s[1:-1].strip():
        raise DataError(f"{where}: list string has no quoted items: {s[:80]!r}")
    return items


def tokens(words) -> list[str]:
    """Lower-case alphabetic tokens, as seed 003 (`w.isalpha()`); "visit's" and "" are dropped."""
    return [w.lower() for w in words if w.isalpha()]


def name_tokens(name: str, drop_titles: bool = True) -> set[str]:
    toks = {t for t in re.findall(r"[a-z]+", str(name).lower()) if len(t) > 1 or not drop_titles}
    return toks - TITLES if drop_titles else toks


# -- gold ------------------------------------------------------------------------------------------
def read_gold(path: Path) -> pd.DataFrame:
    """tvtropes.clusters.txt: `trope<TAB>{"char", "movie", "id", "actor"}` per line; bad lines are errors."""
    rows = []
    text = read_text(path, expected="one 'trope<TAB>json' line per gold character")
    for i, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise DataError(f"{path}:{i}: expected 'trope<TAB>json', got {len(parts)} tab-separated fields")
        try:
            rec = json.loads(parts[1])
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{i}: the JSON after the trope does not parse ({e.msg})") from None
        missing = [k for k in ("char", "movie", "id") if k not in rec]
        if missing:
            raise DataError(f"{path}:{i}: JSON lacks field(s) {missing}")
        rows.append({"gidx": len(rows), "trope": parts[0].strip(), "gold_name": rec["char"],
                     "movie": rec["movie"], "char_id": rec["id"]})
    if not rows:
        raise DataError(f"{path}: no gold lines")
    return pd.DataFrame(rows)


def read_movie_titles(path: Path) -> pd.DataFrame:
    """movie.metadata.tsv(.gz): wiki id, title, revenue and genres (columns 1, 3, 5, 9; no header)."""
    df = read_table(path, "\t", header=False, n_fields=9, usecols=[0, 2, 4, 8],
                    names=["wiki_id", "title", "revenue", "genres"], dtype=str, quoting=csv.QUOTE_NONE,
                    keep_default_na=False, expected="9 tab-separated fields per line (CMU movie.metadata.tsv)")
    if not df["wiki_id"].str.isdigit().all():
        raise DataError(f"{path}: column 1 (wiki_id) must be integer ids")
    df["genres"] = [_genre_tokens(js, f"{path} row {i + 1} column 9 (genres)") for i, js in enumerate(df["genres"])]
    return df


def revenue_by_movie(movies: pd.DataFrame) -> pd.Series:
    """wiki_id -> box-office revenue (float); empty, non-numeric or <= 0 -> NaN (counted later as missing)."""
    rev = pd.to_numeric(movies["revenue"], errors="coerce")
    rev = rev.where(rev > 0)
    return pd.Series(rev.to_numpy(), index=movies["wiki_id"].to_numpy(), name="revenue").groupby(level=0).first()


def _genre_tokens(js: str, where: str) -> list[str]:
    """'{"/m/01jfsb": "Thriller", ...}' -> ["thriller", ...] (one alphabetic token per genre)."""
    if not js.strip():
        return []
    try:
        names = json.loads(js).values()
    except (json.JSONDecodeError, AttributeError):
        raise DataError(f"{where}: expected a JSON object of freebase id -> genre name, got {js[:80]!r}") from None
    return ["".join(ch for ch in g.lower() if ch.isalpha()) for g in names]


def match_gold(chars: pd.DataFrame, gold: pd.DataFrame, movies: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Gold line -> one character row, or none.

    Movie: every wiki id whose metadata title equals the gold movie title. Character: feature rows of
    those movies sharing a name token with the gold name once honorifics are dropped; if none, retry
    with honorifics kept ("The Lieutenant" -> "Lieutenant"). Several candidates (nearly always the
    first-name row and the surname row of one person) -> the row with the most feature words, then
    the longest name, then the first row. Returns (matched gold, one resolution row per gold line).
    """
    by_title = movies.groupby("title")["wiki_id"].apply(list).to_dict()
    rows_by_movie = {w: idx.to_numpy() for w, idx in chars.groupby("wiki_id").groups.items()}
    n_words = chars[list(ROLES)].apply(lambda r: sum(len(v) for v in r), axis=1).to_numpy()
    names = chars["character"].astype(str).to_numpy()
    out = []
    for g in gold.itertuples(index=False):
        wiki_ids = by_title.get(g.movie, [])
        cand_rows = np.concatenate([rows_by_movie.get(w, np.array([], dtype=int)) for w in wiki_ids]) \
            if wiki_ids else np.array([], dtype=int)
        how = "no movie title" if not wiki_ids else ("no feature rows" if len(cand_rows) == 0 else "no name")
        hits = []
        for drop in (True, False):
            want = name_tokens(g.gold_name, drop)
            hits = [r for r in cand_rows if want & name_tokens(names[r], drop)]
            if hits:
                how = "name tokens" if drop else "name tokens incl. titles"
                break
        row = -1
        if hits:
            row = max(hits, key=lambda r: (n_words[r], len(names[r]), -r))
            if len(hits) > 1:
                how += f"; {len(hits)} candidates -> most words"
        out.append({"gidx": g.gidx, "trope": g.trope, "gold_name": g.gold_name, "movie": g.movie,
                    "char_id": g.char_id, "row": int(row), "n_title_ids": len(wiki_ids),
                    "n_candidates": len(hits), "matched_name": names[row] if row >= 0 else "", "how": how})
    res = pd.DataFrame(out)
    return res[res["row"] >= 0].reset_index(drop=True), res


def gold_report(res: pd.DataFrame, matched: pd.DataFrame) -> tuple[dict[str, float], str]:
    multi = matched.groupby("char_id")["trope"].nunique()
    shared = matched.groupby("row")["char_id"].nunique()
    counts = {
        "data/gold_lines": len(res),
        "data/gold_tropes": res["trope"].nunique(),
        "data/gold_matched": len(matched),
        "data/gold_matched_tropes": matched["trope"].nunique(),
        "data/gold_matched_characters": matched["char_id"].nunique(),
        "data/gold_ambiguous": int((res["n_candidates"] > 1).sum()),
        "data/gold_ambiguous_title": int((res["n_title_ids"] > 1).sum()),
        "data/gold_multi_trope_characters": int((multi > 1).sum()),
        "data/gold_rows_shared_by_two_characters": int((shared > 1).sum()),
    }
    lines = ["gold matching (tvtropes.clusters.txt -> character rows)", ""]
    lines += [f"{k[5:]}: {int(v)}" for k, v in counts.items()]
    lines += ["", "by outcome:"] + [f"  {k}: {v}" for k, v in res["how"].value_counts().items()]
    lines += ["", "rule: title -> all wiki ids with that title; shared name token (honorifics dropped, then kept);",
              "several candidates -> most feature words, then longest name, then first row.",
              "multi-trope characters are scored once per gold line, with the same predicted persona."]
    return counts, "\n".join(lines)


def _finish(chars: pd.DataFrame, data_dir: Path, gold_file: str, metadata_file: str, name: str,
            source: str) -> CharacterBags:
    gold = read_gold(require_file(data_dir, gold_file, name, source))
    movies = read_movie_titles(require_file(data_dir, metadata_file, name, source))
    # The movie's genres ride along with each character (model.genre_weight decides whether they are used).
    genres = dict(zip(movies["wiki_id"], movies["genres"]))
    chars = chars.assign(genres=[genres.get(w, []) for w in chars["wiki_id"]])
    matched, res = match_gold(chars, gold, movies)
    counts, report = gold_report(res, matched)
    nonempty = chars[list(ROLES)].apply(lambda r: sum(len(v) for v in r), axis=1)
    counts.update({"data/characters": len(chars), "data/movies": chars["wiki_id"].nunique(),
                   "data/characters_without_words": int((nonempty == 0).sum())})
    log.info("%s: %d characters, gold matched %d/%d lines", name, len(chars), len(matched), len(res))
    return CharacterBags(chars, matched, counts, report, res, revenue_by_movie(movies))


# -- datasets --------------------------------------------------------------------------------------
class _FileDataset:
    """A features file + gold + metadata under data_dir. Subclasses say how to read the file into bags."""

    columns: tuple[str, ...] = ()
    read_kw: dict = {}  # how `read_table` reads the features file

    def __init__(self, name: str, data_dir: str, features_file: str, gold_file: str, metadata_file: str,
                 source: str = "", tasks=None):
        self.name, self.data_dir, self.source, self.tasks = name, Path(data_dir), source, tasks
        self.features_file, self.gold_file, self.metadata_file = features_file, gold_file, metadata_file

    def check(self) -> None:
        for rel in (self.features_file, self.gold_file, self.metadata_file):
            require_file(self.data_dir, rel, self.name, self.source)

    def load(self) -> CharacterBags:
        path = require_file(self.data_dir, self.features_file, self.name, self.source)
        df = read_table(path, columns=self.columns, dtype=str, keep_default_na=False,
                        expected=f"a header line naming {list(self.columns)} and one row per character",
                        **self.read_kw)
        where = lambda i, col: f"{path} row {i + 2} field {col}"  # noqa: E731  (+2: header, 1-based)
        chars = pd.DataFrame({"wiki_id": df["wiki_id"].str.strip().to_numpy(),
                              "character": df["character"].to_numpy(), **self._bags(df, where)})
        return _finish(chars, self.data_dir, self.gold_file, self.metadata_file, self.name, self.source)


class CharacterFeaturesDataset(_FileDataset):
    """char_features_realigned_all.tsv.gz: wiki_id, character, agent_verbs, patient_verbs, attributes."""

    columns = ("wiki_id", "character", "agent_verbs", "patient_verbs", "attributes")

    read_kw = {"sep": "\t", "quoting": csv.QUOTE_NONE}

    def _bags(self, df: pd.DataFrame, where) -> dict[str, list]:
        return {"adj": [tokens(s.split()) for s in df["attributes"]],  # attributes are space-separated
                **{role: [tokens(parse_list(s, where(i, col))) for i, s in enumerate(df[col])]
                   for role, col in (("active", "agent_verbs"), ("patient", "patient_verbs"))}}


class PersonasSampleDataset(_FileDataset):
    """Seed 003's character_attributes CSV: index, wiki_id, character, adj, active, patient (list strings)."""

    columns = ("wiki_id", "character", *ROLES)

    read_kw = {"sep": ",", "index_col": 0}

    def _bags(self, df: pd.DataFrame, where) -> dict[str, list]:
        return {role: [tokens(parse_list(s, where(i, role))) for i, s in enumerate(df[role])] for role in ROLES}


class SyntheticPersonasDataset:
    """Planted personas: each picks `topics_per_persona` favourite word topics per role, used uniformly.

    `n_topics` disjoint word topics of `words_per_topic` words each (own vocabulary per role);
    persona p draws a character's words from its `topics_per_persona` favourite topics per role.
    `n_gold` characters get their planted persona as gold trope (the rest are unlabelled, as
    most real characters are). Every character has `words_per_role` words per role.
    Movies are 5 consecutive characters. Planted revenue: log revenue = 16 + sum over the planted
    personas present in the movie of `revenue_effect` x e_p + N(0, 1), with e_p evenly spaced in
    [-1, 1] (persona 0 lowers revenue most, the last persona raises it most); a share
    `revenue_missing` of movies has no revenue (as most real movies).
    """

    def __init__(self, name: str = "synthetic_personas", seed: int = 0, n_characters: int = 1500,
                 n_personas: int = 6, n_topics: int = 12, words_per_topic: int = 8,
                 topics_per_persona: int = 2, words_per_role: int = 6, n_gold: int = 300, noise: float = 0.0,
                 revenue_effect: float = 1.0, revenue_missing: float = 0.1, source: str = "", tasks=None):
        self.name, self.seed, self.source, self.tasks = name, int(seed), source, tasks
        self.n_characters, self.n_personas, self.n_topics = int(n_characters), int(n_personas), int(n_topics)
        self.words_per_topic, self.topics_per_persona = int(words_per_topic), int(topics_per_persona)
        self.words_per_role, self.n_gold, self.noise = int(words_per_role), int(n_gold), float(noise)
        self.revenue_effect, self.revenue_missing = float(revenue_effect), float(revenue_missing)

    def check(self) -> None:
        if self.n_gold > self.n_characters:
            raise DataError(f"dataset.n_gold={self.n_gold} > dataset.n_characters={self.n_characters}")

    def load(self) -> CharacterBags:
        rng = np.random.default_rng(self.seed)
        letters = "abcdefghijklmnopqrstuvwxyz"

        def word(role, t, w):  # alphabetic, so the tokenizer keeps it: "adjtopicbwordc"
            return f"{role}x{letters[t // 26]}{letters[t % 26]}x{letters[w]}"

        favourite = {(p, r): rng.choice(self.n_topics, self.topics_per_persona, replace=False)
                     for p in range(self.n_personas) for r in ROLES}
        persona = rng.integers(0, self.n_personas, self.n_characters)
        rows = []
        for i, p in enumerate(persona):
            row = {"wiki_id": str(i // 5), "character": f"char{i}"}
            for r in ROLES:
                topics = rng.choice(favourite[p, r], self.words_per_role)
                # `noise` = share of words drawn from any topic: the planted signal's strength.
                noisy = rng.random(self.words_per_role) < self.noise
                topics[noisy] = rng.integers(0, self.n_topics, noisy.sum())
                row[r] = [word(r, t, w) for t, w in zip(topics, rng.integers(0, self.words_per_topic,
                                                                              self.words_per_role))]
            rows.append(row)
        chars = pd.DataFrame(rows).assign(genres=[[] for _ in rows])
        gold_rows = rng.choice(self.n_characters, self.n_gold, replace=False)
        gold = pd.DataFrame({"row": gold_rows, "trope": [f"persona{persona[r]}" for r in gold_rows],
                             "char_id": [f"char{r}" for r in gold_rows]})
        counts = {"data/characters": len(chars), "data/gold_lines": self.n_gold, "data/gold_matched": self.n_gold,
                  "data/gold_tropes": gold["trope"].nunique(), "data/characters_without_words": 0}
        return CharacterBags(chars, gold, counts, "synthetic: gold = planted persona of "
                             f"{self.n_gold} random characters (no matching needed)",
                             revenue=self._revenue(chars["wiki_id"].to_numpy(), persona))

    def _revenue(self, wiki_ids: np.ndarray, persona: np.ndarray) -> pd.Series:
        """Planted log revenue from the personas present in each movie (see the class docstring)."""
        rng = np.random.default_rng(self.seed + 1)  # own stream: the characters do not change with it
        effect = self.revenue_effect * np.linspace(-1, 1, self.n_personas)
        present = pd.crosstab(wiki_ids, persona).clip(upper=1)
        log_rev = 16 + present.to_numpy() @ effect[present.columns.to_numpy()] + rng.normal(0, 1, len(present))
        rev = pd.Series(np.exp(log_rev), index=present.index.astype(str), name="revenue")
        rev[rng.random(len(rev)) < self.revenue_missing] = np.nan
        return rev
