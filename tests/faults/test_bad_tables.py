"""Issue 15, bad input: every tabular / event-file loader on corrupt files (each a real file in tmp_path,
read by the real loader). Outcomes are exact: the message names the file and the line, row or column and
what was expected, or the item is skipped and the count is the one reported (see mediaml/tables.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from mediaml.config import PROJECT_ROOT
from mediaml.errors import DataError
from mediaml.tasks.catalog.data import COLUMNS, NetflixTitlesDataset
from mediaml.tasks.genre.data import TabularClassificationDataset
from mediaml.tasks.genre.task import GenreTask
from mediaml.tasks.listening.data import EventsTableDataset, MovieLensDataset, ThirtyMusicDataset
from mediaml.tasks.personas.data import CharacterFeaturesDataset, PersonasSampleDataset

RAGGED = "a text field with an unquoted {sep!r}, or a field lost? quote or fix the line(s)"


def write(path, content: str | bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def raises(fn) -> str:
    with pytest.raises(DataError) as e:
        fn()
    return str(e.value)


# -- genre: TabularClassificationDataset ---------------------------------------------------------------------
GENRE_HEADER = "Id,title,bpm,nrgy,genre"
GENRE_ROWS = ["1,Song A,120,50,pop", "2,Song B,90,80,rock", "3,Song C,125,55,pop", "4,Song D,95,85,rock"]


def genre(tmp_path, rows=GENRE_ROWS, header=GENRE_HEADER, test_rows=None, raw=None, **kw):
    write(tmp_path / "train.csv", raw if raw is not None else "\n".join([header, *rows]) + "\n")
    if test_rows is not None:
        write(tmp_path / "test.csv", "\n".join(["Id,title,bpm,nrgy", *test_rows]) + "\n")
    return TabularClassificationDataset("toy", str(tmp_path), "train.csv", "Id", "genre", drop_columns=["title"],
                                        test_file="test.csv" if test_rows is not None else None, **kw)


def test_genre_bom_and_crlf_read_as_plain_csv(tmp_path):
    plain = genre(tmp_path / "plain").load()
    text = "\ufeff" + "\r\n".join([GENRE_HEADER, *GENRE_ROWS]) + "\r\n"
    ds = genre(tmp_path / "bom", raw=text.encode("utf-8"))
    assert list(ds.read_frames()[0].columns) == ["Id", "title", "bpm", "nrgy", "genre"]  # not '\ufeffId'
    table = ds.load()
    assert table.ids.tolist() == [1, 2, 3, 4] and table.counts == plain.counts
    pd.testing.assert_frame_equal(table.X, plain.X)


def test_genre_inf_names_file_line_row_id_and_column(tmp_path):
    ds = genre(tmp_path, [*GENRE_ROWS[:2], "3,Song C,inf,55,pop", "4,Song D,-inf,85,rock"])
    assert raises(ds.load) == (
        f"{tmp_path / 'train.csv'}:4: data row 3 (Id=3), column 'bpm': expected a finite number, got inf "
        "(2 infinite value(s) in this column; fix them, or empty them: an empty value is skipped and counted)")


def test_genre_inf_in_the_test_file_names_the_test_file(tmp_path):
    ds = genre(tmp_path, test_rows=["7,New,100,60", "8,Other,100,Infinity"])
    assert raises(ds.load).startswith(
        f"{tmp_path / 'test.csv'}:3: data row 2 (Id=8), column 'nrgy': expected a finite number, got inf (1 ")


def test_genre_nan_is_skipped_in_train_filled_in_test_and_both_counted(tmp_path, caplog):
    ds = genre(tmp_path, [*GENRE_ROWS, "5,Song E,nan,60,pop", "6,Song F,,61,rock"],
               test_rows=["7,New,NaN,60", "8,Other,100,70"])
    with caplog.at_level("WARNING"):
        t = ds.load()
    assert t.counts == {"data/rows_read": 6, "data/unlabelled_rows": 0, "data/missing_feature_rows": 2,
                        "data/rare_class_rows": 0, "data/rows_kept": 4, "data/n_classes": 2,
                        "data/test_rows": 2, "data/test_rows_imputed": 1}
    assert "2 labelled rows with missing feature values skipped (lines [6, 7])" in caplog.text
    assert t.X_test["bpm"].tolist() == [t.X["bpm"].median(), 100.0] and t.test_ids.tolist() == [7, 8]


@pytest.mark.parametrize("row, n", [("3,Song C,125,55,pop,extra", 6), ("3,Song C,125,pop", 4)])
def test_genre_ragged_row_names_the_line(tmp_path, row, n):
    ds = genre(tmp_path, [GENRE_ROWS[0], GENRE_ROWS[1], row, GENRE_ROWS[3]])
    assert raises(ds.load) == (f"{tmp_path / 'train.csv'}: line 4 has {n} field(s), expected 5 like the header; "
                               f"1 such line(s) (lines [4]): " + RAGGED.format(sep=","))


def test_genre_semicolon_file_names_the_key_and_the_key_reads_it(tmp_path):
    raw = "\n".join(r.replace(",", ";") for r in [GENRE_HEADER, *GENRE_ROWS]) + "\n"
    assert raises(genre(tmp_path, raw=raw).load) == (
        f"{tmp_path / 'train.csv'}: looks ';'-separated, not ','-separated (line 1 is 5 fields on ';', 1 on ','); "
        "set dataset.sep=';'")
    assert genre(tmp_path, raw=raw, sep=";").load().counts["data/rows_kept"] == 4


def test_genre_thousands_separator_is_named_and_the_key_parses_it(tmp_path):
    rows = [*GENRE_ROWS[:3], '4,Song D,"1,996",85,rock']
    assert raises(genre(tmp_path, rows).load) == (
        f"{tmp_path / 'train.csv'}:5: data row 4 (Id=4), column 'bpm': expected a number, got '1,996' "
        "(1 such value(s) in this column); it looks like a number with ',' thousands separators: "
        "set dataset.thousands=','")
    assert genre(tmp_path, rows, thousands=",").load().X["bpm"].tolist() == [120, 90, 125, 1996]


def test_genre_header_only_and_empty(tmp_path):
    assert raises(genre(tmp_path, []).load) == (
        f"{tmp_path / 'train.csv'}: has a header but no rows (header: Id, title, bpm, nrgy, genre); "
        "expected a header line and one row per Id")
    assert raises(genre(tmp_path, raw="").load) == (
        f"{tmp_path / 'train.csv'}: is empty (0 bytes); expected a header line and one row per Id")


# the CS98X schema, for dataset=spotify_cs98x through the task and train.py
CS98X = "Id,title,artist,year,bpm,nrgy,dnce,dB,live,val,dur,acous,spch,pop,top genre"


def cs98x(tmp_path, bpm="120"):
    rows = [f"{i},t{i},a{i},2000,{bpm if i == 3 else 100 + i},50,50,-5,10,50,200,10,5,50,{'pop' if i % 2 else 'rock'}"
            for i in range(1, 7)]
    return write(tmp_path / "data" / "cs" / "bad.csv", "\n".join([CS98X, *rows]) + "\n")


def test_genre_task_load_path_names_file_and_line(make_cfg, tmp_path):
    path = write(tmp_path / "data" / "cs" / "bad.csv", CS98X + "\n")
    cfg = make_cfg(["task=genre", "dataset=spotify_cs98x", f"paths.data_dir={tmp_path / 'data'}",
                    "dataset.train_file=cs/bad.csv", "dataset.test_file=null"])
    task = GenreTask(cfg)
    task.check_inputs()  # the file exists: the content is checked when it is read
    assert raises(task.dataset.load).startswith(f"{path}: has a header but no rows (header: Id, title, artist, ")


def test_train_py_end_to_end_names_file_line_and_column(tmp_path):
    path = cs98x(tmp_path, bpm="inf")
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}", "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.run(
        [sys.executable, "train.py", "task=genre", "dataset=spotify_cs98x", "logger=none",
         f"paths.data_dir={tmp_path / 'data'}", "dataset.train_file=cs/bad.csv", "dataset.test_file=null",
         f"paths.output_root={tmp_path / 'out'}"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
        timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]  # the user's data: the message alone, exit 2
    assert proc.stderr.startswith(f"error: {path}:4: data row 3 (Id=3), column 'bpm': expected a finite number, "
                                  "got inf (1 infinite value(s)"), proc.stderr[-2000:]
    assert "Input X contains infinity" not in proc.stderr and "Traceback" not in proc.stderr


# -- listening: EventsTableDataset, ThirtyMusicDataset, MovieLensDataset ------------------------------------
T0 = 1_420_070_400
EVENTS = ["u\tt\ti", *[f"{u}\t{T0 + k * 60 + (d * 86400)}\t{k}" for u in (1, 2) for d in (0, 5) for k in range(3)]]


def events(tmp_path, text, **kw):
    write(tmp_path / "ev.tsv", text)
    return EventsTableDataset("mylog", str(tmp_path), ["ev.tsv"], {"user": "u", "timestamp": "t", "item": "i"},
                              cutoff_fraction=0.5, min_session_len=1, **kw)


def test_events_bom_and_crlf_read_as_plain_tsv(tmp_path):
    plain = events(tmp_path / "plain", "\n".join(EVENTS) + "\n").load()
    crlf = events(tmp_path / "crlf", ("\ufeff" + "\r\n".join(EVENTS) + "\r\n").encode()).load()
    assert crlf.stats == plain.stats and crlf.stats["data/train_events"] == 6
    pd.testing.assert_frame_equal(crlf.train, plain.train)


def test_events_header_only_and_empty(tmp_path):
    assert raises(events(tmp_path, "u\tt\ti\n").load) == (
        f"{tmp_path / 'ev.tsv'}: has a header but no rows (header: u, t, i); "
        "expected a header line naming ['u', 't', 'i'] and one row per event")
    assert raises(events(tmp_path, "").load) == (
        f"{tmp_path / 'ev.tsv'}: is empty (0 bytes); expected a header line naming ['u', 't', 'i'] and one row "
        "per event")


def test_events_ragged_and_comma_separated(tmp_path):
    rows = [*EVENTS[:3], "1\t99\t3\t7", *EVENTS[3:], "2\t5"]
    assert raises(events(tmp_path, "\n".join(rows) + "\n").load) == (
        f"{tmp_path / 'ev.tsv'}: line 4 has 4 field(s), expected 3 like the header; 2 such line(s) "
        "(lines [4, 15]): " + RAGGED.format(sep="\t"))
    comma = "\n".join(r.replace("\t", ",") for r in EVENTS) + "\n"
    assert raises(events(tmp_path, comma).load) == (
        f"{tmp_path / 'ev.tsv'}: looks ','-separated, not '\\t'-separated (line 1 is 3 fields on ',', 1 on '\\t'); "
        "set dataset.sep=','")
    assert events(tmp_path, comma, sep=",").load().stats["data/train_events"] == 6


def test_events_inf_and_thousands_timestamps_are_skipped_and_counted(tmp_path):
    rows = [*EVENTS, f"1\tinf\t9", f'2\t"1,420,070,400"\t9']
    s = events(tmp_path, "\n".join(rows) + "\n").load()
    assert s.skipped["data/skipped_bad_timestamps"] == 2
    assert s.stats["data/train_events"] + s.stats["data/test_events"] == 12


def thirty(tmp_path, tsv, tags="{}"):
    write(tmp_path / "s0.tsv", tsv)
    write(tmp_path / "tags0.json", tags)
    return ThirtyMusicDataset("30music", str(tmp_path), ["s0.tsv"],
                              {"user": "UserId", "session": "SessionId", "item": "ItemId", "timestamp": "Time"},
                              tags=True, tag_files=["tags0.json"], cutoff_fraction=0.5, min_session_len=1)


def test_30music_header_only_file_is_named_not_an_index_error(tmp_path):
    # was: IndexError in ThirtyMusicDataset._tag_pairs
    assert raises(thirty(tmp_path, "UserId\tSessionId\tItemId\tTime\n").load) == (
        f"{tmp_path / 's0.tsv'}: has a header but no rows (header: UserId, SessionId, ItemId, Time); expected a "
        "header line naming ['UserId', 'SessionId', 'ItemId', 'Time'] and one row per event")
    pairs = ThirtyMusicDataset._tag_pairs(pd.DataFrame({"session": [], "item": []}), tmp_path / "tags0.json", {})
    assert [a.tolist() for a in pairs] == [[], []]


def test_30music_empty_or_non_object_tag_file_is_named(tmp_path):
    tsv = "UserId\tSessionId\tItemId\tTime\n" + "".join(f"1\t{s}\t{k}\t{T0 + s * 86400 + k}\n"
                                                        for s in range(2) for k in range(2))
    what = 'a JSON object of session id -> {"tags_idxs": [[tag id, ...] per play]}'
    assert raises(thirty(tmp_path, tsv, tags="").load) == f"{tmp_path / 'tags0.json'}: is empty (0 bytes); expected {what}"
    assert raises(thirty(tmp_path, tsv, tags="[1, 2]").load) == f"{tmp_path / 'tags0.json'}: not {what} (a JSON list)"
    ok = thirty(tmp_path, tsv, tags=json.dumps({"0": {"tags_idxs": [[5], [5]]}})).load()
    assert ok.skipped["data/skipped_tag_sessions_unaligned"] == 1  # session 1 has no tag list: counted


def movielens(tmp_path, ratings, items="1|M|01-Jan-1995||url" + "|0" * 18 + "|1\n"):
    write(tmp_path / "u.data", ratings)
    write(tmp_path / "u.item", items)
    return MovieLensDataset("movielens_100k", str(tmp_path), "u.data", "u.item", cutoff_fraction=0.5,
                            cutoff_by="user", min_session_len=1)


def test_movielens_empty_and_ragged(tmp_path):
    assert raises(movielens(tmp_path, "").load) == (
        f"{tmp_path / 'u.data'}: is empty (0 bytes); expected 4 tab-separated fields per line: user item rating "
        "timestamp")
    assert raises(movielens(tmp_path, f"1\t1\t5\t{T0}\n1\t1\t{T0}\n").load) == (
        f"{tmp_path / 'u.data'}: line 2 has 3 field(s), expected 4 (4 tab-separated fields per line: user item "
        "rating timestamp); 1 such line(s) (lines [2]): " + RAGGED.format(sep="\t"))
    assert raises(movielens(tmp_path, f"1\t1\t5\t{T0}\n", items="1|M|x\n").load).startswith(
        f"{tmp_path / 'u.item'}: line 1 has 3 field(s), expected 24 (24 '|'-separated fields per line: ")


# -- catalog: NetflixTitlesDataset ----------------------------------------------------------------------------
def title(i, year="2019", description="A film."):
    return f's{i},Movie,Title {i},Dir,"A, B",India,"September 9, 2019",{year},TV-MA,90 min,Dramas,{description}'


def netflix(tmp_path, text, **kw):
    write(tmp_path / "netflix" / "netflix_titles.csv", text)
    return NetflixTitlesDataset("netflix", str(tmp_path), "netflix/netflix_titles.csv", **kw)


HEADER = ",".join(COLUMNS)


def test_netflix_bom_and_crlf(tmp_path):
    cat = netflix(tmp_path, ("\ufeff" + "\r\n".join([HEADER, title(1), title(2)]) + "\r\n").encode()).load()
    assert cat.titles["show_id"].tolist() == ["s1", "s2"] and cat.counts["data/rows_kept"] == 2
    assert cat.titles["description"].tolist() == ["A film.", "A film."]  # no '\r' left at the line end


def test_netflix_ragged_semicolon_header_only_empty(tmp_path):
    path = tmp_path / "netflix" / "netflix_titles.csv"
    rows = [HEADER, title(1), title(2, description="Love, war."), title(3)[: -len(",A film.")]]
    assert raises(netflix(tmp_path, "\n".join(rows) + "\n").load) == (
        f"{path}: line 3 has 13 field(s), expected 12 like the header; 2 such line(s) (lines [3, 4]): "
        + RAGGED.format(sep=","))
    semi = "\n".join([";".join(COLUMNS), title(1).replace(",", ";")]) + "\n"
    assert raises(netflix(tmp_path, semi).load) == (
        f"{path}: looks ';'-separated, not ','-separated (line 1 is 12 fields on ';', 1 on ','); set dataset.sep=';'")
    expected = f"a CSV with header {COLUMNS} and one row per title"
    assert raises(netflix(tmp_path, HEADER + "\n").load) == (
        f"{path}: has a header but no rows (header: show_id, type, title, director, cast, country, date_added, "
        f"release_year, ...); expected {expected}")
    assert raises(netflix(tmp_path, "\n\n").load) == f"{path}: is empty (only blank lines); expected {expected}"


def test_netflix_thousands_in_release_year_is_skipped_and_counted(tmp_path):
    cat = netflix(tmp_path, "\n".join([HEADER, title(1), title(2, year='"1,996"')]) + "\n").load()
    assert cat.counts["data/bad_release_year_rows"] == 1 and cat.titles["show_id"].tolist() == ["s1"]


# -- personas: CharacterFeaturesDataset, PersonasSampleDataset (features, gold, metadata) ----------------------
FEATURES = "wiki_id\tcharacter\tagent_verbs\tpatient_verbs\tattributes"
GOLD = 'hero\t{"char": "Rue", "movie": "M", "id": "/m/1"}\n'
META = "1\t/m/1\tM\t\t\t\t{}\t{}\t{}\n"


def personas(tmp_path, features=FEATURES + "\n1\tRue\t['draws']\t[]\tbrave\n", gold=GOLD, meta=META):
    write(tmp_path / "chars.tsv", features)
    write(tmp_path / "gold.txt", gold)
    write(tmp_path / "meta.tsv", meta)
    return CharacterFeaturesDataset("cmu_personas", str(tmp_path), "chars.tsv", "gold.txt", "meta.tsv")


def test_personas_bom_and_crlf_in_every_file(tmp_path):
    bags = personas(tmp_path, features=("\ufeff" + FEATURES + "\r\n1\tRue\t['draws']\t[]\tbrave\r\n").encode(),
                    gold=("\ufeff" + GOLD.replace("\n", "\r\n")).encode(), meta=("\ufeff" + META).encode()).load()
    assert bags.chars["wiki_id"].tolist() == ["1"] and bags.chars["adj"].tolist() == [["brave"]]
    assert bags.gold["trope"].tolist() == ["hero"] and bags.counts["data/gold_matched"] == 1


def test_personas_empty_header_only_and_ragged(tmp_path):
    expected = ("a header line naming ['wiki_id', 'character', 'agent_verbs', 'patient_verbs', 'attributes'] and "
                "one row per character")
    assert raises(personas(tmp_path, features="").load) == f"{tmp_path / 'chars.tsv'}: is empty (0 bytes); expected {expected}"
    assert raises(personas(tmp_path, features=FEATURES + "\n").load) == (
        f"{tmp_path / 'chars.tsv'}: has a header but no rows (header: wiki_id, character, agent_verbs, "
        f"patient_verbs, attributes); expected {expected}")
    assert raises(personas(tmp_path, features=FEATURES + "\n1\tRue\t[]\n").load).startswith(
        f"{tmp_path / 'chars.tsv'}: line 2 has 3 field(s), expected 5 like the header; 1 such line(s) (lines [2])")
    assert raises(personas(tmp_path, gold="").load) == (
        f"{tmp_path / 'gold.txt'}: is empty (0 bytes); expected one 'trope<TAB>json' line per gold character")
    assert raises(personas(tmp_path, meta="").load) == (
        f"{tmp_path / 'meta.tsv'}: is empty (0 bytes); expected 9 tab-separated fields per line (CMU movie.metadata.tsv)")
    assert raises(personas(tmp_path, meta=META + "2\t/m/2\tN\n").load) == (
        f"{tmp_path / 'meta.tsv'}: line 2 has 3 field(s), expected 9 (9 tab-separated fields per line (CMU "
        "movie.metadata.tsv)); 1 such line(s) (lines [2]): " + RAGGED.format(sep="\t"))


def test_personas_sample_csv_semicolon_and_bom(tmp_path):
    personas(tmp_path)  # gold + metadata
    header = ",wiki_id,character,adj,active,patient"
    ds = PersonasSampleDataset("personas_sample", str(tmp_path), "chars.csv", "gold.txt", "meta.tsv")
    write(tmp_path / "chars.csv", "\n".join([header, "0,1,Rue,[],['draws'],[]"]).replace(",", ";") + "\n")
    assert raises(ds.load) == (f"{tmp_path / 'chars.csv'}: looks ';'-separated, not ','-separated (line 1 is 6 "
                               "fields on ';', 1 on ','); expected a CSV file")
    write(tmp_path / "chars.csv", ("\ufeff" + header + "\r\n0,1,Rue,[],\"['draws']\",[]\r\n").encode())
    assert ds.load().chars["active"].tolist() == [["draws"]]
