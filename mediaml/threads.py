"""One setting for every thread pool: `n_threads` (config key, env MEDIAML_N_THREADS).

OpenMP (scikit-learn's HistGradientBoosting, torch), OpenBLAS / MKL (numpy, scipy), torch's intra-op
pool and numba each size their pool to the machine by default, and a process that uses two of them, or
two sweep workers on one machine, asks for several times the cores there are. On this 2-core machine
that made one HistGB fit 40x slower (2,165 s against 51 s with OMP_NUM_THREADS=1).

`cap_threads(n)` sets the variables (read by libraries not loaded yet and by child processes: joblib
workers, `train.py` subprocesses) and, through threadpoolctl, the pools already loaded; torch and numba
get their own calls. `train.py` jobs call it from `mediaml.run.run`, the test suite from its conftest.
"""
from __future__ import annotations

import math
import os
import sys
from pathlib import Path

ENV = "MEDIAML_N_THREADS"
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS")


def available_cores() -> int:
    """Cores this process may use: its CPU affinity, bounded by a cgroup CPU quota (containers, SLURM)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def default_threads(parallel_jobs: int = 1) -> int:
    """MEDIAML_N_THREADS if set, else the available cores shared among `parallel_jobs` jobs on this machine."""
    env = os.environ.get(ENV, "").strip()
    if env:
        return resolve(env)
    return max(1, available_cores() // max(1, int(parallel_jobs)))


def resolve(value) -> int:
    """A config value of n_threads (an int, or null / 'auto' for the default) as a positive int."""
    if value is None or str(value).strip().lower() in ("", "auto", "none", "null"):
        return default_threads(parallel_jobs_of_this_sweep())
    n = int(value)
    if n < 1:
        raise ValueError(f"n_threads={value}: must be >= 1 (or null for the machine's default)")
    return n


def parallel_jobs_of_this_sweep() -> int:
    """How many jobs of the current Hydra multirun run at once on this machine (the joblib launcher's
    n_jobs; -1 = one per core); 1 for a single run or a serial launcher."""
    try:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return 1
        hc = HydraConfig.get()
        if "MULTIRUN" not in str(hc.mode):
            return 1
        n_jobs = hc.launcher.get("n_jobs")
    except Exception:  # not in a Hydra job, or a launcher without n_jobs
        return 1
    if n_jobs is None:
        return 1
    n_jobs = int(n_jobs)
    return available_cores() if n_jobs < 0 else max(1, n_jobs)


def set_env(n: int) -> None:
    """The variables libraries read when they load (here and in the processes this one starts). MEDIAML_N_THREADS
    itself stays the user's: a sweep's joblib workers each work out their own share of the cores."""
    for var in THREAD_VARS:
        os.environ[var] = str(n)


def cap_threads(n: int) -> int:
    """Limit every thread pool of this process (and of the processes it starts) to n threads."""
    n = int(n)
    set_env(n)
    if "numpy" in sys.modules or "sklearn" in sys.modules or "scipy" in sys.modules:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)  # OpenMP, OpenBLAS and MKL pools already loaded
    if "torch" in sys.modules:
        import torch

        torch.set_num_threads(n)
    numba = sys.modules.get("numba")
    if numba is not None:
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    return n
