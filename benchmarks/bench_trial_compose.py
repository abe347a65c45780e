"""Composing each Optuna trial's config: Hydra's basic launcher (every job from scratch) against our ReusingLoader
(the previous composed job's config with the sampled values applied by Hydra's own override code).

    python benchmarks/bench_trial_compose.py [--trials 50]

Both load the configs of the same trials of `hparams_search=genre_optuna` (fixed overrides, five sampled values,
the trial's folder and id, as hydra_plugins/mediaml_optuna_sweeper/_core.launch passes them), in this process,
alternating; each pair of configs is checked equal (to_yaml and to_container) before the times count. Prints the
milliseconds per trial and the ratio.
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50)
    args = ap.parse_args()
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    import mediaml  # noqa: F401  (the ${mediaml.*} resolvers)
    from hydra_plugins.mediaml_optuna_sweeper._compose import ReusingLoader

    fixed = ["hparams_search=genre_optuna", "dataset=spotify_cs98x"]
    hydra_loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(ROOT / "conf")))
    master = hydra_loader.load_configuration("train", overrides=fixed, run_mode=RunMode.MULTIRUN)
    ours = ReusingLoader(hydra_loader)
    rng = random.Random(0)
    times: dict[str, list[float]] = {"hydra": [], "ours": []}
    for i in range(args.trials):
        job = fixed + [f"model.n_estimators={rng.randint(50, 300)}", f"model.min_samples_split={rng.randint(2, 10)}",
                       f"++model.max_depth={rng.choice(['8', '16', '32', 'null'])}",
                       f"++model.max_features={rng.choice(['sqrt', 'log2', '0.5'])}",
                       f"++model.class_weight={rng.choice(['null', 'balanced'])}", f"hydra.sweep.subdir={i}",
                       f"++hydra.job.env_set.MEDIAML_OPTUNA_TRIAL_ID={i + 1}",
                       f"++hydra.job.env_set.MEDIAML_OPTUNA_TRIAL_NUMBER={i}"]
        configs = {}
        for side in (["hydra", "ours"] if i % 2 == 0 else ["ours", "hydra"]):
            loader = hydra_loader if side == "hydra" else ours
            t = time.perf_counter()
            configs[side] = loader.load_sweep_config(master, job)
            times[side].append(time.perf_counter() - t)
        a, b = configs["hydra"], configs["ours"]
        if OmegaConf.to_yaml(a) != OmegaConf.to_yaml(b) or OmegaConf.to_container(a) != OmegaConf.to_container(b):
            sys.exit(f"trial {i}: the configs differ: the comparison does not hold")
    hydra_ms, ours_ms = (1000 * statistics.median(times[k][1:]) for k in ("hydra", "ours"))  # the 1st: both compose
    print(f"{args.trials} genre_optuna trials, median per trial: Hydra composes {hydra_ms:.1f} ms, ours "
          f"{ours_ms:.1f} ms ({ours.reused} reused), {hydra_ms / ours_ms:.1f}x; every config equal")


if __name__ == "__main__":
    main()
