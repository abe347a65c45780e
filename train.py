"""Train / evaluate any mediaml task; returns the task's objective for sweepers.

    python train.py                                   # default job: genre on synthetic data
    python train.py task=genre dataset=spotify_cs98x model=random_forest
    python train.py -m hparams_search=genre_optuna dataset=spotify_cs98x
"""
import sys

# Compiled modules are cached in __pycache__ even where PYTHONDONTWRITEBYTECODE is set (some containers set it):
# without the cache every run recompiles mlflow, sqlalchemy and sklearn from source, +1.5 s on the default job
# (benchmarks/bench_run_overhead.py). Where the venv is read-only the write fails silently, as it always does.
sys.dont_write_bytecode = False

if __name__ == "__main__" and sys.argv[1:] in (["--help"], ["-h"]):
    # mediaml's own page, before Hydra is imported (a second of composing for a page that needs no config).
    from mediaml.help import help_text

    print(help_text())
    sys.exit(0)

if __name__ == "__main__":
    # A tracked multirun logs through a process of its own; started now, it imports MLflow while Hydra composes.
    from mediaml.tracking import agent

    agent.start_ahead(sys.argv)

import hydra
from omegaconf import DictConfig

import mediaml  # noqa: F401  (registers the ${mediaml.*} config resolvers)
from mediaml import cli
from mediaml.errors import ConfigError, DataError, DataNotFoundError


@hydra.main(version_base="1.3", config_path="conf", config_name="train")
def main(cfg: DictConfig) -> float:
    # Imported here, not at the top: `--help` and `--cfg job` need no numpy, pandas or MLflow (seconds).
    from mediaml.run import run

    try:
        return run(cfg)
    # A user's mistake (wrong model for the task, missing extra or data, a data file that does not match its
    # config, a store that cannot be written): the message, no traceback (the run, if open, ended FAILED).
    except (ConfigError, DataError, DataNotFoundError) as err:
        # HYDRA_FULL_ERROR=1 or --verbose: the traceback too. In a sweep the error is the trial's: it fails (its
        # run FAILED, the error logged by the sweeper) and the sweep goes on to the next trial.
        if cli.full_errors() or cli.in_multirun():
            raise
        print(f"error: {err}", file=sys.stderr)
        sys.exit(cli.USER_ERROR_EXIT)


if __name__ == "__main__":
    # Registered first, so it runs last at exit: the interpreter's final garbage collection then skips the
    # million objects the imports made (mlflow, sklearn, sqlalchemy), 2.5 s of every run's exit on 2 cores.
    import atexit
    import gc
    import os

    atexit.register(gc.freeze)
    if "--verbose" in sys.argv:  # tracebacks for the errors that otherwise print one line
        sys.argv.remove("--verbose")
        os.environ["HYDRA_FULL_ERROR"] = "1"
    cli.install()  # a mistyped key or option: one message with the nearest valid one, exit 2
    try:
        main()
    except KeyboardInterrupt as err:  # the run has ended KILLED; exit like a process killed by the signal
        from mediaml.tracking.run import RunInterrupted

        print(f"interrupted: {err or 'Ctrl-C'}", file=sys.stderr)
        # What the interpreter records for an exception it reports itself: at exit, a sweep's parent run reads
        # it to end KILLED (mediaml.tracking.sweep), as for an interrupt nobody caught.
        sys.last_type, sys.last_value = type(err), err
        sys.exit(143 if isinstance(err, RunInterrupted) else 130)
