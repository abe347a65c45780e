"""Progress bars (mediaml.progress): the long stages show one, fed by the stage's own steps; hidden under CI=true
and when stderr is not a terminal; MEDIAML_PROGRESS=1 shows them anyway (as here, where stderr is captured)."""
import re

import pytest

from test_listening_deepwalk import FAST, planted_split


@pytest.fixture
def forced(monkeypatch):
    monkeypatch.setenv("MEDIAML_PROGRESS", "1")


def _bars(err: str) -> dict[str, str]:
    """The last state of each bar: {description: 'n/total'}."""
    out = {}
    for frame in re.split(r"[\r\n]", err):
        m = re.match(r"\s*([^:|]+(?::[^:|]+)?): +\d+%\|.*?\| ?([0-9.]+/[0-9.]+)", frame)
        if m:
            out[m.group(1).strip()] = m.group(2)
    return out


def test_walks_and_every_skip_gram_epoch_show_progress(forced, capsys):
    from mediaml.tasks.listening.deepwalk import DeepWalk

    model = DeepWalk(graph="uss", **{**FAST, "progress": True, "epochs": 3}).fit(planted_split())
    bars = _bars(capsys.readouterr().err)
    n_walks = model.walks_shape_[0]  # walks_per_node x (users + sessions + songs)
    assert n_walks == 10 * (12 + 48 + 30) and bars["random walks"] == f"{n_walks}/{n_walks}"
    assert bars["skip-gram d=16 (3 epochs)"] == "300/300"  # gensim's own progress, to its end


def test_lda_passes_and_cv_folds_show_progress(forced, capsys, make_cfg, tmp_path):
    from mediaml.tasks.genre.task import GenreTask
    from mediaml.tasks.personas.data import SyntheticPersonasDataset
    from mediaml.tasks.personas.models import PersonaLDA
    from mediaml.tracking.tracker import Tracker

    chars = SyntheticPersonasDataset().load().chars
    PersonaLDA(n_personas=4, n_topics=None, min_freq=1, lda_max_iter=7).fit(chars)
    GenreTask(make_cfg(["logger=none", "task.cv_folds=4"])).run(Tracker(tmp_path))
    bars = _bars(capsys.readouterr().err)
    assert bars["LDA 4 personas"] == "7/7"  # one per EM pass
    assert any(k.startswith("cv ") and v == "4/4" for k, v in bars.items()), bars


def test_no_bars_under_ci_or_without_a_terminal(monkeypatch, capsys, make_cfg, tmp_path):
    from mediaml.progress import bar, enabled
    from mediaml.tasks.genre.task import GenreTask
    from mediaml.tracking.tracker import Tracker

    monkeypatch.delenv("MEDIAML_PROGRESS", raising=False)
    monkeypatch.setenv("CI", "true")
    assert not enabled() and bar(total=3).disable
    monkeypatch.delenv("CI")
    assert not enabled()  # pytest's captured stderr is no terminal
    GenreTask(make_cfg(["logger=none", "task.cv_folds=2"])).run(Tracker(tmp_path))
    assert "it/s" not in capsys.readouterr().err and "fold/s" not in capsys.readouterr().err
    assert make_cfg(["task=video"]).trainer.enable_progress_bar is False  # Lightning's bar follows the same switch
