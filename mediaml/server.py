"""A tracking server in one command: PostgreSQL + `mlflow server`, started, checked and stopped.

    python -m mediaml.server up                          # PostgreSQL + mlflow server on 127.0.0.1:5000
    eval "$(python -m mediaml.server up)"                # the same, and MLFLOW_TRACKING_URI set in this shell
    python -m mediaml.server up --backend sqlite         # no PostgreSQL: a sqlite file (one machine, few writers)
    python -m mediaml.server up --host 0.0.0.0 --port 5001   # reachable from other machines (cluster nodes)
    python -m mediaml.server status                      # what runs: PIDs, URI, backend, healthy or not
    python -m mediaml.server down                        # stop exactly what `up` started

Everything lives in one data folder, `<repo>/.cache/server/` unless `--dir` or MEDIAML_SERVER_DIR names
another:

    postgres/      a PostgreSQL cluster of its own (initdb on first use; database `mlflow` for runs, `optuna` for
                   studies many workers share (hydra.sweeper.storage, URL in `status`), user `mediaml`,
                   a generated password in `pgpass`), listening on 127.0.0.1 only, on a free port
    mlflow.db      the store instead of PostgreSQL with `--backend sqlite`
    artifacts/     the served artifact root (`--serve-artifacts`): clients anywhere upload and download
                   artifacts over HTTP through the server, none needs this folder mounted
    logs/          mlflow.log and postgres.log
    state.json     what `up` started (PIDs, ports, URIs), read by `status` and `down`

`up` waits until the server answers /health (`--timeout`, 120 s; measured on 2 cores: 13-18 s for a new
cluster with 4 workers, initdb and migrations included) and prints the `export MLFLOW_TRACKING_URI=http://...`
line alone on stdout (the rest goes to stderr), so `eval` takes it. A second `up` while one runs prints the
running one. `status` exits 0 when the server answers, 1 otherwise. `down` stops the mlflow server's whole
process group (it forks uvicorn workers), then PostgreSQL (`pg_ctl stop -m fast`); the data stays for the
next `up`. With `--host 0.0.0.0` it also prints the URI for other machines, whose names and address MLflow's
Host-header check is told to accept; options after `--` go to `mlflow server` as they are (e.g.
`-- --allowed-hosts 'head.cluster:*'`). MLflow 3's GenAI job runner is off (seven more processes, 40 s more
start-up, unused by training runs) unless MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true is set.

PostgreSQL's binaries are looked up in MEDIAML_PG_BINDIR, on PATH, then in the usual install folders
(Debian's /usr/lib/postgresql/<version>/bin, RHEL's /usr/pgsql-<version>/bin, Homebrew's). PostgreSQL
refuses to run as root: run as root, its commands run as the `postgres` user (MEDIAML_PG_USER), which owns
postgres/ and must be able to enter the data folder. A user's mistake (no PostgreSQL, a port taken, a
folder PostgreSQL cannot reach) ends with a message and exit code 2; a server that fails to start with
the tail of its log and exit code 1.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import importlib.util
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from mediaml.config import PROJECT_ROOT

BACKENDS = ("postgresql", "sqlite")
DB_NAME, DB_USER = "mlflow", "mediaml"
OPTUNA_DB = "optuna"  # a database for Optuna studies shared by many workers (hydra.sweeper.storage)
PG_TOOLS = ("initdb", "pg_ctl", "postgres", "createdb")
CONF_MARK = "# mediaml.server: TCP on the loopback only, no unix socket"
INSTALL_HINT = (
    "  Debian/Ubuntu: sudo apt-get install postgresql   (binaries in /usr/lib/postgresql/<version>/bin)\n"
    "  conda:         conda install -c conda-forge postgresql\n"
    "  macOS:         brew install postgresql@16\n"
    "or point MEDIAML_PG_BINDIR at the folder that holds initdb and pg_ctl, or use --backend sqlite "
    "(one machine, a few writers)")


class UsageError(Exception):
    """A user's mistake or a missing prerequisite: message, exit code 2."""


class StartError(Exception):
    """A server that did not come up (or go down): message with its log's tail, exit code 1."""


def say(*lines: str) -> None:
    print(*lines, sep="\n", file=sys.stderr, flush=True)


# -- where things are ---------------------------------------------------------------------------------
def data_dir(arg: str | None) -> Path:
    """--dir, else MEDIAML_SERVER_DIR, else <repo>/.cache/server (paths.cache_dir of conf/paths/default.yaml)."""
    d = arg or os.environ.get("MEDIAML_SERVER_DIR") or PROJECT_ROOT / ".cache" / "server"
    return Path(d).expanduser().resolve()


def read_state(d: Path) -> dict | None:
    try:
        return json.loads((d / "state.json").read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise UsageError(f"{d / 'state.json'} cannot be read ({e}); stop what it names by hand and remove it")


def write_state(d: Path, state: dict) -> None:
    tmp = d / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(d / "state.json")


def log_tail(path: str | Path, chars: int = 3000) -> str:
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return f"--- last lines of {path} ---\n{text[-chars:].rstrip()}"


# -- processes ------------------------------------------------------------------------------------------
def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, process group) of a live pid from /proc, None if it is gone (Linux)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = data[data.rindex(")") + 2:].split()
    return fields[0], int(fields[2])


def running(pid: int | None, marker: str | None = None) -> bool:
    """Whether pid runs (a zombie does not) and, where /proc tells, its command line contains `marker` (so a
    recycled pid of another program does not count)."""
    if not pid:
        return False
    if Path("/proc/self/stat").exists():
        stat = _proc_stat(pid)
        if stat is None or stat[0] == "Z":
            return False
        if marker:
            with contextlib.suppress(OSError):
                return marker in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of a process group."""
    if Path("/proc/self/stat").exists():
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                stat = _proc_stat(int(entry))
                if stat and stat[1] == pgid and stat[0] != "Z":
                    out.append(int(entry))
        return out
    try:
        os.killpg(pgid, 0)
        return [pgid]
    except (ProcessLookupError, PermissionError):
        return []


def stop_group(pgid: int, timeout: float = 20) -> list[int]:
    """SIGTERM a process group, SIGKILL what is left after `timeout`; returns what still runs (nothing)."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
        if not group_members(pgid):
            return []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        deadline = time.monotonic() + wait
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
    return group_members(pgid)


def port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind: TIME_WAIT is no conflict
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str, timeout: float = 3) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=timeout) as r:
            return r.status == 200
    except OSError:
        return False


# -- PostgreSQL -----------------------------------------------------------------------------------------
def _version_key(path: Path) -> tuple:
    return tuple(int(n) for n in re.findall(r"\d+", str(path))) or (0,)


def find_bindir(want_major: str | None = None) -> Path:
    """The folder with initdb, pg_ctl, postgres and createdb; of major version `want_major` if given (the
    cluster's PG_VERSION). UsageError naming the install command if there is none."""
    env = os.environ.get("MEDIAML_PG_BINDIR")
    if env:
        candidates, where = [Path(env).expanduser()], f"MEDIAML_PG_BINDIR={env}"
    else:
        on_path = shutil.which("pg_ctl")
        candidates = [Path(on_path).resolve().parent] if on_path else []
        for pattern in ("/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql*/bin",
                        "/usr/local/opt/postgresql*/bin"):
            candidates += sorted((Path(p) for p in glob.glob(pattern)), key=_version_key, reverse=True)
        where = "on PATH, in /usr/lib/postgresql/*/bin, /usr/pgsql-*/bin or Homebrew's opt/postgresql*/bin"
    found = [c for c in candidates if all((c / tool).is_file() and os.access(c / tool, os.X_OK) for tool in PG_TOOLS)]
    if not found:
        raise UsageError(f"PostgreSQL is not installed: no {', '.join(PG_TOOLS)} {where}. Install it:\n{INSTALL_HINT}")
    if want_major is None:
        return found[0]
    for c in found:
        if pg_major(c) == want_major:
            return c
    raise UsageError(f"the cluster was made by PostgreSQL {want_major}, and only {pg_major(found[0])} is found "
                     f"({found[0]}): install PostgreSQL {want_major}, or point MEDIAML_PG_BINDIR at it, or move the "
                     f"cluster's folder away to start a new one")


def pg_major(bindir: Path) -> str:
    out = subprocess.run([str(bindir / "postgres"), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"(\d+)(?:\.\d+)?", out)
    return m.group(1) if m else "?"


def pg_user() -> dict:
    """subprocess keyword arguments that run PostgreSQL's commands as the `postgres` user when we are root
    (PostgreSQL refuses root); nothing otherwise."""
    if os.geteuid() != 0:
        return {}
    import pwd

    name = os.environ.get("MEDIAML_PG_USER", "postgres")
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        raise UsageError(f"PostgreSQL refuses to run as root, and there is no user {name!r} to run it as: run "
                         f"this as a normal user, or create the user (Debian's postgresql package does), or set "
                         f"MEDIAML_PG_USER to another one") from None
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _own(path: Path, as_user: dict) -> None:
    if as_user:
        os.chown(path, as_user["user"], as_user["group"])


def pg_run(bindir: Path, args: list[str], as_user: dict, log: Path | None = None, **kw) -> subprocess.CompletedProcess:
    """Run a PostgreSQL command (as the postgres user if we are root); StartError with its output if it fails."""
    cmd = [str(bindir / args[0]), *args[1:]]
    r = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, cwd="/", **as_user, **kw)
    if r.returncode != 0:
        raise StartError(f"{' '.join(cmd)} failed (exit {r.returncode}):\n{(r.stdout + r.stderr).strip()[-2000:]}"
                         + (f"\n{log_tail(log)}" if log else ""))
    return r


def init_cluster(d: Path, bindir: Path, as_user: dict) -> None:
    """On first use: initdb a cluster in d/postgres (user `mediaml` with a generated password kept in d/pgpass,
    TCP on 127.0.0.1 only, no unix socket)."""
    pgdata = d / "postgres"
    if not (pgdata / "PG_VERSION").is_file():
        _initdb(d, pgdata, bindir, as_user)
    conf = pgdata / "postgresql.conf"
    if CONF_MARK not in conf.read_text():
        with open(conf, "a") as f:
            f.write(f"\n{CONF_MARK}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = ''\n")


def _initdb(d: Path, pgdata: Path, bindir: Path, as_user: dict) -> None:
    pgdata.mkdir(mode=0o700, exist_ok=True)
    _own(pgdata, as_user)
    reach = ["sh", "-c", 'test -w "$1" && test -x "$1"', "sh", str(pgdata)]
    if as_user and subprocess.run(reach, cwd="/", **as_user).returncode != 0:
        raise UsageError(f"PostgreSQL runs as user {os.environ.get('MEDIAML_PG_USER', 'postgres')!r} here (you are root) "
                         f"and cannot enter {pgdata}: use a --dir it can reach (e.g. under /var/tmp), or give it "
                         f"`chmod o+x` on the folders above")
    password = secrets.token_urlsafe(24)
    pgpass = d / "pgpass"
    pgpass.touch(mode=0o600)
    pgpass.write_text(f"127.0.0.1:*:*:{DB_USER}:{password}\n")  # libpq reads it through PGPASSFILE
    pwfile = d / ".initdb-password"
    pwfile.touch(mode=0o600)
    pwfile.write_text(password + "\n")
    _own(pwfile, as_user)
    try:
        pg_run(bindir, ["initdb", "-D", str(pgdata), "-U", DB_USER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
                        "-E", "UTF8", "--no-locale"], as_user)
    finally:
        pwfile.unlink(missing_ok=True)


def client_env(d: Path) -> dict:
    """The environment of a PostgreSQL client of the cluster: its password from d/pgpass, none from elsewhere."""
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    env["PGPASSFILE"] = str(d / "pgpass")
    return env


def start_postgres(d: Path, bindir: Path, as_user: dict, port: int) -> int:
    """pg_ctl start the cluster on 127.0.0.1:port, create the mlflow database if needed; the postmaster's pid."""
    pgdata, log = d / "postgres", d / "logs" / "postgres.log"
    log.touch()
    _own(log, as_user)
    if (pgdata / "postmaster.pid").exists() and subprocess.run(
            [str(bindir / "pg_ctl"), "status", "-D", str(pgdata)], capture_output=True, cwd="/", **as_user).returncode == 0:
        say(f"a PostgreSQL of an earlier `up` still runs on {pgdata}: stopping it first")
        pg_run(bindir, ["pg_ctl", "stop", "-D", str(pgdata), "-m", "fast", "-w"], as_user, log)
    pg_run(bindir, ["pg_ctl", "start", "-D", str(pgdata), "-l", str(log), "-o", f"-p {port}", "-w", "-t", "60"], as_user, log)
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    for db in (DB_NAME, OPTUNA_DB):
        r = subprocess.run([str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", DB_USER, db],
                           capture_output=True, text=True, env=client_env(d))
        if r.returncode != 0 and "already exists" not in r.stderr:
            raise StartError(f"createdb {db} failed: {r.stderr.strip()}\n{log_tail(log)}")
    return pid


def stop_postgres(d: Path, state: dict) -> None:
    pgdata, log = d / "postgres", d / "logs" / "postgres.log"
    if (pgdata / "postmaster.pid").exists():
        bindir, as_user = Path(state["pg_bindir"]), pg_user()
        try:
            pg_run(bindir, ["pg_ctl", "stop", "-D", str(pgdata), "-m", "fast", "-w", "-t", "60"], as_user, log)
        except StartError as e:
            say(f"{e}\ntrying `pg_ctl stop -m immediate`")
            pg_run(bindir, ["pg_ctl", "stop", "-D", str(pgdata), "-m", "immediate", "-w"], as_user, log)


# -- the mlflow server ----------------------------------------------------------------------------------
def machine_names() -> list[str]:
    """This machine's name(s) and outward IP address, as clients on other machines reach it."""
    names = {socket.gethostname(), socket.getfqdn()}
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))  # UDP: picks the outgoing interface, sends nothing
        names.add(s.getsockname()[0])
    return sorted(n for n in names if n and not n.startswith(("localhost", "127.")))


def allowed_hosts(host: str) -> list[str]:
    """For a server bound beyond the loopback: MLflow's default Host-header list (localhost, private IPs)
    plus this machine's names and address, which clients on other machines put in their requests."""
    if host in ("127.0.0.1", "localhost", "::1"):
        return []
    names = {"localhost", "127.0.0.1", host, *machine_names()}
    patterns = sorted(n for name in names for n in (name, f"{name}:*"))
    return [",".join(patterns + ["10.*", "192.168.*", *(f"172.{i}.*" for i in range(16, 32))])]


def start_mlflow(d: Path, backend_uri: str, host: str, port: int, workers: int, extra: list[str]) -> int:
    """Start `mlflow server` in a session of its own (so `down` can stop its whole process group); its pid."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", backend_uri, "--serve-artifacts",
           "--artifacts-destination", str(d / "artifacts"), "--host", host, "--port", str(port),
           "--workers", str(workers)]
    if "--allowed-hosts" not in extra:
        hosts = allowed_hosts(host)
        cmd += ["--allowed-hosts", *hosts] if hosts else []
    env = client_env(d)
    env.pop("MLFLOW_TRACKING_URI", None)
    # MLflow 3's GenAI job runner (scorers, prompt optimisation) forks 7 huey consumers: 40 s of start-up on
    # 2 cores, unused by training runs. MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true in the environment keeps it.
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    with open(d / "logs" / "mlflow.log", "a") as log:
        log.write(f"\n=== mediaml.server up, {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(cmd + extra)}\n")
        log.flush()
        proc = subprocess.Popen(cmd + extra, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=d, env=env, start_new_session=True)
    return proc.pid


def wait_healthy(state: dict, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not healthy(state["url"], timeout=2):
        if not running(state["mlflow_pid"]):
            raise StartError(f"mlflow server exited before answering {state['url']}/health\n{log_tail(state['mlflow_log'])}")
        if time.monotonic() > deadline:
            raise StartError(f"mlflow server did not answer {state['url']}/health within {timeout:.0f} s "
                             f"(raise --timeout if it is only slow)\n{log_tail(state['mlflow_log'])}")
        time.sleep(0.5)


def stop_all(d: Path, state: dict) -> None:
    """Stop the mlflow server's process group, then PostgreSQL; StartError if anything is left."""
    left = stop_group(state["mlflow_pid"]) if state.get("mlflow_pid") else []
    if state.get("backend") == "postgresql" and state.get("pg_bindir"):
        stop_postgres(d, state)
    if running(state.get("pg_pid"), marker=str(d)):
        left.append(state["pg_pid"])
    if left:
        raise StartError(f"still running after down: pids {left}; state kept in {d / 'state.json'}")
    (d / "state.json").unlink(missing_ok=True)


def export_line(state: dict) -> str:
    return f"export MLFLOW_TRACKING_URI={state['url']}"


def describe(state: dict) -> list[str]:
    lines = [f"  mlflow server: pid {state['mlflow_pid']} (process group of {len(group_members(state['mlflow_pid']))}),"
             f" log {state['mlflow_log']}",
             f"  backend: {state['backend_uri']}"]
    if state["backend"] == "postgresql":
        lines.append(f"  postgresql: pid {state['pg_pid']}, 127.0.0.1:{state['pg_port']}, data {state['pg_data']}, "
                     f"log {state['pg_log']}")
        lines.append(f"  optuna studies (workers on this machine): PGPASSFILE={state['dir']}/pgpass "
                     f"python train.py -m ... hydra.sweeper.storage={state['optuna_storage']}")
    lines.append(f"  artifacts: {state['artifacts']} (served: clients upload over HTTP)")
    if state["host"] not in ("127.0.0.1", "localhost"):
        lines += [f"  from other machines: export MLFLOW_TRACKING_URI=http://{name}:{state['port']}"
                  for name in machine_names()]
    return lines


# -- the commands -----------------------------------------------------------------------------------------
def lock(d: Path):
    from filelock import FileLock

    return FileLock(str(d / ".lock"))


def up(d: Path, backend: str | None, host: str, port: int | None, pg_port: int | None, workers: int,
       timeout: float, extra: list[str]) -> int:
    d.mkdir(parents=True, exist_ok=True)
    with lock(d):
        state = read_state(d)
        if state and running(state.get("mlflow_pid"), marker=str(d)):
            if (backend or state["backend"]) != state["backend"] or (port or state["port"]) != state["port"]:
                raise UsageError(f"a server is already up in {d} ({state['backend']}, port {state['port']}): "
                                 f"`python -m mediaml.server down --dir {d}` first to start another")
            ok = healthy(state["url"])
            say(f"already up: {state['url']} ({state['backend']}, {'healthy' if ok else 'NOT answering /health'})",
                *describe(state))
            print(export_line(state), flush=True)
            return 0 if ok else 1
        if state:
            say(f"{d / 'state.json'} names a server that no longer runs: cleaning up after it")
            stop_all(d, state)
        backend, port = backend or "postgresql", port or 5000
        if not port_free(host, port):
            raise UsageError(f"port {port} on {host} is taken (another server?): pick another with --port N")
        state = {"backend": backend, "host": host, "port": port, "dir": str(d), "python": sys.executable,
                 "url": f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}",
                 "artifacts": str(d / "artifacts"), "mlflow_log": str(d / "logs" / "mlflow.log"),
                 "started": time.strftime("%Y-%m-%d %H:%M:%S")}
        (d / "logs").mkdir(exist_ok=True)
        (d / "artifacts").mkdir(exist_ok=True)
        if backend == "postgresql":
            if importlib.util.find_spec("psycopg2") is None:
                raise UsageError("--backend postgresql needs psycopg2 in this Python: pip install psycopg2-binary "
                                 "(or pip install -e '.[cluster]')")
            pgdata = d / "postgres"
            want = (pgdata / "PG_VERSION").read_text().strip() if (pgdata / "PG_VERSION").is_file() else None
            bindir, as_user = find_bindir(want), pg_user()
            # The port of the last start when it is free: the studies' storage URL stays the same across `up`s.
            last = d / "pg_port"
            if not pg_port and last.is_file() and port_free("127.0.0.1", int(last.read_text())):
                pg_port = int(last.read_text())
            pg_port = pg_port or free_port()
            last.write_text(str(pg_port))
            if not port_free("127.0.0.1", pg_port):
                raise UsageError(f"port {pg_port} on 127.0.0.1 is taken: pick another with --pg-port N")
            init_cluster(d, bindir, as_user)
            state.update(pg_bindir=str(bindir), pg_port=pg_port, pg_data=str(pgdata), pg_log=str(d / "logs" / "postgres.log"),
                         backend_uri=f"postgresql+psycopg2://{DB_USER}@127.0.0.1:{pg_port}/{DB_NAME}",
                         optuna_storage=f"postgresql+psycopg2://{DB_USER}@127.0.0.1:{pg_port}/{OPTUNA_DB}")
        else:
            state["backend_uri"] = f"sqlite:///{d / 'mlflow.db'}"
        try:
            if backend == "postgresql":
                write_state(d, state)  # before it starts: a `down` after a crash here still finds it
                state["pg_pid"] = start_postgres(d, bindir, as_user, pg_port)
            state["mlflow_pid"] = start_mlflow(d, state["backend_uri"], host, port, workers, extra)
            write_state(d, state)
            wait_healthy(state, timeout)
        except BaseException:
            with contextlib.suppress(StartError):
                stop_all(d, state)
            raise
        say(f"up: {state['url']} ({backend})", *describe(state),
            f"  stop with: python -m mediaml.server down --dir {d}")
        print(export_line(state), flush=True)
        return 0


def status(d: Path) -> int:
    state = read_state(d)
    if not state:
        print(f"nothing is up in {d} (no state.json)")
        return 1
    alive = running(state.get("mlflow_pid"), marker=str(d))
    ok = alive and healthy(state["url"])
    what = "healthy" if ok else ("running but NOT answering /health" if alive else "NOT running (stale state)")
    print(f"{state['url']}: {what} (backend {state['backend']}, up since {state['started']})", *describe(state),
          export_line(state), sep="\n")
    if state["backend"] == "postgresql" and not running(state.get("pg_pid"), marker=str(d)):
        print("  postgresql: NOT running")
        ok = False
    return 0 if ok else 1


def down(d: Path) -> int:
    if not d.is_dir():
        print(f"nothing is up in {d} (no such folder)")
        return 0
    with lock(d):
        state = read_state(d)
        if not state:
            print(f"nothing is up in {d} (no state.json)")
            return 0
        n = len(group_members(state["mlflow_pid"])) if state.get("mlflow_pid") else 0
        stop_all(d, state)
        pg = f" and PostgreSQL (pid {state.get('pg_pid')})" if state["backend"] == "postgresql" else ""
        print(f"stopped the mlflow server at {state['url']} (pid {state.get('mlflow_pid')}, {n} processes){pg}; "
              f"data kept in {d}")
        return 0


def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(prog="python -m mediaml.server", description=__doc__.split("\n")[0])
    p.add_argument("--dir", help="data folder (default: $MEDIAML_SERVER_DIR, else <repo>/.cache/server)")
    sub = p.add_subparsers(dest="command", required=True)
    u = sub.add_parser("up", help="start PostgreSQL (or sqlite) + mlflow server, print the export line")
    u.add_argument("--backend", choices=BACKENDS, help="the store behind the server (default: postgresql)")
    u.add_argument("--port", type=int, help="the mlflow server's port (default: 5000)")
    u.add_argument("--host", default="127.0.0.1", help="interface to bind (0.0.0.0: reachable from other machines)")
    u.add_argument("--pg-port", type=int, help="PostgreSQL's port on 127.0.0.1 (default: a free one)")
    u.add_argument("--workers", type=int, default=4, help="mlflow server worker processes (default: 4)")
    u.add_argument("--timeout", type=float, default=120, help="seconds to wait for /health (default: 120)")
    for name in ("status", "down"):
        sub.add_parser(name, help={"status": "what runs, and whether it answers", "down": "stop what up started"}[name])
    for parser in sub.choices.values():  # --dir before or after the command
        parser.add_argument("--dir", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if extra and args.command != "up":
        p.error("options after -- go to `mlflow server` and only with `up`")
    return args, extra


def main(argv: list[str] | None = None) -> int:
    args, extra = parse(sys.argv[1:] if argv is None else argv)
    d = data_dir(args.dir)
    try:
        if args.command == "up":
            for name in ("port", "pg_port"):
                value = getattr(args, name)
                if value is not None and not (0 < value < 65536):
                    raise UsageError(f"--{name.replace('_', '-')} {value}: expected 1..65535")
            if args.workers < 1:
                raise UsageError(f"--workers {args.workers}: expected 1 or more")
            return up(d, args.backend, args.host, args.port, args.pg_port, args.workers, args.timeout, extra)
        return status(d) if args.command == "status" else down(d)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except StartError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # what up had started is stopped already
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
