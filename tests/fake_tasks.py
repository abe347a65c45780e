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
