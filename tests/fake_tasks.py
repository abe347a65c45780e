"""Tasks that misbehave on purpose, to test the run lifecycle (chosen with task._target_=fake_tasks...)."""
import os
import signal

from mediaml.tasks.base import Task


class FailingTask(Task):
    def run(self, tracker):
        tracker.log_metrics({"train/loss": 1.0})
        raise RuntimeError("forced failure for the test")


class InterruptedTask(Task):
    def run(self, tracker):
        raise KeyboardInterrupt  # what Ctrl-C raises in the main thread


class TerminatedTask(Task):
    def run(self, tracker):
        os.kill(os.getpid(), signal.SIGTERM)  # what `kill <pid>` sends
        raise AssertionError("SIGTERM did not interrupt the run")


class SilentTask(Task):
    def run(self, tracker):
        tracker.log_metrics({"train/loss": 1.0})
        return {"train/loss": 1.0}  # no objective


def slow_stage(stage: str, marker: str, seconds: float = 3.0):
    """A Lightning callback that, at each batch of `stage` (fit or test), touches `marker` and sleeps: the fault
    tests send their signal while a run is inside that stage (`+callbacks.slow._target_=fake_tasks.slow_stage`)."""
    import time
    from pathlib import Path

    import lightning.pytorch as pl

    class SlowStage(pl.Callback):
        def _slow(self, *args, **kwargs):
            Path(marker).touch()
            time.sleep(seconds)

    hook = {"fit": "on_train_batch_start", "test": "on_test_batch_start"}[stage]
    setattr(SlowStage, hook, SlowStage._slow)
    return SlowStage()


class ServerHangsTask(Task):
    """The tracking server stops answering while the job runs: the task freezes it (SIGSTOP to its process
    group, `task.server_pid`) and returns; the test thaws it afterwards."""

    def run(self, tracker):
        os.killpg(int(self.cfg.task.server_pid), signal.SIGSTOP)
        return {"cv/acc_mean": 0.5}


class OverWriteLimitTask(Task):
    """The store's file may not grow any more (`ulimit -f`, set mid-run: RLIMIT_FSIZE at the store's size),
    then the task logs a batch of metrics the store has no room for."""

    def run(self, tracker):
        import resource

        size = os.path.getsize(self.cfg.task.store_file)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
        tracker.log_metrics({f"fill/{i:05d}_{'x' * 60}": float(i) for i in range(3000)}, step=0)
        return {"cv/acc_mean": 0.5}


class ThreadsTask(Task):
    """Reports the thread pools of the job (threadpoolctl) and the thread variables it runs with."""

    def run(self, tracker):
        import sklearn.ensemble  # noqa: F401  (loads scikit-learn's OpenMP runtime)
        from threadpoolctl import threadpool_info

        from mediaml.threads import THREAD_VARS

        pools = threadpool_info()
        values = [int(os.environ[v]) for v in THREAD_VARS]
        m = {"threads/max_pool": max(p["num_threads"] for p in pools), "threads/n_pools": len(pools),
             "threads/env_min": min(values), "threads/env_max": max(values), "cv/acc_mean": 0.0}
        tracker.log_metrics(m)
        return m


class LogsMissingFileTask(Task):
    """With seed 0, logs a file that does not exist: in a sweep's tracking process (mediaml.tracking.agent) the
    call fails there, after the job went on; the run must still end FAILED, naming the file."""

    def run(self, tracker):
        tracker.log_metrics({"train/loss": 1.0}, step=0)
        if int(self.cfg.seed) == 0:
            tracker.log_artifact(tracker.output_dir / "never_written.txt")
        return {"cv/acc_mean": 0.5}


class KillsTrackingProcessTask(Task):
    """SIGKILLs the sweep's tracking process (an OOM kill of it) once its run is open, then returns."""

    def run(self, tracker):
        from mediaml.tracking import agent

        assert tracker.run_id  # waits for the run's opening there
        proc = agent.current().proc
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return {"cv/acc_mean": 0.5}


class BreaksTheStoreTask(Task):
    """With seed 0, once its run is open, leaves the sqlite store's lock path a folder, then returns: the store
    can no longer be opened, the next job's run cannot open."""

    def run(self, tracker):
        from pathlib import Path

        assert tracker.run_id  # waits for the run's opening in a sweep's tracking process
        if int(self.cfg.seed) == 0:
            lock = Path(os.environ["MLFLOW_TRACKING_URI"][len("sqlite:///"):] + ".lock")
            lock.unlink(missing_ok=True)
            lock.mkdir()
        return {"cv/acc_mean": 0.5}
