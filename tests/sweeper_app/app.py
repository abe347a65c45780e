"""A tiny Hydra app for fast sweeper tests: minimise (x-2)^2 + (y-1)^2 in well under a second.

    python tests/sweeper_app/app.py -m out=/tmp/o [hydra.sweeper.n_trials=5] [fail_above=0] [sleep=3]
"""
import time

import hydra
from omegaconf import DictConfig


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> float:
    time.sleep(cfg.sleep)
    if cfg.fail_above is not None and cfg.x > cfg.fail_above:
        raise ValueError(f"x={cfg.x} > fail_above={cfg.fail_above}")
    return (cfg.x - 2) ** 2 + (cfg.y - 1) ** 2


if __name__ == "__main__":
    main()
