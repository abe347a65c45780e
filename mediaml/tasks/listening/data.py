"""Listening logs -> sessions -> the paper's real-life train/test split (seed 001, ISMIR 2016, §4.1).

Every dataset turns its files into one events table (`user, timestamp, item` + optional `device`,
`artist`, `tag`, `session`, `slice`) and `ListeningDataset.load()` does the rest, the same way for all:

1. `prepare_events`: check the columns, parse timestamps (unix seconds or date strings; unparseable
   rows are skipped and counted, a column with no usable value is an error naming file and column).
2. `sessionize`: a session is a run of one user's events whose neighbouring gaps are *shorter* than
   `session_gap_minutes` (a gap of exactly 10 min starts a new session) on the same device (when a
   device column exists); `use_given_sessions` keeps the dataset's own session ids instead.
3. `split_sessions`: a session belongs to the side of the cutoff its first event is on. Sessions
   with fewer than `min_session_len` events are dropped; per user the last `train_sessions_per_user`
   sessions before the cutoff train, the first `test_sessions_per_user` after it test; users without
   sessions on both sides are dropped (`keep_train_only_users: true` keeps their training sessions in
   the graph); test events whose song is not in training are dropped, then test sessions left empty.
   Every drop is counted in `ListeningSplit.skipped`; a filter that empties a side is a DataError
   (a ValueError) naming the dataset and the filter.

Cutoff (one of): `cutoff` = an ISO date (UTC) or unix seconds, global as in the paper; or
`cutoff_fraction` = fraction of the time span, of the whole log (`cutoff_by: null`) or of each group
of a column (`cutoff_by: slice` = each 30Music period separately).

Datasets: `EventsTableDataset` (any CSV/TSV events table, columns named in the config),
`ThirtyMusicDataset` (dataset=30music), `MovieLensDataset` (dataset=movielens_100k),
`SyntheticListeningDataset` (dataset=synthetic_listening).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from mediaml.errors import DataError, require_file
from mediaml.tables import read_table, read_text

log = logging.getLogger(__name__)

REQUIRED = ("user", "timestamp", "item")
OPTIONAL = ("device", "artist", "tag", "session", "slice")
TABLE1 = ("events", "users", "songs", "sessions")


# -- the split ---------------------------------------------------------------------------------------
@dataclass
class ListeningSplit:
    """Train/test events with 0-based user, session and item indexes (see notes/listening_contract.md)."""

    train: pd.DataFrame           # user, session, item (int32), timestamp (int64) [, device, slice]
    test: pd.DataFrame            # same; session = test-session id; items all seen in training
    train_sessions: pd.DataFrame  # index = train session id: user, start, n_events [, device, slice]
    test_sessions: pd.DataFrame   # index = test session id: same columns
    items: pd.DataFrame           # index = item index: item_id, plays [, artist, tag]
    users: pd.DataFrame           # index = user index: user_id
    stats: dict[str, float] = field(default_factory=dict)   # Table 1: data/{train,test}_{events,users,songs,sessions}
    skipped: dict[str, int] = field(default_factory=dict)   # data/skipped_*: every drop, counted
    has_device: bool = False
    info: dict = field(default_factory=dict)                 # input sizes and the cutoff(s) used, for the log

    @property
    def n_users(self) -> int:
        return len(self.users)

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_train_sessions(self) -> int:
        return len(self.train_sessions)

    @property
    def n_test_sessions(self) -> int:
        return len(self.test_sessions)

    def table1(self) -> pd.DataFrame:
        """The paper's Table 1: events, users, songs and sessions per split."""
        return pd.DataFrame({k: [int(self.stats[f"data/{side}_{k}"]) for side in ("train", "test")] for k in TABLE1},
                            index=pd.Index(["train", "test"], name="split"))


# -- 1. events ---------------------------------------------------------------------------------------
def parse_timestamps(values: pd.Series, source: str, column: str = "timestamp") -> tuple[np.ndarray, np.ndarray]:
    """Unix seconds (int64) and a mask of usable rows. Numbers are unix seconds; strings may also be dates
    (read as UTC). No usable value at all is a DataError naming `source` and `column`."""
    if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
        num = values.astype("float64")
    else:
        num = pd.to_numeric(values, errors="coerce")
        rest = num.isna() & values.notna()
        if rest.any():  # date strings ("2015-06-01 10:00:00")
            dt = pd.to_datetime(values[rest], errors="coerce", utc=True, format="mixed")
            num = num.astype("float64")
            num[rest] = (dt - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
    ok = np.isfinite(num.to_numpy(dtype="float64", na_value=np.nan))
    if not ok.any():
        raise DataError(f"{source}: column {column!r} has no parseable timestamp (expected unix seconds or a date "
                        f"like 2015-06-01T00:00:00; first values {values.head(3).tolist()})")
    out = np.zeros(len(values), dtype=np.int64)
    out[ok] = np.floor(num.to_numpy(dtype="float64", na_value=np.nan)[ok]).astype(np.int64)
    return out, ok


def prepare_events(df: pd.DataFrame, source: str, skipped: dict[str, int] | None = None) -> pd.DataFrame:
    """Validate an events table: required `user, timestamp, item`, optional `device, artist, tag, session, slice`.

    Rows with an unparseable timestamp or an empty user/item are skipped and counted in `skipped`.
    Returns the usable rows with int64 `timestamp`, sorted by (user, timestamp), index reset."""
    skipped = {} if skipped is None else skipped
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataError(f"{source}: missing column(s) {missing}; expected {list(REQUIRED)} "
                        f"(+ optional {list(OPTIONAL)}), found {list(df.columns)}")
    if len(df) == 0:
        raise DataError(f"{source}: no events (the table is empty)")
    ts, ok = parse_timestamps(df["timestamp"], source)
    n_bad = int((~ok).sum())
    skipped["data/skipped_bad_timestamps"] = skipped.get("data/skipped_bad_timestamps", 0) + n_bad
    if n_bad:
        i = int(np.flatnonzero(~ok)[0])
        log.warning("%s: %d row(s) with an unparseable timestamp skipped (first: row %d, value %r)",
                    source, n_bad, i + 1, df["timestamp"].iloc[i])
    keep = [c for c in (*REQUIRED, *OPTIONAL) if c in df.columns]
    out = df[keep].assign(timestamp=ts)[ok]
    empty = out["user"].isna() | out["item"].isna()
    skipped["data/skipped_missing_user_or_item"] = skipped.get("data/skipped_missing_user_or_item", 0) + int(empty.sum())
    if empty.any():
        log.warning("%s: %d row(s) without a user or item skipped", source, int(empty.sum()))
        out = out[~empty]
    if "device" in out.columns:
        out["device"] = out["device"].fillna("unknown").astype(str)
    return out.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)


# -- 2. sessions -------------------------------------------------------------------------------------
def sessionize(events: pd.DataFrame, gap_minutes: float = 10, use_given_sessions: bool = False) -> np.ndarray:
    """Session number per event (0..n-1, in (user, start) order) for events sorted by (user, timestamp).

    Gap rule: a new session starts at a user's first event, when the gap to the previous event is
    >= gap_minutes (the paper: neighbouring events are *shorter* than 10 min apart) or the device
    changes. `use_given_sessions`: the table's `session` column (per user) instead."""
    users = events["user"].to_numpy()
    if use_given_sessions:
        if "session" not in events.columns:
            raise DataError("use_given_sessions=true but the events have no 'session' column")
        key = pd.DataFrame({"user": users, "session": events["session"].to_numpy(),
                            "t": events["timestamp"].to_numpy()})
        start = key.groupby(["user", "session"], sort=False)["t"].transform("min").to_numpy()
        order = np.lexsort((key["session"].to_numpy(), start, users))  # (user, start, session)
        codes = np.empty(len(events), dtype=np.int64)
        k = key.iloc[order]
        new = np.ones(len(k), dtype=bool)
        new[1:] = (k["user"].to_numpy()[1:] != k["user"].to_numpy()[:-1]) | \
                  (k["session"].to_numpy()[1:] != k["session"].to_numpy()[:-1])
        codes[order] = np.cumsum(new) - 1
        return codes
    ts = events["timestamp"].to_numpy()
    new = np.ones(len(events), dtype=bool)
    if len(events) > 1:
        new[1:] = (users[1:] != users[:-1]) | ((ts[1:] - ts[:-1]) >= gap_minutes * 60)
        if "device" in events.columns:
            dev = events["device"].to_numpy()
            new[1:] |= dev[1:] != dev[:-1]
    return np.cumsum(new) - 1


# -- 3. split ----------------------------------------------------------------------------------------
def _unix(value) -> int:
    if isinstance(value, (int, np.integer, float)):
        return int(value)
    try:
        t = pd.Timestamp(str(value))
        if t.year < 1970:
            raise ValueError
    except ValueError:
        raise DataError(f"cutoff {value!r} is not a date (use e.g. '2015-06-01T00:00:00', read as UTC) "
                        f"or unix seconds") from None
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return int(t.timestamp())


def session_cutoffs(events: pd.DataFrame, cutoff=None, cutoff_fraction: float | None = None,
                    cutoff_by: str | None = None) -> tuple[np.ndarray, dict]:
    """The cutoff (unix s) that applies to each event's group, and a description for the log."""
    if (cutoff is None) == (cutoff_fraction is None):
        raise DataError(f"set exactly one of dataset.cutoff (date) and dataset.cutoff_fraction "
                        f"(got cutoff={cutoff!r}, cutoff_fraction={cutoff_fraction!r})")
    ts = events["timestamp"].to_numpy()
    if cutoff is not None:
        c = _unix(cutoff)
        return np.full(len(events), c, dtype=np.int64), {"cutoff": pd.Timestamp(c, unit="s").isoformat()}
    if not 0.0 < float(cutoff_fraction) < 1.0:
        raise DataError(f"dataset.cutoff_fraction must be in (0, 1), got {cutoff_fraction}")
    if cutoff_by is None:
        group = np.zeros(len(events), dtype=np.int64)
    elif cutoff_by not in events.columns:
        raise DataError(f"dataset.cutoff_by={cutoff_by!r}: the events have no such column "
                        f"(they have {list(events.columns)})")
    else:
        group = pd.factorize(events[cutoff_by], sort=True)[0]
    g = pd.DataFrame({"g": group, "t": ts}).groupby("g")["t"].agg(["min", "max"])
    cut = (g["min"] + cutoff_fraction * (g["max"] - g["min"])).round().astype(np.int64)
    desc = {"cutoff_fraction": cutoff_fraction, "cutoff_by": cutoff_by,
            "cutoffs": [pd.Timestamp(int(c), unit="s").isoformat() for c in cut]}
    return cut.to_numpy()[group], desc


def _mode_per_item(items: np.ndarray, values: pd.Series) -> pd.Series:
    """Most frequent non-null value per item (ties: the first in sort order)."""
    df = pd.DataFrame({"item": items, "v": values.to_numpy()}).dropna()
    if df.empty:
        return pd.Series(dtype=object)
    n = df.groupby(["item", "v"], sort=True).size().reset_index(name="n")
    n = n.sort_values(["item", "n"], ascending=[True, False], kind="stable").drop_duplicates("item")
    return n.set_index("item")["v"]


def split_sessions(events: pd.DataFrame, name: str, *, session_gap_minutes: float = 10,
                   use_given_sessions: bool = False, cutoff=None, cutoff_fraction: float | None = None,
                   cutoff_by: str | None = None, train_sessions_per_user: int = 80,
                   test_sessions_per_user: int = 20, min_session_len: int = 5,
                   keep_train_only_users: bool = False, skipped: dict[str, int] | None = None) -> ListeningSplit:
    """Sessions + the real-life split of §4.1 on prepared events (see the module docstring)."""
    skipped = {} if skipped is None else dict(skipped)
    if events.empty:
        raise DataError(f"{name}: no usable events")
    ev = events.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)
    has_device = "device" in ev.columns
    ev["sid"] = sessionize(ev, session_gap_minutes, use_given_sessions)
    cut, cut_desc = session_cutoffs(ev, cutoff, cutoff_fraction, cutoff_by)
    ev["cut"] = cut
    first = ev.groupby("sid", sort=True)
    sess = pd.DataFrame({"user": first["user"].first(), "start": first["timestamp"].min(),
                         "n_events": first.size(), "cut": first["cut"].first()})
    if has_device:
        sess["device"] = first["device"].first()
    if "slice" in ev.columns:
        sess["slice"] = first["slice"].first()
    sess["train_side"] = sess["start"] < sess["cut"]
    info = {"input_events": len(ev), "input_users": int(ev["user"].nunique()), "input_sessions": len(sess),
            "input_songs": int(ev["item"].nunique()), **cut_desc}

    # sessions shorter than min_session_len
    short = sess["n_events"] < min_session_len
    skipped["data/skipped_short_sessions"] = int(short.sum())
    skipped["data/skipped_short_session_events"] = int(sess.loc[short, "n_events"].sum())
    users_all = sess["user"].unique()
    sess = sess[~short]
    skipped["data/skipped_users_no_usable_session"] = int(len(users_all) - sess["user"].nunique())
    if sess.empty:
        raise DataError(f"{name}: no session left after the min_session_len={min_session_len} filter "
                        f"({info['input_sessions']} sessions from {info['input_events']} events, "
                        f"session_gap_minutes={session_gap_minutes}, use_given_sessions={use_given_sessions})")
    for side, label, ok in (("train", "before", sess["train_side"]), ("test", "after", ~sess["train_side"])):
        if not ok.any():
            raise DataError(f"{name}: no session of >= {min_session_len} events starts {label} the cutoff "
                            f"({cut_desc}); the {side} split is empty: move the cutoff")

    # last N before / first M after, per user (sessions are numbered in (user, start) order)
    tr, te = sess[sess["train_side"]], sess[~sess["train_side"]]
    rank_tr = tr.groupby("user").cumcount(ascending=False)
    rank_te = te.groupby("user").cumcount()
    skipped["data/skipped_train_sessions_over_limit"] = int((rank_tr >= train_sessions_per_user).sum())
    skipped["data/skipped_test_sessions_over_limit"] = int((rank_te >= test_sessions_per_user).sum())
    tr, te = tr[rank_tr < train_sessions_per_user], te[rank_te < test_sessions_per_user]

    # users on both sides
    u_tr, u_te = set(tr["user"].unique()), set(te["user"].unique())
    both = u_tr & u_te
    skipped["data/skipped_users_train_only"] = len(u_tr - both)
    skipped["data/skipped_users_test_only"] = len(u_te - both)
    if not both:
        raise DataError(f"{name}: no user has sessions on both sides of the cutoff ({cut_desc}; "
                        f"{len(u_tr)} users before, {len(u_te)} after, min_session_len={min_session_len}); "
                        f"the split is empty: move the cutoff or use cutoff_fraction with cutoff_by")
    keep_users = u_tr if keep_train_only_users else both
    if keep_train_only_users:
        skipped["data/skipped_users_train_only"] = 0
        skipped["data/kept_train_only_users"] = len(u_tr - both)
    tr = tr[tr["user"].isin(keep_users)]
    te = te[te["user"].isin(both)]

    train = ev[ev["sid"].isin(tr.index)]
    test = ev[ev["sid"].isin(te.index)]
    seen = np.unique(train["item"].to_numpy())
    cold = ~test["item"].isin(seen)
    skipped["data/skipped_cold_start_test_events"] = int(cold.sum())
    test = test[~cold]
    n_te = test.groupby("sid").size()
    skipped["data/skipped_empty_test_sessions"] = int(len(te) - len(n_te))
    te = te.loc[n_te.index].assign(n_events=n_te)
    if test.empty:
        raise DataError(f"{name}: every test event is a song not in training (cold start); the test split is empty")
    skipped["data/skipped_users_test_emptied_by_cold_start"] = int(len(both) - te["user"].nunique())

    # re-index: users, items, sessions
    user_ids = np.unique(tr["user"].to_numpy())
    items = pd.DataFrame({"item_id": seen})
    item_index = pd.Index(seen)
    user_index = pd.Index(user_ids)
    item_code = item_index.get_indexer(train["item"])
    items["plays"] = np.bincount(item_code, minlength=len(seen)).astype(np.int64)
    for col in ("artist", "tag"):
        if col in train.columns:
            mode = _mode_per_item(item_code, train[col])
            items[col] = pd.Series(mode.to_numpy(), index=mode.index.astype(int)).reindex(range(len(seen))).to_numpy()
    if "tag" in items.columns:
        items["tag"] = pd.Series([None if pd.isna(t) else str(t) for t in items["tag"]], dtype=object)

    def table(sessions: pd.DataFrame) -> tuple[pd.DataFrame, pd.Index]:
        sessions = sessions.sort_values(["user", "start"], kind="stable")
        cols = ["user", "start", "n_events"] + [c for c in ("device", "slice") if c in sessions.columns]
        out = sessions[cols].reset_index(drop=True)
        out["user"] = user_index.get_indexer(out["user"]).astype(np.int32)
        out["start"] = out["start"].astype(np.int64)
        out["n_events"] = out["n_events"].astype(np.int64)
        out.index.name = "session"
        return out, pd.Index(sessions.index)

    def frame(e: pd.DataFrame, sid_index: pd.Index) -> pd.DataFrame:
        out = pd.DataFrame({"user": user_index.get_indexer(e["user"]).astype(np.int32),
                            "session": sid_index.get_indexer(e["sid"]).astype(np.int32),
                            "item": item_index.get_indexer(e["item"]).astype(np.int32),
                            "timestamp": e["timestamp"].to_numpy(dtype=np.int64)})
        for c in ("device", "slice"):
            if c in e.columns:
                out[c] = e[c].to_numpy()
        return out.sort_values(["user", "timestamp", "session"], kind="stable").reset_index(drop=True)

    train_sessions, tr_ids = table(tr)
    test_sessions, te_ids = table(te)
    train_df, test_df = frame(train, tr_ids), frame(test, te_ids)
    users = pd.DataFrame({"user_id": user_ids})
    users.index.name = "user"
    items.index.name = "item"
    stats = {}
    for side, e, s in (("train", train_df, train_sessions), ("test", test_df, test_sessions)):
        stats.update({f"data/{side}_events": len(e), f"data/{side}_users": int(e["user"].nunique()),
                      f"data/{side}_songs": int(e["item"].nunique()), f"data/{side}_sessions": len(s)})
    from mediaml.quiet import short

    log.info("%s: train %d events / %d users / %d songs / %d sessions; test %d / %d / %d / %d; cutoff %s; skipped %s",
             name, *[stats[f"data/{s}_{k}"] for s in ("train", "test") for k in TABLE1], cut_desc,
             short(skipped, n=4) or "none")
    return ListeningSplit(train_df, test_df, train_sessions, test_sessions, items, users, stats, skipped,
                          has_device, info)


# -- datasets ----------------------------------------------------------------------------------------
class ListeningDataset:
    """The shared settings and `load()`; subclasses implement `check()` and `events()`."""

    def __init__(self, name: str, session_gap_minutes: float = 10, use_given_sessions: bool = False,
                 cutoff=None, cutoff_fraction: float | None = None, cutoff_by: str | None = None,
                 train_sessions_per_user: int = 80, test_sessions_per_user: int = 20, min_session_len: int = 5,
                 keep_train_only_users: bool = False, source: str = "", tasks: Sequence[str] | None = None):
        self.name, self.source, self.tasks = name, source, tasks
        self.split_kwargs = dict(session_gap_minutes=session_gap_minutes, use_given_sessions=use_given_sessions,
                                 cutoff=cutoff, cutoff_fraction=cutoff_fraction, cutoff_by=cutoff_by,
                                 train_sessions_per_user=train_sessions_per_user,
                                 test_sessions_per_user=test_sessions_per_user, min_session_len=min_session_len,
                                 keep_train_only_users=keep_train_only_users)

    def check(self) -> None:
        """Raise a clear error before any work (missing file, ...). Default: nothing to check."""

    def events(self, skipped: dict[str, int]) -> pd.DataFrame:
        raise NotImplementedError

    def load(self) -> ListeningSplit:
        self.check()
        skipped: dict[str, int] = {}
        ev = self.events(skipped)
        return split_sessions(ev, self.name, skipped=skipped, **self.split_kwargs)


class EventsTableDataset(ListeningDataset):
    """One or more CSV/TSV events files under `data_dir/root`, with `columns` mapping our names to theirs.

    `columns`: {user: <their column>, timestamp: ..., item: ..., [device, artist, tag, session]: ...}.
    `header`: true (the first line names the columns) or none / false (no header line: then `column_names`
    names the file's fields in order, and `columns` maps ours to those names).
    `timestamp_unit`: what a numeric timestamp counts (s, ms, us, ns since 1970); `timestamp_format`: the
    strptime format of date strings (e.g. "%d/%m/%Y %H:%M", read as UTC; null: ISO-like dates are guessed).
    A timestamp that does not parse skips its row (counted in data/skipped_bad_timestamps).
    `add_slice`: each file's position becomes the `slice` column (a period, usable as `cutoff_by`);
    null = only when there are several files."""

    UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}

    def __init__(self, name: str, data_dir: str, files: Sequence[str], columns: Mapping[str, str],
                 root: str = "", sep: str = "\t", add_slice: bool | None = None, header: bool | str | None = True,
                 column_names: Sequence[str] | None = None, timestamp_unit: str = "s",
                 timestamp_format: str | None = None, **kw):
        super().__init__(name, **kw)
        self.data_dir, self.root, self.files, self.sep = Path(data_dir), root, list(files), sep
        self.columns = dict(columns)
        self.add_slice = len(self.files) > 1 if add_slice is None else add_slice
        missing = [c for c in REQUIRED if c not in self.columns]
        if missing:
            raise DataError(f"dataset={name}: `columns` must name the file's column for {missing}")
        if isinstance(header, str):
            if header.strip().lower() not in ("true", "false", "none", "null", "no"):
                raise DataError(f"dataset.header={header!r}: expected true (a header line) or none (no header line)")
            header = header.strip().lower() == "true"
        self.header = bool(header)
        self.column_names = list(column_names) if column_names else None
        if not self.header:
            if not self.column_names:
                raise DataError(f"dataset={name}: `header: none` needs `column_names`, the file's fields in order "
                                f"(e.g. [user, item, timestamp]); `columns` then maps ours to those names")
            unknown = {ours: theirs for ours, theirs in self.columns.items() if theirs not in self.column_names}
            if unknown:
                raise DataError(f"dataset={name}: `columns` names {unknown}, not among dataset.column_names "
                                f"{self.column_names}")
        if timestamp_unit not in self.UNITS:
            raise DataError(f"dataset.timestamp_unit={timestamp_unit!r}: expected one of {list(self.UNITS)}")
        self.timestamp_unit, self.timestamp_format = timestamp_unit, timestamp_format

    def _path(self, rel: str) -> Path:
        return require_file(self.data_dir, str(Path(self.root) / rel), self.name, self.source)

    def check(self) -> None:
        for f in self.files:
            self._path(f)

    def read_file(self, path: Path) -> pd.DataFrame:
        theirs = list(self.columns.values())
        if self.header:
            df = read_table(path, self.sep, columns=theirs, usecols=theirs, sep_key="dataset.sep",
                            expected=f"a header line naming {theirs} and one row per event")
        else:
            names = self.column_names
            df = read_table(path, self.sep, header=False, n_fields=len(names), names=names, usecols=theirs,
                            sep_key="dataset.sep", dtype={c: str for c in theirs if c != self.columns["timestamp"]},
                            expected=f"{len(names)} fields per line ({', '.join(names)}: dataset.column_names), "
                                     "no header line")
        df = df.rename(columns={theirs: ours for ours, theirs in self.columns.items()})
        df["timestamp"] = self._seconds(df["timestamp"])
        return df

    def _seconds(self, values: pd.Series) -> pd.Series:
        """Timestamps as unix seconds by `timestamp_format` / `timestamp_unit` (unparseable: NaN, skipped later)."""
        if self.timestamp_format:
            dt = pd.to_datetime(values.astype(str), format=self.timestamp_format, errors="coerce", utc=True)
            out, how = (dt - pd.Timestamp(0, tz="UTC")).dt.total_seconds(), f"timestamp_format {self.timestamp_format!r}"
        elif self.timestamp_unit == "s":
            return values
        else:
            out, how = pd.to_numeric(values, errors="coerce") * self.UNITS[self.timestamp_unit], \
                f"timestamp_unit {self.timestamp_unit!r} (a number)"
        if len(values) and out.isna().all():
            raise DataError(f"dataset={self.name}: no timestamp in column {self.columns['timestamp']!r} reads as "
                            f"dataset.{how}; first values {values.head(3).tolist()}")
        return out

    def events(self, skipped: dict[str, int]) -> pd.DataFrame:
        parts = []
        for k, f in enumerate(self.files):
            path = self._path(f)
            df = self.read_file(path)
            if self.add_slice:
                df["slice"] = k
            parts.append(self.side_info(k, df, skipped))
        ev = pd.concat([prepare_events(df, str(self._path(f)), skipped) for f, df in zip(self.files, parts)],
                       ignore_index=True)
        return self.finish(ev, skipped).sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)

    def side_info(self, k: int, df: pd.DataFrame, skipped: dict[str, int]) -> pd.DataFrame:
        """Hook: add columns to file k's rows (before validation). Default: none."""
        return df

    def finish(self, ev: pd.DataFrame, skipped: dict[str, int]) -> pd.DataFrame:
        """Hook: last changes to all files' validated events. Default: none."""
        return ev


class ThirtyMusicDataset(EventsTableDataset):
    """30Music 200ks test slices: 5 TSVs `UserId, SessionId, ItemId, Time, ArtistId` (one period each).

    `tags: true` reads `sessions_30music_testing_<k>.json` (top-5 anonymous Last.fm tag ids per play):
    sessions whose list is as long as the session's rows are aligned by position (rows in file order),
    the others are skipped (counted); an item's `tag` = its most frequent non-zero tag id over all aligned
    plays (a string), for colouring maps only."""

    def __init__(self, name: str, data_dir: str, files: Sequence[str], columns: Mapping[str, str],
                 tags: bool = False, tag_files: Sequence[str] = (), **kw):
        kw.setdefault("add_slice", True)
        super().__init__(name, data_dir, files, columns, **kw)
        self.tags, self.tag_files = tags, list(tag_files)
        self._pairs: list[tuple[np.ndarray, np.ndarray]] = []
        if tags and len(self.tag_files) != len(self.files):
            raise DataError(f"dataset={name}: tags=true needs one tag file per events file "
                            f"({len(self.files)} files, {len(self.tag_files)} tag_files)")

    def check(self) -> None:
        super().check()
        for f in self.tag_files if self.tags else ():
            self._path(f)

    def side_info(self, k: int, df: pd.DataFrame, skipped: dict[str, int]) -> pd.DataFrame:
        if self.tags:
            if k == 0:
                self._pairs = []
            self._pairs.append(self._tag_pairs(df, self._path(self.tag_files[k]), skipped))
        return df

    def finish(self, ev: pd.DataFrame, skipped: dict[str, int]) -> pd.DataFrame:
        if self.tags and self._pairs:
            items, tags = (np.concatenate(x) for x in zip(*self._pairs))
            mode = _mode_per_item(items, pd.Series(tags))
            ev["tag"] = ev["item"].map(mode.astype(str)).astype(object)
        return ev

    @staticmethod
    def _tag_pairs(df: pd.DataFrame, path: Path, skipped: dict[str, int]) -> tuple[np.ndarray, np.ndarray]:
        """(item, non-zero tag id) for every tag of every play of the aligned sessions of one slice."""
        what = 'a JSON object of session id -> {"tags_idxs": [[tag id, ...] per play]}'
        try:
            js = json.loads(read_text(path, expected=what))
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: not {what} ({e})") from None
        if not isinstance(js, dict):
            raise DataError(f"{path}: not {what} (a JSON {type(js).__name__})")
        if df.empty:  # the events file's own check names it
            return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        sid = df["session"].to_numpy()
        order = np.argsort(sid, kind="stable")            # rows of a session, in file (play) order
        bounds = np.flatnonzero(np.r_[True, sid[order][1:] != sid[order][:-1], True])
        rows, tags, n_bad = [], [], 0
        for a, b in zip(bounds[:-1], bounds[1:]):
            rec = js.get(str(sid[order[a]]))
            t = rec.get("tags_idxs") if isinstance(rec, dict) else None
            if t is None or len(t) != b - a:
                n_bad += 1
                continue
            rows.append(order[a:b])
            tags.extend(t)
        skipped["data/skipped_tag_sessions_unaligned"] = skipped.get("data/skipped_tag_sessions_unaligned", 0) + n_bad
        if not rows:
            return np.array([], dtype=np.int64), np.array([], dtype=np.int64)
        t = np.asarray(tags, dtype=np.int64).reshape(len(tags), -1)
        item = np.repeat(df["item"].to_numpy()[np.concatenate(rows)], t.shape[1])
        flat = t.reshape(-1)
        return item[flat != 0], flat[flat != 0]


class MovieLensDataset(ListeningDataset):
    """MovieLens 100K: `u.data` (user item rating timestamp, TSV) + `u.item` (`|`, latin-1, 19 genre flags).

    Ratings are treated as plays (every rating an event); an item's `tag` is its first genre flag."""

    GENRES = ("unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
              "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
              "War", "Western")

    def __init__(self, name: str, data_dir: str, ratings_file: str, items_file: str, min_rating: int = 0, **kw):
        super().__init__(name, **kw)
        self.data_dir, self.ratings_file, self.items_file = Path(data_dir), ratings_file, items_file
        self.min_rating = min_rating

    def check(self) -> None:
        for rel in (self.ratings_file, self.items_file):
            require_file(self.data_dir, rel, self.name, self.source)

    def events(self, skipped: dict[str, int]) -> pd.DataFrame:
        path = require_file(self.data_dir, self.ratings_file, self.name, self.source)
        df = read_table(path, "\t", header=False, n_fields=4, dtype=str,
                        expected="4 tab-separated fields per line: user item rating timestamp")
        df.columns = ["user", "item", "rating", "timestamp"]
        for col in ("user", "item"):
            num = pd.to_numeric(df[col], errors="coerce")
            if num.isna().all():
                raise DataError(f"{path}: field {col!r} (column {['user', 'item'].index(col) + 1}) has no integer id")
            df[col] = num
        if self.min_rating:
            low = pd.to_numeric(df["rating"], errors="coerce").fillna(0) < self.min_rating
            skipped["data/skipped_low_ratings"] = int(low.sum())
            df = df[~low]
        df["tag"] = df["item"].map(self._genres())
        return prepare_events(df.drop(columns="rating"), str(path), skipped)

    def _genres(self) -> pd.Series:
        path = require_file(self.data_dir, self.items_file, self.name, self.source)
        items = read_table(path, "|", header=False, n_fields=5 + len(self.GENRES), encoding="latin-1", dtype=str,
                           expected=f"{5 + len(self.GENRES)} '|'-separated fields per line: id, title, dates, url, "
                                    f"{len(self.GENRES)} genre flags")
        flags = items.iloc[:, 5:].to_numpy() == "1"
        first = np.where(flags.any(axis=1), flags.argmax(axis=1), -1)
        names = np.array([*self.GENRES, None], dtype=object)[first]
        return pd.Series(names, index=pd.to_numeric(items[0], errors="coerce"))


class SyntheticListeningDataset(ListeningDataset):
    """Seeded logs with a planted session/device signal (no download).

    `n_songs` songs in `n_clusters` taste clusters (Zipf popularity inside a cluster, one artist per
    `songs_per_artist` songs). Each user has 2 devices, each with its own favourite cluster. A session
    picks a device, then (with `p_device_cluster`) that device's cluster, otherwise a random one; its
    songs come from the session's cluster with probability `p_in_cluster`, else from all songs by
    popularity; in a session on the device's own cluster, `p_personal` of the songs are the user's
    `n_personal` favourites of that cluster. Gaps inside a session are 1-8 min (< 10), between sessions hours; `p_short` of the
    sessions have 2-4 songs (dropped by min_session_len=5). tag = cluster name."""

    DEVICES = ("mobile", "desktop", "tablet", "speaker", "car")

    def __init__(self, name: str = "synthetic_listening", seed: int = 0, n_users: int = 300, n_songs: int = 1500,
                 n_clusters: int = 20, sessions_per_user: int = 10, session_len: Sequence[int] = (5, 14),
                 p_device_cluster: float = 0.9, p_in_cluster: float = 0.9, zipf: float = 0.8,
                 n_personal: int = 15, p_personal: float = 0.5,
                 songs_per_artist: int = 10, p_short: float = 0.05, days: float = 60.0,
                 cutoff=None, cutoff_fraction: float | None = 0.7, **kw):
        super().__init__(name, cutoff=cutoff, cutoff_fraction=None if cutoff is not None else cutoff_fraction, **kw)
        self.seed, self.n_users, self.n_songs, self.n_clusters = seed, n_users, n_songs, n_clusters
        self.sessions_per_user, self.session_len = sessions_per_user, tuple(session_len)
        self.p_device_cluster, self.p_in_cluster, self.zipf = p_device_cluster, p_in_cluster, zipf
        self.songs_per_artist, self.p_short, self.days = songs_per_artist, p_short, days
        self.n_personal, self.p_personal = n_personal, p_personal

    def events(self, skipped: dict[str, int]) -> pd.DataFrame:
        return prepare_events(self.generate(), f"{self.name} (generated, seed {self.seed})", skipped)

    def generate(self) -> pd.DataFrame:
        rng = np.random.default_rng(self.seed)
        C, n = self.n_clusters, self.n_songs
        cluster = np.arange(n) * C // n                              # song -> cluster (contiguous ids)
        members = [np.flatnonzero(cluster == c) for c in range(C)]
        w = [1.0 / np.arange(1, len(m) + 1) ** self.zipf for m in members]
        w = [x / x.sum() for x in w]
        global_p = np.zeros(n)
        for m, x in zip(members, w):
            global_p[m] = x / C
        t0 = 1_420_070_400  # 2015-01-01
        lo, hi = self.session_len
        cols = {"user": [], "timestamp": [], "item": [], "device": []}
        for u in range(self.n_users):
            devs = rng.choice(len(self.DEVICES), size=2, replace=False)
            fav = rng.choice(C, size=2, replace=False)              # a different cluster per device
            k = min(self.n_personal, min(len(members[c]) for c in fav))
            personal = [members[c][rng.choice(len(members[c]), size=k, replace=False, p=w[c])] for c in fav]
            n_s = max(2, rng.poisson(self.sessions_per_user))
            starts = np.sort(rng.uniform(0, self.days * 86400, size=n_s))
            t_free = -np.inf
            for s in range(n_s):
                d = rng.integers(2)
                c = fav[d] if rng.random() < self.p_device_cluster else rng.integers(C)
                L = rng.integers(2, 5) if rng.random() < self.p_short else rng.integers(lo, hi + 1)
                inside = rng.random(L) < self.p_in_cluster
                songs = np.where(inside, members[c][rng.choice(len(members[c]), size=L, p=w[c])],
                                 rng.choice(n, size=L, p=global_p))
                if c == fav[d] and k:                               # the user's own favourites on this device
                    mine = rng.random(L) < self.p_personal
                    songs[mine] = personal[d][rng.integers(k, size=int(mine.sum()))]
                start = max(starts[s], t_free + 3 * 3600)            # at least 3 h after the previous session
                t = start + np.concatenate([[0.0], np.cumsum(rng.uniform(60, 480, size=L - 1))])
                t_free = t[-1]
                cols["user"].append(np.full(L, u))
                cols["timestamp"].append(t0 + t.astype(np.int64))
                cols["item"].append(songs)
                cols["device"].append(np.full(L, self.DEVICES[devs[d]], dtype=object))
        ev = pd.DataFrame({k: np.concatenate(v) for k, v in cols.items()})
        ev["artist"] = ev["item"] // self.songs_per_artist
        ev["tag"] = np.array([f"cluster_{c}" for c in range(C)], dtype=object)[cluster[ev["item"].to_numpy()]]
        return ev
