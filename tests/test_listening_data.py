"""task=listening data: the §4.1 session and split rules on hand-made logs, bad input, the synthetic generator,
and the real 30Music / MovieLens files (skipped when MEDIAML_DATA_DIR does not hold them)."""
import logging

import numpy as np
import pandas as pd
import pytest
from hydra.utils import instantiate

from conftest import require_real, user_dataset
from mediaml.errors import DataError, DataNotFoundError
from mediaml.tasks.listening.data import (EventsTableDataset, ListeningSplit, SyntheticListeningDataset, prepare_events,
                                    sessionize, split_sessions)

MIN = 60
T0 = 1_420_070_400  # 2015-01-01T00:00:00Z
DAY = 86_400


def log_of(sessions, gap=MIN):
    """Events from [(user, start, items, device)], one event every `gap` seconds inside a session."""
    rows = [{"user": u, "timestamp": start + i * gap, "item": it, "device": dev}
            for u, start, items, dev in sessions for i, it in enumerate(items)]
    return pd.DataFrame(rows)


def split(df, **kw):
    kw.setdefault("cutoff", T0 + 10 * DAY)
    kw.setdefault("min_session_len", 1)
    return split_sessions(prepare_events(df, "hand-made log"), "hand", **kw)


# -- sessions ------------------------------------------------------------------------------------------
def test_gap_just_below_ten_minutes_stays_and_exactly_ten_starts_a_new_session():
    ts = [0, 599, 1198, 1798, 1798 + 601]  # gaps 599, 599, 600, 601
    ev = prepare_events(pd.DataFrame({"user": 1, "timestamp": ts, "item": range(5)}), "log")
    assert sessionize(ev, 10).tolist() == [0, 0, 0, 1, 2]


def test_device_change_and_user_change_split_sessions():
    ev = prepare_events(pd.DataFrame({"user": [1, 1, 1, 2, 2], "timestamp": [0, 60, 120, 130, 140],
                                      "item": range(5), "device": ["pc", "pc", "phone", "phone", "phone"]}), "log")
    assert sessionize(ev, 10).tolist() == [0, 0, 1, 2, 2]
    assert sessionize(ev.drop(columns="device"), 10).tolist() == [0, 0, 0, 1, 1]


def test_given_sessions_are_kept_and_numbered_by_user_then_start():
    # user 1's session 9 starts first; sessions 7 and 8 interleave in time but stay separate
    ev = prepare_events(pd.DataFrame({"user": [1, 1, 1, 1, 1, 2], "timestamp": [100, 5000, 200, 5050, 5100, 50],
                                      "item": range(6), "session": [9, 7, 9, 8, 7, 3]}), "log")
    sid = sessionize(ev, 10, use_given_sessions=True)
    assert dict(zip(ev["item"], sid)) == {0: 0, 2: 0, 1: 1, 4: 1, 3: 2, 5: 3}
    gap = sessionize(ev, 10)                      # the gap rule merges 7 and 8
    assert dict(zip(ev["item"], gap)) == {0: 0, 2: 0, 1: 1, 3: 1, 4: 1, 5: 2}
    with pytest.raises(DataError, match="no 'session' column"):
        sessionize(ev.drop(columns="session"), 10, use_given_sessions=True)


# -- split ---------------------------------------------------------------------------------------------
def test_last_n_before_and_first_m_after_the_cutoff():
    cut = T0 + 10 * DAY
    sessions = [(1, T0 + d * DAY, [d, d + 100], "pc") for d in range(5)]          # 5 before
    sessions += [(1, cut + d * DAY, [3, 4, 104], "pc") for d in range(3)]         # 3 after
    s = split(log_of(sessions), train_sessions_per_user=2, test_sessions_per_user=1)
    assert isinstance(s, ListeningSplit) and s.has_device
    assert s.train_sessions["start"].tolist() == [T0 + 3 * DAY, T0 + 4 * DAY]     # the last 2 before
    assert s.test_sessions["start"].tolist() == [cut]                               # the first after
    assert s.skipped["data/skipped_train_sessions_over_limit"] == 3
    assert s.skipped["data/skipped_test_sessions_over_limit"] == 2
    assert s.stats == {"data/train_events": 4, "data/train_users": 1, "data/train_songs": 4,
                       "data/train_sessions": 2, "data/test_events": 3, "data/test_users": 1,
                       "data/test_songs": 3, "data/test_sessions": 1}
    assert s.table1().loc["test"].tolist() == [3, 1, 3, 1]


def test_split_rules_on_a_hand_made_log():
    cut = T0 + 10 * DAY
    sessions = [
        (1, T0, [1, 2, 3], "pc"), (1, T0 + DAY, [1, 2], "pc"),            # user 1: one short session before
        (1, cut + DAY, [1, 2, 9], "pc"),                                   # 9 is cold start
        (2, T0, [4, 5, 6], "phone"), (2, cut + DAY, [9, 9, 8], "phone"),   # user 2: test session all cold start
        (3, T0, [1, 4, 7], "pc"),                                          # user 3: train only
        (4, cut + DAY, [1, 2, 3], "pc"),                                   # user 4: test only
        (5, T0, [1], "pc"), (5, cut + DAY, [2], "pc"),                      # user 5: only short sessions
    ]
    s = split(log_of(sessions), min_session_len=3)
    sk = s.skipped
    assert sk["data/skipped_short_sessions"] == 3 and sk["data/skipped_short_session_events"] == 4
    assert sk["data/skipped_users_no_usable_session"] == 1
    assert sk["data/skipped_users_train_only"] == 1 and sk["data/skipped_users_test_only"] == 1
    assert sk["data/skipped_cold_start_test_events"] == 4     # one 9 of user 1, three of user 2
    assert sk["data/skipped_empty_test_sessions"] == 1        # user 2's test session
    assert s.users["user_id"].tolist() == [1, 2]
    assert sorted(s.items["item_id"]) == [1, 2, 3, 4, 5, 6]
    assert s.test["item"].map(s.items["item_id"]).tolist() == [1, 2]
    assert s.test_sessions.to_dict("list") == {"user": [0], "start": [cut + DAY], "n_events": [2], "device": ["pc"]}
    assert s.items.set_index("item_id")["plays"].to_dict() == {1: 1, 2: 1, 3: 1, 4: 1, 5: 1, 6: 1}
    assert s.stats["data/train_users"] == 2 and s.stats["data/test_users"] == 1
    assert s.stats["data/train_sessions"] == 2 and s.stats["data/test_sessions"] == 1
    # contract: dtypes, contiguous ids, sorted by (user, timestamp)
    for df in (s.train, s.test):
        assert [str(df[c].dtype) for c in ("user", "session", "item", "timestamp")] == ["int32"] * 3 + ["int64"]
        assert df.equals(df.sort_values(["user", "timestamp"], kind="stable"))
    assert sorted(s.train["session"].unique()) == list(range(s.n_train_sessions))
    assert (s.train.groupby("session").size() == s.train_sessions["n_events"]).all()

    kept = split(log_of(sessions), min_session_len=3, keep_train_only_users=True)
    assert kept.users["user_id"].tolist() == [1, 2, 3] and kept.skipped["data/kept_train_only_users"] == 1
    assert 7 in set(kept.items["item_id"])


def test_cutoff_fraction_per_group_and_cutoff_errors():
    # two periods 60 days apart: the middle of each period vs the middle of the whole log
    sessions = [(u, base + off, [1, 2], "pc") for u in (1, 2) for base in (T0, T0 + 60 * DAY)
                for off in (0, 2 * DAY)]
    df = log_of(sessions)
    df["slice"] = (df["timestamp"] >= T0 + 30 * DAY).astype(int)
    s = split(df, cutoff=None, cutoff_fraction=0.5, cutoff_by="slice")
    assert s.stats["data/train_users"] == 2 and s.stats["data/train_sessions"] == 4
    assert s.stats["data/test_sessions"] == 4 and len(s.info["cutoffs"]) == 2
    assert sorted(set(s.train_sessions["start"])) == [T0, T0 + 60 * DAY]
    g = split(df, cutoff=None, cutoff_fraction=0.5)
    assert g.stats["data/train_sessions"] == 4 and g.info["cutoffs"] == [
        pd.Timestamp(T0 + 31 * DAY + 30, unit="s").isoformat()]
    assert sorted(set(g.train_sessions["start"])) == [T0, T0 + 2 * DAY]
    iso = split(df, cutoff="2015-01-02T00:00:00")
    assert iso.stats["data/train_sessions"] == 2 and iso.info["cutoff"] == "2015-01-02T00:00:00"
    with pytest.raises(DataError, match="exactly one of"):
        split(df, cutoff_fraction=0.5)
    with pytest.raises(DataError, match="no such column"):
        split(df, cutoff=None, cutoff_fraction=0.5, cutoff_by="period")
    with pytest.raises(DataError, match=r"hand: no session .* after the cutoff.*test split is empty"):
        split(df, cutoff="2030-01-01")
    with pytest.raises(DataError, match=r"hand: no session left after the min_session_len=5 filter"):
        split(df, min_session_len=5)
    with pytest.raises(DataError, match="is not a date"):
        split(df, cutoff="june")
    with pytest.raises(DataError, match="is not a date"):
        split(df, cutoff="sometime")


def test_cold_start_that_empties_the_test_split_is_named():
    df = log_of([(1, T0, [1, 2], "pc"), (1, T0 + 20 * DAY, [3, 4], "pc")])
    with pytest.raises(ValueError, match="hand: every test event is a song not in training"):
        split(df)


def test_no_user_on_both_sides_is_named():
    df = log_of([(1, T0, [1, 2], "pc"), (2, T0 + 20 * DAY, [1, 2], "pc")])
    with pytest.raises(DataError, match="hand: no user has sessions on both sides"):
        split(df)


# -- bad input -----------------------------------------------------------------------------------------
def table_dataset(tmp_path, text, **kw):
    (tmp_path / "ev.tsv").write_text(text)
    return EventsTableDataset("mylog", str(tmp_path), ["ev.tsv"], {"user": "u", "timestamp": "t", "item": "i"},
                              cutoff_fraction=0.5, min_session_len=1, **kw)


def test_missing_column_names_file_and_column(tmp_path):
    ds = table_dataset(tmp_path, "u\tt\tsong\n1\t0\t5\n")
    with pytest.raises(DataError) as e:
        ds.load()
    assert "ev.tsv" in str(e.value) and "['i']" in str(e.value) and "found ['u', 't', 'song']" in str(e.value)
    with pytest.raises(DataError, match=r"hand-made: missing column\(s\) \['item'\]"):
        prepare_events(pd.DataFrame({"user": [1], "timestamp": [0]}), "hand-made")


def test_missing_file_is_reported_by_check(tmp_path):
    ds = EventsTableDataset("mylog", str(tmp_path), ["nope.tsv"], {"user": "u", "timestamp": "t", "item": "i"},
                            cutoff_fraction=0.5)
    with pytest.raises(DataNotFoundError, match="nope.tsv"):
        ds.check()


def test_unparseable_timestamps_are_counted_and_dates_are_read(tmp_path, caplog):
    rows = ["u\tt\ti", "1\t2015-01-01T00:00:00\t1", "1\t2015-01-01 00:01:00\t2", "1\tyesterday\t3",
            "1\t1420074000\t1", "1\t\t5", "1\t1420074060\t2"]
    with caplog.at_level(logging.WARNING):
        s = table_dataset(tmp_path, "\n".join(rows) + "\n").load()
    assert s.skipped["data/skipped_bad_timestamps"] == 2
    assert "unparseable timestamp" in caplog.text and "ev.tsv" in caplog.text and "yesterday" in caplog.text
    assert s.stats["data/train_events"] + s.stats["data/test_events"] == 4
    assert s.train["timestamp"].tolist() == [T0, T0 + 60]


def test_a_column_without_any_timestamp_is_an_error(tmp_path):
    ds = table_dataset(tmp_path, "u\tt\ti\n1\tmonday\t1\n1\ttuesday\t2\n")
    with pytest.raises(DataError, match=r"ev.tsv: column 'timestamp' has no parseable timestamp"):
        ds.load()


# -- synthetic -----------------------------------------------------------------------------------------
def test_synthetic_is_seeded_and_has_the_planted_structure():
    a, b = SyntheticListeningDataset(seed=3).load(), SyntheticListeningDataset(seed=3).load()
    pd.testing.assert_frame_equal(a.train, b.train)
    pd.testing.assert_frame_equal(a.test, b.test)
    assert not SyntheticListeningDataset(seed=4).load().train.equals(a.train)
    assert a.has_device and "device" in a.train_sessions and a.items["tag"].str.startswith("cluster_").all()
    assert 10_000 <= a.stats["data/train_events"] + a.stats["data/test_events"] <= 30_000
    assert a.n_users + a.n_train_sessions + a.n_items < 5_000          # a small training graph
    assert a.skipped["data/skipped_short_sessions"] > 0                 # the planted short sessions
    # the 10-min rule recovers the planted sessions: a session's songs mostly share one cluster
    tag = a.items["tag"].to_numpy()[a.train["item"]]
    share = pd.Series(tag).groupby(a.train["session"].to_numpy()).agg(lambda t: t.value_counts().iloc[0] / len(t))
    assert share.mean() > 0.7


# -- configs and real data -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["synthetic_listening", "30music", "movielens_100k"])
def test_dataset_configs_compose(make_cfg, name):
    cfg = make_cfg(["task=listening", f"dataset={name}"])
    ds = instantiate(cfg.dataset, _convert_="all")
    assert ds.name == name and ds.split_kwargs["min_session_len"] == 5
    assert ds.split_kwargs["train_sessions_per_user"] == 80 and ds.split_kwargs["test_sessions_per_user"] == 20


def test_real_30music(make_cfg):
    d = require_real("listening/30music_200ks_test_slices/30music-200ks_test.0.txt")
    cfg = make_cfg(["task=listening", "dataset=30music", f"paths.data_dir={d}"])
    s = instantiate(cfg.dataset, _convert_="all").load()
    assert s.info["input_events"] == 121_547 and s.info["input_users"] == 4_620
    assert s.info["input_sessions"] == 21_507                     # 10-min rule, a gap of 600 s splits
    assert s.stats["data/train_users"] == 597 and s.stats["data/train_sessions"] == 1_428
    assert 16_000 < s.stats["data/train_events"] < 18_500 and s.stats["data/test_sessions"] > 1_000
    assert s.skipped["data/skipped_cold_start_test_events"] > 0 and not s.has_device
    assert set(s.train["slice"]) == {0, 1, 2, 3, 4}
    assert s.items["tag"].notna().mean() > 0.8 and s.items["artist"].notna().all()
    assert s.test["item"].max() < s.n_items and (s.test_sessions["n_events"] >= 1).all()
    given = split_sessions(instantiate(cfg.dataset, _convert_="all").events({}), "30music", cutoff_fraction=0.5,
                           cutoff_by="slice", use_given_sessions=True)
    assert given.info["input_sessions"] == 9_519


def test_real_movielens(make_cfg):
    d = require_real("listening/movielens_100k/u.data")
    cfg = make_cfg(["task=listening", "dataset=movielens_100k", f"paths.data_dir={d}"])
    s = instantiate(cfg.dataset, _convert_="all").load()
    assert s.info["input_events"] == 100_000 and s.info["input_users"] == 943
    assert 250 < s.stats["data/train_users"] == s.stats["data/test_users"] < 400
    assert s.stats["data/test_events"] > 10_000
    assert {"Drama", "Comedy", "Action"} <= set(s.items["tag"].dropna())
    assert np.isin(s.test["item"], s.train["item"]).all()


def test_a_headerless_tsv_in_milliseconds_runs_by_yaml_alone(tmp_path, make_cfg):
    """New data by config alone: a dataset YAML in the user's own config folder (hydra.searchpath) describes a log
    without a header row (`header: none` + `column_names`, another column order, ms timestamps); it loads the same
    split as the events it was written from, a line whose time does not parse is skipped and counted, and the task
    runs on it."""
    import pandas as pd
    from hydra.utils import instantiate

    from mediaml.run import run
    from mediaml.tasks.listening.data import SyntheticListeningDataset

    synthetic = dict(seed=0, n_users=60, n_songs=300, n_clusters=6, cutoff_fraction=0.7)
    ev = SyntheticListeningDataset(**synthetic).generate()
    log = pd.DataFrame({"ms": ev["timestamp"] * 1000, "uid": "u" + ev["user"].astype(str), "song": ev["item"],
                        "dev": ev["device"]})
    lines = log.to_csv(sep="\t", header=False, index=False).splitlines()
    lines.insert(7, "not-a-time\tu1\t5\tmobile")
    (tmp_path / "log.tsv").write_text("\n".join(lines) + "\n")
    search = user_dataset(tmp_path / "myconf", "my_log", f"""
_target_: mediaml.tasks.listening.data.EventsTableDataset
name: my_log
tasks: [listening]
data_dir: {tmp_path}
files: [log.tsv]
sep: "\\t"
header: none
column_names: [ms, uid, song, dev]
columns: {{user: uid, item: song, timestamp: ms, device: dev}}
timestamp_unit: ms
cutoff_fraction: 0.7
""")
    over = ["task=listening", search, "dataset=my_log", "model=popularity",
            "logger=none", "task.maps.enabled=false"]
    cfg = make_cfg(over)
    split = instantiate(cfg.dataset).load()
    want = SyntheticListeningDataset(**synthetic).load()
    assert split.skipped["data/skipped_bad_timestamps"] == 1
    assert {k: split.stats[k] for k in want.stats} == want.stats  # the same events, sessions and split
    assert run(cfg) >= 0
    from mediaml.tasks.listening.task import ListeningTask

    with pytest.raises(DataError, match="needs `column_names`"):  # the user's error, not Hydra's wrapper
        ListeningTask(make_cfg([*over, "~dataset.column_names"]))
