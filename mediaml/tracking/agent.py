"""A sweep's tracking process: the MLflow calls of a sweep whose jobs run in this process, made by a second one.

    python train.py -m hparams_search=genre_optuna dataset=spotify_cs98x      # logger.agent=auto: on here

Why: in a small sweep the framework's fixed cost is mostly MLflow's own: importing it and opening its store
(~1.9 s, the import of its SQLAlchemy store and alembic), the parent run's election, and at the end the sweep's
figures and the best trial's figures and model (~2 s). Hydra's basic launcher runs the jobs one after another in
the sweep's process, which keeps one core busy with the fits; this process takes the tracking to the other core.
`train.py` starts it with the command line (`start_ahead`; else the sweep's first callback does,
mediaml.tracking.sweep.SweepParentRun): it imports MLflow and opens the store while Hydra composes and the task
imports its libraries, logs what the jobs send it while they fit, does the sweep end's imports and draws the
best-so-far trial's figures in the background (`do_ahead`), and at the end draws Optuna's figures in a forked
copy of itself while it logs the best model (mediaml.tracking.sweep.draw_figures). 2.4 s of a 10-trial genre
sweep (benchmarks/bench_sweep_overhead.py, which also times `logger.agent=false`).

How: the jobs' code is the same with or without it. `call(uri, fn, *args)` and `send(uri, fn, *args)` run `fn`
(a module-level function: pickled by name) here when no agent runs for this process, and in the agent when one
does: `call` waits for the result (a run's end), `send` does not (params, metrics, tags, artifacts: they are done
in order, before any later `call`), `call_later` neither, but its result has a stand-in (`Later`) that the calls
after it may pass on and that is waited for where it is read (a run opens while its job starts: the first run
would otherwise wait ~1 s for MLflow's import and the parent run). An error of a `send` is raised by the next
`call`, so a run whose params could not be written still ends FAILED, naming the store; that of a `call_later`
where its Later is read. The agent ignores SIGINT and
SIGTERM: the sweep's process decides what Ctrl-C or a scheduler's SIGTERM mean (runs ended KILLED) and tells it;
it ends when the sweep's process closes it, or when that process dies (its socket closes): what was sent is
logged first. Its log records are re-emitted in the sweep's process (Hydra's console and log file).

`logger.agent`: auto (on for a tracked multirun on Hydra's basic launcher) | true | false. Parallel launchers
(joblib, submitit) run jobs in processes of their own: each tracks itself, as single runs do.
"""
from __future__ import annotations

import logging
import os
import pickle
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from multiprocessing.connection import Connection

log = logging.getLogger(__name__)

BASIC_LAUNCHER = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"
_agent: "Agent | None" = None


class AgentError(RuntimeError):
    """The tracking process could not be reached or ended before it was closed."""


def current() -> "Agent | None":
    return _agent


def call(uri: str | None, fn, *args, **kwargs):
    """`fn(*args, **kwargs)`, in this sweep's tracking process if one runs, else here; its result. If a call
    sent earlier failed, `fn` is not run: that error is raised (a run is not opened after its store failed)."""
    if _agent is None:
        return fn(*args, **kwargs)
    return _agent.call(uri, fn, args, kwargs, after_errors=False)


def call_after_errors(uri: str | None, fn, *args, **kwargs):
    """Like `call`, but `fn` runs even after a sent call failed (ending a run: it must end, FAILED); the earlier
    error is raised after it, unless `fn` raises its own."""
    if _agent is None:
        return fn(*args, **kwargs)
    return _agent.call(uri, fn, args, kwargs, after_errors=True)


class Later:
    """The result of a call sent to the tracking process without waiting (`call_later`), or one item of it
    (`later[0]`). Passed in the args of the calls that follow, it is replaced there by the value; `resolve` waits
    for it here."""

    __slots__ = ("n", "index")

    def __init__(self, n: int, index: int | None = None) -> None:
        self.n, self.index = n, index

    def __getitem__(self, index: int) -> "Later":
        return Later(self.n, index)

    def __repr__(self) -> str:
        return f"<result of tracking call {self.n}{'' if self.index is None else f'[{self.index}]'}>"


def call_later(uri: str | None, fn, *args, **kwargs):
    """`fn(*args, **kwargs)`'s result when no tracking process runs (run here, now); with one, a `Later` that stands
    for it, and this process goes on at once (a run opens while its job starts work). The calls that follow may
    pass it (or an item of it) as an argument; they run after it. If it fails, its error is raised where it is
    resolved; the calls sent with it as an argument are not run."""
    if _agent is None:
        return fn(*args, **kwargs)
    return _agent.call_later(uri, fn, args, kwargs)


def resolve(value):
    """`value`, or for a `Later` its value, waited for; the call's error is raised if it failed."""
    if not isinstance(value, Later):
        return value
    if _agent is None:
        raise AgentError(f"{value!r}: the tracking process that was to answer it has ended")
    return _agent.result(value)


def failed(value) -> bool:
    """Whether `value` is a `Later` whose call has already failed (not waited for): its error is then raised by
    `resolve`."""
    return isinstance(value, Later) and _agent is not None and _agent.failed(value)


def send(uri: str | None, fn, *args, **kwargs) -> None:
    """Like `call`, without waiting when the agent runs: an error is raised by the next `call`."""
    if _agent is None:
        fn(*args, **kwargs)
    else:
        _agent.send(uri, fn, args, kwargs)


def do_ahead(uri: str | None, fn, *args) -> None:
    """Have the tracking process run `fn(*args)` in the background while the next job fits (from its
    `job_started`): work done ahead for the sweep's end, which does it itself if it was not. Nothing without a
    tracking process."""
    if _agent is not None:
        _agent.send(uri, _queue_ahead, (fn, args))


def job_started(uri: str | None) -> None:
    """A job's run is open and its work starts: the work queued ahead may run now, without slowing the calls that
    open and end the runs (their sweep's process waits for those)."""
    if _agent is not None:
        _agent.send(uri, _release_ahead)


def wanted(config) -> bool:
    """`logger.agent` for this multirun: auto = tracked and on Hydra's basic launcher (the jobs run here)."""
    value = check_setting(config.logger.get("agent", "auto"))
    basic = str(config.hydra.launcher.get("_target_", "")) == BASIC_LAUNCHER
    if value == "auto":
        return bool(config.logger.get("enabled", False)) and basic
    if value and not basic:
        log.warning("logger.agent=true: the jobs of this launcher run in processes of their own, each tracks "
                    "itself (no tracking process)")
    return bool(value) and basic


def check_setting(value):
    """`logger.agent` as auto, True or False; a ConfigError otherwise (each job checks it before its run opens)."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    if value not in (True, False):
        from mediaml.errors import ConfigError

        raise ConfigError(f"logger.agent={value!r}: expected auto, true or false")
    return bool(value)


def start() -> "Agent":
    """This process's agent: the one started ahead (`start_ahead`) or a new one."""
    global _agent, _ahead
    if _agent is None:
        _agent, _ahead = _ahead or Agent(), None
    return _agent


_ahead: "Agent | None" = None  # started with the command line, not yet taken by a sweep


def start_ahead(argv: list[str]) -> None:
    """Start the agent as `train.py` starts, when its command line asks for a multirun that will want one (-m or
    an hparams_search, tracked, no other launcher named): it imports MLflow and its store while Hydra composes
    (~1 s more of them hidden than from the sweep's first callback). A sweep that turns out not to want it drops
    it (`drop_ahead`)."""
    global _ahead
    args = [a.lstrip("+") for a in argv[1:]]
    # hparams_search/* files set hydra.mode=MULTIRUN themselves (conf/hparams_search/base/optuna.yaml)
    multirun = {"-m", "--multirun"} & set(args) or any(a.startswith(("hparams_search=", "hydra.mode=MULTIRUN"))
                                                       for a in args)
    if not multirun or _ahead is not None or _agent is not None:
        return
    from mediaml.ranks import distributed_rank

    if distributed_rank() != 0:  # a distributed rank other than 0 tracks nothing
        return
    if any(a in ("logger=none", "logger.enabled=false", "logger.agent=false") or a.startswith("hydra/launcher=")
           for a in args):
        return
    try:
        _ahead = Agent()
    except OSError as e:  # no second process here: the sweep starts it (or logs itself)
        log.debug("tracking process not started ahead: %s", e)


def drop_ahead() -> None:
    """The multirun does not use a tracking process: the one started ahead has nothing to finish, it is killed."""
    global _ahead
    agent, _ahead = _ahead, None
    if agent is not None:
        agent.conn.close()
        agent.proc.kill()
        agent.proc.wait()


def stop() -> None:
    """Let the agent finish what it was sent, then end it (at a sweep's end, or at exit)."""
    global _agent
    agent, _agent = _agent, None
    if agent is not None:
        agent.close()


class Agent:
    """The sweep's side of the tracking process: a socket to it, calls numbered so that a reply left unread by
    an interrupted call is never taken for the next one's."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        # The agent imports what the sweep's process can (its jobs' figure functions, a test's fake tasks).
        env["PYTHONPATH"] = os.pathsep.join(p for p in [*sys.path, env.get("PYTHONPATH", "")] if p)
        from mediaml.threads import THREAD_VARS

        env.update({v: "1" for v in THREAD_VARS})  # it logs; the cores are the fits'
        self.proc = subprocess.Popen([sys.executable, "-m", "mediaml.tracking.agent", str(theirs.fileno())],
                                     pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        theirs.close()
        self.conn = Connection(ours.detach())
        self._n = 0
        self._awaited: set[int] = set()  # `call_later` calls not answered yet
        self._answers: dict[int, tuple] = {}  # theirs, arrived: n -> (result, error)
        log.debug("tracking process %d started", self.proc.pid)

    def send(self, uri, fn, args: tuple = (), kwargs: dict | None = None) -> None:
        self._put((0, uri, fn, tuple(args), kwargs or {}, True, False))

    def call(self, uri, fn, args: tuple = (), kwargs: dict | None = None, after_errors: bool = False):
        self._n += 1
        n = self._n
        self._put((n, uri, fn, tuple(args), kwargs or {}, after_errors, False))
        t0 = time.perf_counter()
        while True:
            reply = self._recv()
            if reply[0] == n:
                break
        log.debug("waited %.3f s for the tracking process: %s", time.perf_counter() - t0, fn.__name__)
        return _outcome(*reply[1:4])

    def call_later(self, uri, fn, args: tuple = (), kwargs: dict | None = None) -> Later:
        self._n += 1
        self._put((self._n, uri, fn, tuple(args), kwargs or {}, False, True))
        self._awaited.add(self._n)
        return Later(self._n)

    def result(self, later: Later):
        t0 = time.perf_counter()
        while later.n in self._awaited:
            self._recv()
        if later.n not in self._answers:
            raise AgentError(f"{later!r}: no such call was sent to the tracking process")
        log.debug("waited %.3f s for the tracking process: %r", time.perf_counter() - t0, later)
        result, error = self._answers[later.n]
        if error is not None:
            raise error
        return result if later.index is None else result[later.index]

    def failed(self, later: Later) -> bool:
        try:
            while later.n in self._awaited and self.conn.poll(0):  # only the replies already here
                self._recv()
        except AgentError:
            return False  # the next waited-for call names it
        return self._answers.get(later.n, (None, None))[1] is not None

    def _recv(self) -> tuple:
        """The next reply: its log records re-emitted here, kept if it answers a `call_later`."""
        try:
            reply = self.conn.recv()
        except (EOFError, OSError) as e:
            raise self._gone(e) from None
        got, result, error, deferred, records = reply
        _emit(records)
        if got in self._awaited:
            self._awaited.discard(got)
            self._answers[got] = (result, _first_error(error, deferred))
        return reply

    def close(self, timeout: float = 300) -> None:
        """Everything sent is done, the agent has exited; its last errors are logged."""
        try:
            self.conn.send(None)
            while True:
                got, result, error, deferred, records = self.conn.recv()
                _emit(records)
                if got is None:
                    for e in deferred:
                        log.error("tracking: %s", _one_line(e))
                    break
        except (EOFError, OSError):
            pass
        finally:
            self.conn.close()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.error("tracking process %d did not end within %.0f s: killed", self.proc.pid, timeout)
            self.proc.kill()
            self.proc.wait()

    def _put(self, msg) -> None:
        try:
            self.conn.send(msg)
        except (OSError, ValueError) as e:
            raise self._gone(e) from None

    def _gone(self, e: BaseException) -> AgentError:
        code = self.proc.poll()
        state = f"exited with code {code}" if code is not None else f"cannot be reached ({e})"
        return AgentError(f"mediaml's tracking process (pid {self.proc.pid}) {state}: this sweep's runs cannot be "
                          "logged; set logger.agent=false to log from the sweep's own process")


def _outcome(result, error, deferred: list[BaseException]):
    """The call's result, or the error to raise: its own first, else the first of the sent calls that failed
    since the last call (the others are logged)."""
    error = _first_error(error, deferred)
    if error is not None:
        raise error
    return result


def _first_error(error, deferred: list[BaseException]) -> BaseException | None:
    errors = list(deferred)
    if error is None and errors:
        error = errors.pop(0)
    for e in errors:
        log.error("tracking: %s", _one_line(e))
    return error


def _emit(records) -> None:
    for name, level, message in records:
        logging.getLogger(name).log(level, "%s", message)


def _one_line(e: BaseException) -> str:
    return "".join(traceback.format_exception_only(type(e), e)).strip()


# -- the agent's side ---------------------------------------------------------------------------------------------
class _Records(logging.Handler):
    """Keeps this process's log records (INFO and up) for the next reply."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.kept: list[tuple[str, int, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.kept.append((record.name, record.levelno, record.getMessage()))
        except Exception:  # noqa: BLE001 - a record that cannot be formatted is not worth the run
            pass

    def take(self) -> list[tuple[str, int, str]]:
        kept, self.kept = self.kept, []
        return kept


# What every sweep's tracking needs first, imported as soon as the agent starts.
START_IMPORTS = ("mlflow", "mlflow.tracking", "mlflow.store.tracking.sqlalchemy_store", "mediaml.tracking.run",
                 "mediaml.tracking.sweep")
# Imported in the background while the jobs fit: what a sweep's end needs (optuna.importance imports
# scikit-learn for the param-importances figure: 1.1 s at a sweep's end otherwise).
AHEAD_IMPORTS = ("matplotlib.pyplot", "optuna.visualization.matplotlib", "optuna.importance", "mediaml.plotting",
                 "mlflow.sklearn", "mlflow.models")
# Work done ahead runs on a thread of its own, so that the calls of the jobs do not queue behind it (an import
# of scikit-learn takes a second; a job's run opens and ends within a fraction of one), and only once a job has
# started its work: held until then, so that it does not compete (for the GIL) with the calls that end one run
# and open the next. (fn, args), in order.
_held: list[tuple] = []
_ahead_queue: "queue.Queue[tuple]" = queue.Queue()
_ahead_thread: threading.Thread | None = None


def _queue_ahead(fn, args) -> None:
    _held.append((fn, tuple(args)))


def _release_ahead() -> None:
    global _ahead_thread
    for item in _held:
        _ahead_queue.put(item)
    _held.clear()
    if _ahead_thread is None:
        _ahead_thread = threading.Thread(target=_work_ahead, name="mediaml-ahead", daemon=True)
        _ahead_thread.start()


def wait_ahead() -> None:
    """In the agent: return when the work released ahead is done (the sweep's end then reads and draws alone)."""
    if _ahead_thread is not None:
        _ahead_queue.join()


def _work_ahead() -> None:
    while True:
        fn, args = _ahead_queue.get()
        try:
            fn(*args)
        except Exception as e:  # noqa: BLE001 - only a head start: the sweep's end does it again and says why
            log.debug("work ahead %s%r failed: %s", getattr(fn, "__name__", fn), args, e)
        finally:
            _ahead_queue.task_done()


def _import(name: str) -> None:
    if name.startswith("matplotlib"):
        import matplotlib

        matplotlib.use("Agg")
    __import__(name)


def _portable(e: BaseException) -> BaseException:
    """`e` if it survives pickling (most do: MLflow's, ours), else an AgentError with its type and message."""
    try:
        e.add_note(f"(in mediaml's tracking process)\n{''.join(traceback.format_exception(e))}")
        pickle.loads(pickle.dumps(e))
        return e
    except Exception:  # noqa: BLE001
        return AgentError(f"{type(e).__name__}: {e}")


def serve(conn: Connection) -> None:
    """Run what the sweep's process sends, in order, until it closes the connection."""
    from mediaml.tracking.store import store_errors_named

    records = _Records()
    root = logging.getLogger()
    root.addHandler(records)
    root.setLevel(logging.INFO)
    for name in START_IMPORTS:
        try:
            _import(name)
        except Exception as e:  # noqa: BLE001 - only a head start: the calls that need it import it and say why
            log.debug("import of %s failed: %s", name, e)
    # The ahead thread's imports hold the GIL for long stretches; each store query of a job's call releases it and
    # waits to get it back: at the default 5 ms a call that makes dozens of queries waits ~0.2 s, at 0.5 ms little.
    sys.setswitchinterval(0.0005)
    for name in AHEAD_IMPORTS:
        _queue_ahead(_import, (name,))
    deferred: list[BaseException] = []
    answers: dict[int, object] = {}  # the results of the calls that Laters stand for
    while True:
        try:
            msg = conn.recv()
        except EOFError:  # the sweep's process is gone: what it sent has been done
            return
        except Exception as e:  # noqa: BLE001 - a function that cannot be imported here
            deferred.append(_portable(e))
            continue
        if msg is None:
            conn.send((None, None, None, deferred, records.take()))
            return
        n, uri, fn, args, kwargs, after_errors, keep = msg
        result, error = None, None
        try:
            args = tuple(_filled(a, answers) for a in args)
            kwargs = {k: _filled(v, answers) for k, v in kwargs.items()}
        except _NotOpened as e:
            if not n:  # a call sent for what could not be made (a run not opened): that failure is reported
                continue
            args, error = None, AgentError(f"{fn.__name__}: {e}")
        if args is not None and (after_errors or not deferred):
            try:
                with store_errors_named(uri or "the MLflow tracking store"):
                    result = fn(*args, **kwargs)
            except BaseException as e:  # noqa: BLE001 - reported to the sweep's process, never ends this one
                error = _portable(e)
        if keep and error is None and not deferred:
            answers[n] = result  # for the Laters that stand for it (a call_later: one per run)
        if n:
            try:
                conn.send((n, result, error, deferred, records.take()))
            except (pickle.PicklingError, TypeError, AttributeError) as e:
                conn.send((n, None, AgentError(f"{fn.__name__}: its result cannot be sent back ({e})"),
                           deferred, records.take()))
            deferred = []
        elif error is not None:
            deferred.append(error)


class _NotOpened(Exception):
    pass


def _filled(value, answers: dict):
    """`value`, or for a Later the result it stands for (_NotOpened if that call failed)."""
    if not isinstance(value, Later):
        return value
    if value.n not in answers:
        raise _NotOpened(f"it needs the result of an earlier call that failed ({value!r})")
    return answers[value.n] if value.index is None else answers[value.n][value.index]


_in_agent = False


def in_agent() -> bool:
    """Whether this process is a sweep's tracking process."""
    return _in_agent


def main(fd: int) -> None:
    global _in_agent
    _in_agent = True
    # Ctrl-C and a scheduler's SIGTERM reach the whole process group: the sweep's process handles them and tells
    # this one how its runs end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from mediaml import quiet

    quiet.install()
    conn = Connection(fd)
    try:
        serve(conn)
    finally:
        conn.close()
        # What was sent is in the store (each MLflow call commits): no need to wait ~1.5 s for the interpreter to
        # take MLflow, SQLAlchemy, matplotlib and scikit-learn apart while the sweep's process waits for it.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    # Run as mediaml.tracking.agent, not as __main__: the functions sent here (pickled by name) share its state.
    from mediaml.tracking.agent import main as agent_main

    agent_main(int(sys.argv[1]))
