"""DDP ranks of one task=video job (conf/trainer/ddp.yaml), under a single run, a Hydra multirun, torchrun or SLURM.

* One machine, ``trainer=ddp trainer.devices=N`` (a single run or any ``-m`` sweep): the job's own process is
  rank 0 and starts ranks 1..N-1 as soon as its trainer exists (before its data setup), each as

      python train.py <this job's overrides> hydra.mode=RUN hydra.run.dir=<this job's folder>
                      hydra.output_subdir=null hydra.job.name=train_ddp_process_<r>

  i.e. the job's config, never the sweep. (Lightning's own launcher re-runs ``sys.argv``: under ``-m`` every
  rank re-ran the whole sweep — a second parent run and sweep folder for a grid; for an Optuna sweep a second
  sweeper on the study, which ended the parent run FAILED and got the sweep SIGKILLed.) Rank r logs to
  ``<job folder>/train_ddp_process_<r>.log`` and writes nothing else there. When the job ends, rank 0 waits for
  its ranks, closes the process group and restores MASTER_ADDR / MASTER_PORT / NODE_RANK / LOCAL_RANK /
  WORLD_SIZE, so the sweep's next job starts its own ranks on a fresh port. A rank that dies does not kill the
  sweep (Lightning's observer SIGKILLs the launching process, here the sweep): rank 0's job fails at its next
  collective and the sweep goes on; a rank that dies before joining is replaced by a stand-in that joins and
  leaves at once (gloo), so rank 0 does not wait for the process group's timeout.
* torchrun, or SLURM's srun: they start every rank themselves (Lightning's TorchElasticEnvironment /
  SLURMEnvironment); nothing is launched here. Give every rank the same ``hydra.run.dir``
  (conf/trainer/ddp_multinode.yaml).

Only rank 0 opens the MLflow run (mediaml.ranks.distributed_rank) and talks to an Optuna trial
(mediaml.pruning); the objective a sweeper gets is rank 0's.
"""
from __future__ import annotations

import contextlib
import logging
import os
import shlex
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable, Iterator

from lightning.fabric.utilities.distributed import _set_num_threads_if_needed
from lightning.pytorch.strategies import DDPStrategy, StrategyRegistry
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

log = logging.getLogger(__name__)

# What a launcher sets in its own environment for the ranks; restored when the job ends.
DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
# The checkpoint rank 0 resumes (task.ckpt_path resolved once), handed to the ranks it starts.
RESUME_ENV = "MEDIAML_DDP_CKPT_PATH"
# Hydra overrides a rank does not repeat: it runs the job's folder in RUN mode, never a sweep.
_NOT_FOR_RANKS = ("hydra.mode", "hydra.run.", "hydra.sweep.", "hydra.sweeper", "hydra/sweeper", "hydra.launcher",
                  "hydra/launcher", "hydra.job.name", "hydra.output_subdir", "hydra.job.num", "hydra.job.id")
# Joins the process group as a rank that died before joining, then leaves: rank 0 fails at its next
# collective ("Connection closed by peer") instead of waiting for the process group's timeout.
_STAND_IN = ("import os, torch.distributed as d; d.init_process_group('gloo', rank=int(os.environ['RANK']), "
             "world_size=int(os.environ['WORLD_SIZE'])); os._exit(1)")


def _app_command(hc) -> list[str]:
    """The Hydra app's interpreter and script (or module), and the config it composed from: its primary config
    folder, --config-dir folders and config name, as Hydra recorded them (not sys.argv, which is a launcher's
    own in a submitit job)."""
    import __main__
    from hydra.utils import to_absolute_path

    script = to_absolute_path(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    spec = getattr(__main__, "__spec__", None)
    if Path(script).stem != hc.job.name:  # a launcher's worker runs this job (submitit): mediaml's app
        from mediaml.config import PROJECT_ROOT

        cmd = [sys.executable, str(PROJECT_ROOT / "train.py")]
    elif spec is not None and spec.origin and os.path.abspath(spec.origin) == script:
        cmd = [sys.executable, "-m", spec.name]  # `python -m pkg.app`: again as a module
    else:  # the script (also in a joblib worker, whose __main__ is loky's own module)
        cmd = [sys.executable, script]
    for source in hc.runtime.config_sources:
        if source.schema == "file" and source.provider == "main":
            cmd += ["--config-path", str(source.path)]
        elif source.provider == "command-line":
            cmd += ["--config-dir", f"{source.schema}://{source.path}" if source.schema != "file" else source.path]
    return cmd + ["--config-name", str(hc.job.config_name)]


def rank_command(local_rank: int) -> tuple[list[str], str]:
    """(command, cwd) that starts rank `local_rank` of the current Hydra job: the job's overrides in RUN mode,
    in the job's folder."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd

    hc = HydraConfig.get()
    cmd = _app_command(hc)
    cmd += list(hc.overrides.task)
    cmd += [o for o in hc.overrides.hydra if not o.lstrip("+~").startswith(_NOT_FOR_RANKS)]
    out_dir = str(hc.runtime.output_dir).replace('"', '\\"')
    cmd += ["hydra.mode=RUN", f'hydra.run.dir="{out_dir}"', "hydra.output_subdir=null",
            f"hydra.job.name=train_ddp_process_{local_rank}"]
    return cmd, get_original_cwd()


class JobRankLauncher(_SubprocessScriptLauncher):
    """Lightning's subprocess launcher, with the rank command of `rank_command` and a watcher that fails the
    job, not the process, when a rank dies (see the module docstring)."""

    def __init__(self, *args, backend: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.backend = backend
        self._done = threading.Event()

    def start(self) -> None:
        """Start the other ranks now, unless something else starts them (torchrun, srun) or they run already.
        (After the first start LOCAL_RANK is set, so Lightning's environment reports them started.)"""
        self.cluster_environment.validate_settings(num_devices=self.num_processes, num_nodes=self.num_nodes)
        if not self.cluster_environment.creates_processes_externally:
            self._call_children_scripts()
            threading.Thread(target=self._watch, daemon=True, name="mediaml-ddp-ranks").start()

    def launch(self, function: Callable, *args: Any, trainer=None, **kwargs: Any) -> Any:
        self.start()
        _set_num_threads_if_needed(num_processes=self.num_processes)
        return function(*args, **kwargs)

    def _call_children_scripts(self) -> None:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():  # outside Hydra: Lightning's own command (sys.argv)
            return super()._call_children_scripts()
        self._check_can_spawn_children()
        env = self.cluster_environment
        os.environ.update({"MASTER_ADDR": env.main_address, "MASTER_PORT": str(env.main_port),
                           "NODE_RANK": str(env.node_rank()), "LOCAL_RANK": str(env.local_rank()),
                           "WORLD_SIZE": str(self.num_processes * self.num_nodes)})
        for local_rank in range(1, self.num_processes):
            cmd, cwd = rank_command(local_rank)
            log.info("starting DDP rank %d: %s", local_rank, shlex.join(cmd))
            self.procs.append(subprocess.Popen(cmd, env=dict(os.environ, LOCAL_RANK=str(local_rank)), cwd=cwd))

    def _global_rank(self, local_rank: int) -> int:
        return self.cluster_environment.node_rank() * self.num_processes + local_rank

    def _watch(self) -> None:
        import torch.distributed as dist

        reported: set[int] = set()
        while not self._done.wait(1.0):
            for local_rank, proc in enumerate(self.procs, start=1):
                code = proc.poll()
                if code in (None, 0) or local_rank in reported:
                    continue
                reported.add(local_rank)
                if dist.is_initialized():
                    log.error("DDP rank %d (pid %d) exited with code %d: this job fails", local_rank, proc.pid, code)
                elif self.backend == "gloo":
                    log.error("DDP rank %d (pid %d) exited with code %d before joining: a stand-in joins for it, "
                              "this job fails", local_rank, proc.pid, code)
                    subprocess.Popen([sys.executable, "-c", _STAND_IN],
                                     env=dict(os.environ, RANK=str(self._global_rank(local_rank))))
                else:
                    log.error("DDP rank %d (pid %d) exited with code %d before joining: rank 0 waits for the "
                              "process group's timeout", local_rank, proc.pid, code)
            if all(p.poll() is not None for p in self.procs):
                return

    def finish(self, ok: bool, wait_s: float = 120.0) -> None:
        """The job ended: wait for the ranks it started (after a success), stop what is left."""
        self._done.set()
        for local_rank, proc in enumerate(self.procs, start=1):
            if ok and proc.poll() is None:
                try:
                    proc.wait(timeout=wait_s)
                except subprocess.TimeoutExpired:
                    log.warning("DDP rank %d (pid %d) still running %.0f s after the job: killed",
                                local_rank, proc.pid, wait_s)
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            elif ok and proc.returncode:
                log.warning("DDP rank %d (pid %d) exited with code %d", local_rank, proc.pid, proc.returncode)


class JobDDPStrategy(DDPStrategy):
    """DDPStrategy whose ranks start with JobRankLauncher (start_method popen; spawn/fork are Lightning's)."""

    def _configure_launcher(self) -> None:
        if self._start_method != "popen":
            return super()._configure_launcher()
        assert self.cluster_environment is not None
        self._launcher = JobRankLauncher(self.cluster_environment, self.num_processes, self.num_nodes,
                                         backend=self._get_process_group_backend())


def job_strategy(strategy: Any) -> Any:
    """trainer.strategy as given, except a registry name of Lightning's DDPStrategy with start_method popen
    (`ddp`, `ddp_find_unused_parameters_true`, ...): the same settings as a JobDDPStrategy."""
    if not isinstance(strategy, str) or strategy not in StrategyRegistry:
        return strategy
    entry = StrategyRegistry[strategy]
    params = dict(entry["init_params"])
    if entry["strategy"] is not DDPStrategy or params.get("start_method", "popen") != "popen":
        return strategy
    return JobDDPStrategy(**params)


class DDPJob:
    """The distributed side of one job (`ddp_job`): the ranks it started, if any."""

    def __init__(self) -> None:
        self.launcher: JobRankLauncher | None = None

    def start(self, trainer) -> None:
        """Start the trainer's other ranks now (JobRankLauncher), before fit would: they compose the config and
        load the data while this rank does."""
        launcher = getattr(trainer.strategy, "launcher", None)
        if isinstance(launcher, JobRankLauncher):
            self.launcher = launcher
            launcher.start()


@contextlib.contextmanager
def ddp_job() -> Iterator[DDPJob]:
    """Around a job's trainer: at the end, its ranks are waited for (killed after a failure; a pruned trial is
    no failure: every rank stops at the same epoch), the process group it opened is closed, and the launcher's
    environment variables are restored (see the module docstring)."""
    import torch.distributed as dist

    from mediaml.pruning import is_pruned

    saved = {k: os.environ.get(k) for k in (*DDP_ENV, RESUME_ENV)}
    had_group = dist.is_available() and dist.is_initialized()
    job = DDPJob()
    ok = False
    try:
        yield job
        ok = True
    except BaseException as e:
        ok = is_pruned(e)
        raise
    finally:
        if job.launcher is not None:
            job.launcher.finish(ok)
        if not had_group and dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def check_rank_config(cfg, output_dir: Path) -> None:
    """On a rank > 0: its job config must be the one rank 0 saved in the job folder (.hydra/config.yaml)."""
    from omegaconf import OmegaConf

    from mediaml.errors import ConfigError

    saved = Path(output_dir) / ".hydra" / "config.yaml"
    if not saved.is_file():
        return
    mine = OmegaConf.to_container(cfg, resolve=False)
    mine.pop("hydra", None)
    theirs = OmegaConf.to_container(OmegaConf.load(saved), resolve=False)
    if mine != theirs:
        from mediaml.config import flatten

        a, b = flatten(mine), flatten(theirs)
        diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        raise ConfigError(f"this DDP rank composed another config than rank 0 ({saved}): {diff[:10]}")


def own_log_file(output_dir: Path, rank: int) -> None:
    """On a rank > 0 that torchrun or srun started with rank 0's command: its records go to
    <job folder>/<name>_rank<r>.log instead of rank 0's <name>.log (ranks this module starts have their own
    hydra.job.name already)."""
    output_dir = Path(output_dir).resolve()
    for handler in logging.getLogger().handlers:
        if not isinstance(handler, logging.FileHandler):
            continue
        path = Path(handler.baseFilename)
        if path.parent != output_dir or path.stem.startswith("train_ddp_process_") or "_rank" in path.stem:
            continue
        handler.acquire()
        try:
            handler.close()
            handler.baseFilename = str(path.with_name(f"{path.stem}_rank{rank}{path.suffix}"))
            handler.stream = handler._open()
        finally:
            handler.release()
