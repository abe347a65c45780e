"""Seeded synthetic songs in the CS98X schema with planted genre structure.

Each planted genre has its own centre in the 11-d audio-feature space; songs scatter around it
with `noise` x (feature range / 4) standard deviation. A few unlabelled rows and a few genres with
fewer than `min_class_count` songs exercise the cleaning path exactly as the real file does.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from mediaml.tasks.genre.data import TabularClassificationDataset

# (low, high) of each CS98X feature, as in the real training file.
FEATURE_RANGES = {
    "year": (1950, 2019), "bpm": (62, 199), "nrgy": (7, 100), "dnce": (18, 96), "dB": (-24, -1),
    "live": (2, 93), "val": (6, 99), "dur": (98, 511), "acous": (0, 100), "spch": (2, 50), "pop": (0, 100),
}
GENRE_NAMES = ["adult standards", "album rock", "dance pop", "glam rock", "brill building pop", "europop",
               "dance rock", "boy band", "british invasion", "disco", "bubblegum dance", "art rock"]
RARE_NAMES = ["yodeling", "bebop", "afrobeat", "british comedy", "latin", "boogaloo"]


def generate_genre_tables(n_songs: int = 450, n_test_songs: int = 110, n_genres: int = 6, n_unlabelled: int = 12,
                          n_rare_genres: int = 3, noise: float = 0.35, seed: int = 0):
    """Return (train, test, test_labels): DataFrames in the CS98X column layout."""
    if not 2 <= n_genres <= len(GENRE_NAMES):
        raise ValueError(f"n_genres must be in [2, {len(GENRE_NAMES)}], got {n_genres}")
    rng = np.random.default_rng(seed)
    names = list(FEATURE_RANGES)
    lo = np.array([FEATURE_RANGES[f][0] for f in names], float)
    hi = np.array([FEATURE_RANGES[f][1] for f in names], float)
    width = hi - lo
    centres = lo + width * rng.uniform(0.15, 0.85, size=(n_genres, len(names)))
    # Imbalanced like CS98X: a few big genres and a tail.
    weights = rng.dirichlet(np.full(n_genres, 2.0))

    def songs(n: int):
        g = rng.choice(n_genres, size=n, p=weights)
        x = centres[g] + rng.normal(0.0, 1.0, size=(n, len(names))) * noise * width / 4
        return np.clip(np.rint(x), lo, hi), np.array(GENRE_NAMES)[g]

    X, labels = songs(n_songs)
    labels = labels.astype(object)
    # Rare genres (1-2 songs each) and unlabelled rows, placed at random positions.
    pos = rng.permutation(n_songs)
    k = 0
    for r in range(min(n_rare_genres, len(RARE_NAMES))):
        for _ in range(1 + r % 2):
            labels[pos[k]] = RARE_NAMES[r]
            k += 1
    labels[pos[k : k + n_unlabelled]] = None

    def frame(X, start_id):
        n = len(X)
        df = pd.DataFrame({"Id": np.arange(start_id, start_id + n),
                           "title": [f"Song {i}" for i in range(start_id, start_id + n)],
                           "artist": [f"Artist {int(a)}" for a in rng.integers(0, max(2, n // 3), n)]})
        for j, f in enumerate(names):
            df[f] = X[:, j].astype(int)
        return df

    train = frame(X, 1)
    train["top genre"] = labels
    X_test, test_labels = songs(n_test_songs)
    test = frame(X_test, n_songs + 1)
    return train, test, pd.Series(test_labels, name="top genre")


class SyntheticGenreDataset(TabularClassificationDataset):
    """The synthetic table, cleaned by exactly the same code as the real CSVs."""

    def __init__(self, n_songs: int = 450, n_test_songs: int = 110, n_genres: int = 6, n_unlabelled: int = 12,
                 n_rare_genres: int = 3, noise: float = 0.35, seed: int = 0, **kwargs):
        kwargs.setdefault("name", "synthetic_genre")
        kwargs.setdefault("data_dir", ".")
        kwargs.setdefault("train_file", "<generated>")
        kwargs.setdefault("id_column", "Id")
        kwargs.setdefault("label", "top genre")
        super().__init__(**kwargs)
        self.params = dict(n_songs=n_songs, n_test_songs=n_test_songs, n_genres=n_genres, n_unlabelled=n_unlabelled,
                           n_rare_genres=n_rare_genres, noise=noise, seed=seed)
        self.test_labels_: pd.Series | None = None

    def check(self) -> None:  # nothing to download
        return None

    def read_frames(self):
        train, test, self.test_labels_ = generate_genre_tables(**self.params)
        return train, test, f"<synthetic_genre seed={self.params['seed']}>", "<synthetic_genre test>"
