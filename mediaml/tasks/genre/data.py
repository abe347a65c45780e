"""Labelled tables for classification, described entirely by the dataset config.

Another tabular data set with other columns and another label is a new YAML in conf/dataset/,
not new code: the config names the files, the id column, the label, the features and the columns
to drop. Cleaning follows seed 004: drop the named columns, drop rows without a label, optionally
map labels to broad classes, keep classes with at least `min_class_count` rows.

Bad input: a broken file (empty, header only, ragged, otherwise separated: `dataset.sep`) stops with an
error naming it (mediaml/tables.py). A feature value that is present but not a finite number (text,
`inf`, `1,996` unless `dataset.thousands=','`) is an error naming `<file>:<line>`, the data row, the id and
the column; a missing one (empty, NA, nan) skips its training row (`data/missing_feature_rows`) or is
filled with the training median in the test file (`data/test_rows_imputed`).
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from mediaml.tasks.genre.class_maps import map_labels
from mediaml.errors import DataError, require_file
from mediaml.tables import read_table, require_columns

log = logging.getLogger(__name__)


@dataclass
class LabelledTable:
    """Cleaned features and labels, plus the unlabelled test rows (if the dataset has a test file)."""

    X: pd.DataFrame
    y: pd.Series
    ids: pd.Series
    X_test: pd.DataFrame | None = None
    test_ids: pd.Series | None = None
    # `dataset.group_column`'s value per row (e.g. the song of a playlist entry): splits keep a group on one side.
    groups: pd.Series | None = None
    # What cleaning did, as `data/...` metrics: nothing is dropped without being counted.
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        return sorted(self.y.unique())


class TabularClassificationDataset:
    """A train CSV with labels and an optional test CSV without them, under `data_dir`."""

    def __init__(
        self,
        name: str,
        data_dir: str,
        train_file: str,
        id_column: str,
        label: str,
        features: Sequence[str] | None = None,
        drop_columns: Sequence[str] = (),
        test_file: str | None = None,
        min_class_count: int = 1,
        class_map: str | Mapping[str, str] | None = None,
        source: str = "",
        tasks: Sequence[str] | None = None,
        sep: str = ",",
        thousands: str | None = None,
        group_column: str | None = None,
    ):
        self.name = name
        self.data_dir = Path(data_dir)
        self.train_file = train_file
        self.test_file = test_file
        self.id_column = id_column
        self.label = label
        self.features = list(features) if features else None
        self.drop_columns = list(drop_columns or [])
        self.min_class_count = int(min_class_count)
        self.class_map = class_map
        self.source = source
        self.tasks = tasks
        self.sep = sep              # the files' field separator
        self.thousands = thousands  # e.g. ",": numbers written 1,996 are read as 1996 (default: an error)
        # Rows that share this column's value (the same song in two playlists, one artist's songs) stay on one
        # side of the hold-out split and of each CV fold; a row without a value is a group of its own.
        self.group_column = group_column

    # -- reading -------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise DataNotFoundError for the first missing file, before any work."""
        for rel in [self.train_file, self.test_file]:
            if rel:
                require_file(self.data_dir, rel, self.name, self.source)

    def read_frames(self) -> tuple[pd.DataFrame, pd.DataFrame | None, str, str | None]:
        """(train, test, train source name, test source name). Synthetic datasets override this."""
        train_path = require_file(self.data_dir, self.train_file, self.name, self.source)
        train = self._read_csv(train_path)
        test, test_name = None, None
        if self.test_file:
            test_path = require_file(self.data_dir, self.test_file, self.name, self.source)
            test, test_name = self._read_csv(test_path), str(test_path)
        return train, test, str(train_path), test_name

    def _read_csv(self, path: Path) -> pd.DataFrame:
        """Rows indexed by their line in the file, so a bad value's message names the line."""
        return read_table(path, self.sep, sep_key="dataset.sep", line_index=True, thousands=self.thousands,
                          expected=f"a header line and one row per {self.id_column}")

    # -- cleaning ------------------------------------------------------------------------------
    def load(self) -> LabelledTable:
        train, test, train_name, test_name = self.read_frames()
        features = self.features or [c for c in train.columns
                                     if c not in {self.id_column, self.label, self.group_column, *self.drop_columns}]
        require_columns(list(train.columns), [self.id_column, self.label, *features,
                                              *([self.group_column] if self.group_column else [])], train_name)
        counts = {"data/rows_read": len(train)}

        X = _numeric_features(train, features, train_name, self.id_column)
        y = train[self.label].astype("string").str.strip()
        unlabelled = y.isna() | (y == "")
        missing_x = X.isna().any(axis=1) & ~unlabelled
        counts["data/unlabelled_rows"] = int(unlabelled.sum())
        counts["data/missing_feature_rows"] = int(missing_x.sum())
        if missing_x.any():
            log.warning("%s: %d labelled rows with missing feature values skipped (%s)", train_name,
                        int(missing_x.sum()), _rows(train, missing_x))
        keep = ~unlabelled & ~missing_x
        X, y, ids = X[keep], y[keep].astype(str), train.loc[keep, self.id_column]
        groups = None
        if self.group_column:
            g = train.loc[keep, self.group_column].astype("string").str.strip()
            alone = g.isna() | (g == "")
            counts["data/rows_without_group"] = int(alone.sum())
            groups = g.where(~alone, "row:" + ids.astype(str))  # no value: a group of its own

        if self.class_map:
            y = pd.Series(map_labels(y, self.class_map), index=y.index, name=self.label)
        freq = y.value_counts()
        common = y.isin(freq[freq >= self.min_class_count].index)
        counts["data/rare_class_rows"] = int((~common).sum())
        X, y, ids = X[common], y[common], ids[common]
        if groups is not None:
            groups = groups[common]
            counts["data/n_groups"] = int(groups.nunique())
        counts["data/rows_kept"] = len(y)
        counts["data/n_classes"] = int(y.nunique())
        if len(y) == 0:
            raise DataError(
                f"{train_name}: no rows left after cleaning ({counts['data/rows_read']} read, "
                f"{counts['data/unlabelled_rows']} without {self.label!r}, "
                f"{counts['data/missing_feature_rows']} with missing features, "
                f"{counts['data/rare_class_rows']} in classes with fewer than min_class_count="
                f"{self.min_class_count} rows)")
        if y.nunique() < 2:
            raise DataError(f"{train_name}: only one class left after cleaning ({y.iloc[0]!r}); "
                            f"a classifier needs at least two (lower min_class_count?)")

        X_test = test_ids = None
        if test is not None:
            require_columns(list(test.columns), [self.id_column, *features], test_name)
            X_test = _numeric_features(test, features, test_name, self.id_column)
            test_ids = test[self.id_column].reset_index(drop=True)
            X_test = X_test.reset_index(drop=True)
            n_missing = int(X_test.isna().any(axis=1).sum())
            counts["data/test_rows"] = len(test)
            counts["data/test_rows_imputed"] = n_missing
            if n_missing:
                # Every test id needs a prediction: fill gaps with the training medians, and count them.
                log.warning("%s: %d rows with missing features filled with training medians", test_name, n_missing)
                X_test = X_test.fillna(X.median())
        from mediaml.quiet import short

        log.info("%s: %d rows, %d classes kept (%s)", self.name, len(y), y.nunique(), short(counts))
        return LabelledTable(X=X.reset_index(drop=True), y=y.reset_index(drop=True),
                             ids=ids.reset_index(drop=True), X_test=X_test, test_ids=test_ids, counts=counts,
                             groups=groups.reset_index(drop=True) if groups is not None else None)


def _rows(df: pd.DataFrame, mask: pd.Series, n: int = 10) -> str:
    """Where the first rows of `mask` are: file lines when `df` came from a file (see `_read_csv`), else data rows."""
    pos = np.flatnonzero(mask.to_numpy())[:n]
    if df.index.name == "line":
        return f"lines {df.index[pos].tolist()}"
    return f"data rows {(pos + 1).tolist()}"


def _where(df: pd.DataFrame, i: int, source: str, id_column: str) -> str:
    """'<file>:<line>: data row <i+1> (<id column>=...)' for the i-th row (no line for a generated table)."""
    line = f":{df.index[i]}" if df.index.name == "line" else ""
    return f"{source}{line}: data row {i + 1} ({id_column}={df[id_column].iloc[i]})"


THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?")


def _numeric_features(df: pd.DataFrame, features: Sequence[str], source: str, id_column: str) -> pd.DataFrame:
    """Features as float; a value that is present but not a finite number is an error naming its line, row,
    id and column. Missing values (empty, NA, nan) stay NaN: the caller skips or fills them, counted."""
    out = {}
    for col in features:
        raw = df[col]
        num = pd.to_numeric(raw, errors="coerce").astype(float)
        problems = [(raw.notna() & num.isna(), "a number", "such value(s) in this column"),
                    (np.isinf(num), "a finite number", "infinite value(s) in this column; fix them, or empty "
                                                       "them: an empty value is skipped and counted")]
        for mask, expected, note in problems:
            if mask.any():
                i = int(np.flatnonzero(mask.to_numpy())[0])
                value = raw.iloc[i]
                hint = ("; it looks like a number with ',' thousands separators: set dataset.thousands=','"
                        if THOUSANDS.fullmatch(str(value).strip()) else "")
                raise DataError(f"{_where(df, i, source, id_column)}, column {col!r}: expected {expected}, "
                                f"got {value if isinstance(value, str) else float(value)!r} "
                                f"({int(mask.sum())} {note}){hint}")
        out[col] = num
    return pd.DataFrame(out, index=df.index)
