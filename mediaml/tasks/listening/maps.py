"""The 2-D maps of seed 001 §5 (Fig. 3-5), drawn from a model fitted with `dimensions=2`.

- `popularity_map`: every song, coloured by one of 5 popularity levels (equal-width bins of the
  log training play count, as the paper: "the logarithm of its playcount ... five levels"),
  popular songs drawn last so they are on top.
- `group_map`: songs coloured by tag (or artist when there are no tags), the `top` largest groups.
- `user_maps`: a grid of users, each with its sessions and songs (user red, songs grey, sessions
  coloured by device when the log has one, otherwise by hour of day: Fig. 4-6).
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def popularity_levels(plays: np.ndarray, n_levels: int = 5) -> np.ndarray:
    """Level 1 (least played) .. n_levels (most played): equal-width bins of log(plays)."""
    logp = np.log(np.maximum(np.asarray(plays, dtype=float), 1.0))
    lo, hi = logp.min(), logp.max()
    if hi <= lo:
        return np.ones(len(logp), dtype=int)
    return np.minimum((n_levels * (logp - lo) / (hi - lo)).astype(int) + 1, n_levels)


def popularity_map(model, split, n_levels: int = 5):
    xy = np.asarray(model.item_vectors_)[:, :2]
    level = popularity_levels(split.items["plays"].to_numpy(), n_levels)
    fig, ax = plt.subplots(figsize=(6, 5.5))
    cmap = plt.get_cmap("viridis", n_levels)
    for lv in range(1, n_levels + 1):  # popular last = on top
        sel = level == lv
        if sel.any():
            ax.scatter(xy[sel, 0], xy[sel, 1], s=3 + 2 * lv, color=cmap(lv - 1), alpha=0.7,
                       label=f"level {lv} ({sel.sum():,})", linewidths=0)
    ax.set_title("Songs by popularity (level 5 = most played)")
    ax.legend(markerscale=2, fontsize=7, loc="best")
    ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def _group_column(items: pd.DataFrame) -> str | None:
    for col in ("tag", "artist"):
        if col in items and items[col].notna().any():
            return col
    return None


def group_map(model, split, top: int = 8):
    """Songs of the `top` largest tag (else artist) groups in colour, the rest in light grey."""
    col = _group_column(split.items)
    if col is None:
        return None
    xy = np.asarray(model.item_vectors_)[:, :2]
    groups = split.items[col].astype("string").fillna("<none>")
    biggest = [g for g in groups.value_counts().index if g != "<none>"][:top]
    fig, ax = plt.subplots(figsize=(6, 5.5))
    rest = ~groups.isin(biggest).to_numpy()
    ax.scatter(xy[rest, 0], xy[rest, 1], s=2, color="0.85", linewidths=0, label="other")
    for i, g in enumerate(biggest):
        sel = (groups == g).to_numpy()
        ax.scatter(xy[sel, 0], xy[sel, 1], s=5, color=plt.get_cmap("tab10")(i % 10), linewidths=0,
                   label=f"{col} {g} ({sel.sum():,})")
    ax.set_title(f"Songs by {col} (the {len(biggest)} largest groups)")
    ax.legend(markerscale=2, fontsize=6, loc="best")
    ax.set_xticks([]), ax.set_yticks([])
    fig.tight_layout()
    return fig


def pick_users(split, n_users: int, seed: int) -> np.ndarray:
    """Users with the most training sessions, shuffled among the top 3n, so the plots have content."""
    per_user = split.train_sessions.groupby("user").size().sort_values(ascending=False, kind="stable")
    pool = per_user.index.to_numpy()[: 3 * n_users]
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(pool, size=min(n_users, len(pool)), replace=False))


def user_maps(model, split, n_users: int = 9, seed: int = 0):
    users = pick_users(split, n_users, seed)
    ncol = int(np.ceil(np.sqrt(len(users)))) or 1
    nrow = int(np.ceil(len(users) / ncol)) or 1
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 3.0 * nrow), squeeze=False)
    sessions = split.train_sessions
    by_device = split.has_device and "device" in sessions
    colour_of = _session_colours(sessions, by_device)
    for ax, u in zip(axes.flat, users):
        ev = split.train[split.train["user"] == u]
        songs = np.unique(ev["item"].to_numpy())
        ax.scatter(*np.asarray(model.item_vectors_)[songs, :2].T, s=4, color="0.6", linewidths=0, label="song")
        sids = np.unique(ev["session"].to_numpy())
        if getattr(model, "session_vectors_", None) is not None:
            sv = np.asarray(model.session_vectors_)[sids, :2]
            ax.scatter(sv[:, 0], sv[:, 1], s=18, c=[colour_of[s] for s in sids], linewidths=0, label="session")
        uv = np.asarray(model.user_vectors_)[u, :2]
        ax.scatter([uv[0]], [uv[1]], s=60, color="red", marker="*", label="user")
        ax.set_title(f"user {split.users['user_id'].iloc[u]}: {len(sids)} sessions, {len(songs)} songs", fontsize=7)
        ax.set_xticks([]), ax.set_yticks([])
    for ax in list(axes.flat)[len(users):]:
        ax.axis("off")
    how = "device" if by_device else "hour of day (UTC)"
    fig.suptitle(f"Sessions (coloured by {how}) and songs of {len(users)} users; red star = user", fontsize=9)
    fig.tight_layout()
    return fig


def _session_colours(sessions: pd.DataFrame, by_device: bool) -> dict:
    if by_device:
        devices = sorted(sessions["device"].astype(str).unique())
        cmap = plt.get_cmap("tab10")
        idx = {d: cmap(i % 10) for i, d in enumerate(devices)}
        return {s: idx[str(d)] for s, d in sessions["device"].items()}
    hours = pd.to_datetime(sessions["start"], unit="s", utc=True).dt.hour.to_numpy()
    cmap = plt.get_cmap("twilight")
    return {s: cmap(h / 24.0) for s, h in zip(sessions.index, hours)}
