"""Figures and reports shared by the tasks: the confusion matrix (table + annotated figure) and the
per-class classification report. `Tracker.log_confusion_matrix` / `log_classification_report` log them;
a task's own figures live in its package (e.g. mediaml.tasks.catalog.charts, mediaml.tasks.listening.maps)."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd


def _labels(y_true: Sequence, y_pred: Sequence, labels: Sequence | None) -> list:
    return list(labels) if labels is not None else sorted(set(y_true) | set(y_pred), key=str)


def confusion_table(y_true: Sequence, y_pred: Sequence, labels: Sequence | None = None) -> pd.DataFrame:
    """Counts, rows: true label (index named "true"), columns: predicted label, in `labels` order."""
    from sklearn.metrics import confusion_matrix

    labels = _labels(y_true, y_pred, labels)
    cm = confusion_matrix(y_true, y_pred, labels=labels)
    return pd.DataFrame(cm, index=pd.Index([str(x) for x in labels], name="true"), columns=[str(x) for x in labels])


def classification_report_table(y_true: Sequence, y_pred: Sequence,
                                labels: Sequence | None = None) -> tuple[pd.DataFrame, str]:
    """Per-class precision, recall, F1 and support (a table indexed by class) and sklearn's text report."""
    from sklearn.metrics import classification_report

    labels = _labels(y_true, y_pred, labels)
    names = [str(x) for x in labels]
    report = classification_report(y_true, y_pred, labels=labels, target_names=names, output_dict=True,
                                   zero_division=0)
    text = classification_report(y_true, y_pred, labels=labels, target_names=names, zero_division=0)
    return pd.DataFrame(report).T.rename_axis("class"), text


def plot_confusion_matrix(cm: np.ndarray, labels: list[str], normalize: bool = False, title: str = ""):
    """An annotated confusion-matrix figure; cells are annotated when there are at most 30 classes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = cm.astype(float)
    if normalize:
        values = values / np.clip(values.sum(axis=1, keepdims=True), 1, None)
    n = len(labels)
    size = max(4.0, min(0.45 * n + 2, 24))
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(values, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=labels, rotation=90, fontsize=8)
    ax.set_yticks(range(n), labels=labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if n <= 30:
        top = values.max() if values.size else 0
        for i in range(n):
            for j in range(n):
                if cm[i, j]:
                    txt = f"{values[i, j]:.2f}" if normalize else str(cm[i, j])
                    ax.text(j, i, txt, ha="center", va="center", fontsize=7,
                            color="white" if values[i, j] > top / 2 else "black")
    return fig
