"""DeepWalk walk generation on the 30Music user-session-song graph: ours vs pure Python vs PecanPy.

    MEDIAML_DATA_DIR=../shared/data .venv/bin/python benchmarks/bench_walks.py [--rounds 3] [--no-pecanpy]

Graph: all events of the five 30Music 200ks test slices (read with pandas here, not through the dataset
code), the given SessionId as sessions, USS layout of `mediaml.tasks.listening.walks.build_graph`: 4,620 users +
9,519 sessions + 57,684 songs = 71,823 nodes, 115,707 undirected edges (the anchors' §1). Walks:
R = 20 from every node, L = 40 nodes each (L counts nodes, as phanein/deepwalk) -> 1,436,460 walks.

Variants, run in rotated order over `--rounds` rounds (ratios are taken within a round, then the median):
  python   phanein/deepwalk's walker over a networkx.Graph (`rand.choice(list(G[cur]))`, nodes shuffled
           per pass), R=1 timed and extrapolated x R (as the anchors do: a full run takes minutes);
  ours     `mediaml.tasks.listening.walks.random_walks` (numba parallel over CSR, --threads threads), full R;
  pecanpy  PecanPy 2.0.9 `FirstOrderUnweighted.simulate_walks(num_walks=20, walk_length=39)` (-> 40 nodes,
           asserted), its output as the API returns it (lists of str), built from the CSR arrays (no
           edge-file parse), timed after a warm-up call that compiles its numba kernels (every
           simulate_walks call builds a new move_forward closure, so its kernel compiles again: that ~1-2 s
           is part of the API's time); `pecanpy_core` is its numba kernel `_random_walks` alone with
           compiled-once closures (uint32 matrix, no str mapping), printed for information.
PecanPy pins numpy<2 (nptyping), so it runs in its own venv, `.venv-pecanpy` next to `.venv` (created
with `python3.11 -m venv` + `pip install pecanpy==2.0.9` when missing; not a project dependency), as a
child process fed the CSR via an .npz in a temp dir. If that venv's numpy is 2.x the child restores the
removed numpy aliases before importing pecanpy.
After the rounds: walks -> gensim input, ours (walks + numba text writer to a corpus file) vs the
naive list-of-str conversion (`walks_to_sentences`) of the same walks.

Timings depend on the machine's load (printed): compare the within-run ratios. Targets (issue 4):
ours >= 50x python and >= 1x pecanpy (simulate_walks).

Measured 2026-11-23 06:27 UTC (2 cores, load1 2.4-2.9 from other jobs; 1 min 44 s wall), R=20, L=40:
  python        9,638 walks/s    (149 s extrapolated from R=1; per round 116, 149, 162 s)
  ours      1,891,788 walks/s    (0.76 s; 0.55, 0.77, 0.76)
  pecanpy     116,613 walks/s    (12.3 s; 11.8, 12.3, 18.0)   pecanpy_core 1,822,554 walks/s (0.79 s)
  ours/python 212x (212, 195, 213); ours/pecanpy 21.6x (21.6, 16.1, 23.7); ours/pecanpy_core 1.4x (1.4, 1.0, 2.2)
  gensim input (57.5 M words): walks 0.41 s + text writer 2.78 s (325 MB) vs list-of-str conversion 23.0 s
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mediaml.tasks.listening.walks import build_graph, random_walks, walks_to_sentences, write_walks_text  # noqa: E402

PECANPY_VENV = ROOT / ".venv-pecanpy"
PECANPY_VERSION = "2.0.9"


def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def load_30music_split(data_dir: Path) -> SimpleNamespace:
    """All events of the 5 slices as a ListeningSplit-like object (given SessionId as sessions)."""
    files = sorted((data_dir / "listening" / "30music_200ks_test_slices").glob("30music-200ks_test.*.txt"))
    if not files:
        raise FileNotFoundError(f"no 30music-200ks_test.*.txt under {data_dir}/listening/30music_200ks_test_slices")
    df = pd.concat([pd.read_csv(f, sep="\t", usecols=["UserId", "SessionId", "ItemId"]) for f in files])
    user, users = pd.factorize(df["UserId"])
    session, sessions = pd.factorize(pd.MultiIndex.from_arrays([df["UserId"], df["SessionId"]]))
    item, items = pd.factorize(df["ItemId"])
    train = pd.DataFrame({"user": user.astype(np.int32), "session": session.astype(np.int32),
                          "item": item.astype(np.int32)})
    return SimpleNamespace(train=train, n_users=len(users), n_train_sessions=len(sessions), n_items=len(items))


# -- (a) pure Python, phanein/deepwalk style -------------------------------------------------------------

def python_random_walk(G, path_length: int, rand: random.Random, start) -> list:
    path = [start]
    while len(path) < path_length:
        cur = path[-1]
        if len(G[cur]) > 0:
            path.append(rand.choice(list(G[cur].keys())))
        else:
            break
    return path


def python_walks(G, num_paths: int, path_length: int, seed: int) -> list[list]:
    rand = random.Random(seed)
    nodes = list(G.nodes())
    walks = []
    for _ in range(num_paths):
        rand.shuffle(nodes)
        for node in nodes:
            walks.append(python_random_walk(G, path_length, rand, node))
    return walks


# -- (c) PecanPy in its own venv -------------------------------------------------------------------------

PECANPY_CHILD = r'''
import json, sys, time
import numpy as np
npz, threads = sys.argv[1], int(sys.argv[2])
if int(np.__version__.split(".")[0]) >= 2:  # numpy 2 removed aliases that pecanpy/nptyping use
    for name, value in {"float_": np.float64, "complex_": np.complex128, "unicode_": np.str_,
                        "string_": np.bytes_, "bool8": np.bool_, "int0": np.intp, "uint0": np.uintp,
                        "object0": np.object_, "float96": np.longdouble, "complex192": np.clongdouble,
                        "longfloat": np.longdouble, "singlecomplex": np.complex64, "cfloat": np.complex128,
                        "clongfloat": np.clongdouble, "longcomplex": np.clongdouble, "Inf": np.inf,
                        "NaN": np.nan, "infty": np.inf}.items():
        if not hasattr(np, name):
            setattr(np, name, value)
import numba
numba.set_num_threads(threads)
from numba_progress import ProgressBar
from importlib.metadata import version
from pecanpy.pecanpy import FirstOrderUnweighted

t0 = time.perf_counter()
raw = np.load(npz)
g = FirstOrderUnweighted(workers=threads, random_state=0, verbose=False)
g.indptr = raw["indptr"].astype(np.uint32)
g.indices = raw["indices"].astype(np.uint32)
g.data = np.ones(len(g.indices), dtype=np.float32)
n = len(g.indptr) - 1
g.set_node_ids(None, implicit_ids=True, num_nodes=n)
setup = time.perf_counter() - t0
t0 = time.perf_counter()
g.simulate_walks(1, 3)  # compiles the kernels (each simulate_walks call compiles its move_forward again)
has_nbrs, move_forward = g.get_has_nbrs(), g.get_move_forward()  # kept for "core": compiled once


def core(r, steps):
    starts = np.concatenate([np.arange(n, dtype=np.uint32)] * r)
    np.random.seed(0)
    np.random.shuffle(starts)
    with ProgressBar(total=len(starts), disable=True) as progress:
        return g._random_walks(len(starts), steps, 0, starts, has_nbrs, move_forward, progress)


core(1, 3)
warm = time.perf_counter() - t0
print(json.dumps({"ready": True, "setup_s": setup, "warmup_s": warm, "version": version("pecanpy"),
                  "numpy": np.__version__, "threads": numba.get_num_threads()}), flush=True)
for line in sys.stdin:
    cmd, r, steps = line.split()
    r, steps = int(r), int(steps)
    t0 = time.perf_counter()
    if cmd == "api":
        walks = g.simulate_walks(num_walks=r, walk_length=steps)
        out = {"walks": len(walks), "first_len": len(walks[0]), "max_len": max(map(len, walks))}
    else:  # core: its numba kernel only, as simulate_walks calls it, without the recompile
        mat = core(r, steps)
        out = {"walks": int(mat.shape[0]), "first_len": int(mat[0, -1]), "max_len": int(mat[:, -1].max())}
    seconds = time.perf_counter() - t0
    walks = mat = None
    print(json.dumps({"seconds": seconds, **out}), flush=True)
'''


def ensure_pecanpy_venv(venv: Path = PECANPY_VENV) -> Path:
    py = venv / "bin" / "python"
    ok = py.exists() and subprocess.run([str(py), "-c", "import pecanpy, numba_progress"],
                                        capture_output=True).returncode == 0
    if not ok:
        print(f"creating {venv} with pecanpy=={PECANPY_VERSION} (python3.11 -m venv + pip) ...", flush=True)
        subprocess.run(["python3.11", "-m", "venv", str(venv)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", f"pecanpy=={PECANPY_VERSION}"], check=True)
    return py


class PecanPyChild:
    def __init__(self, py: Path, npz: Path, threads: int, workdir: Path):
        script = workdir / "pecanpy_child.py"
        script.write_text(PECANPY_CHILD)
        self.proc = subprocess.Popen([str(py), str(script), str(npz), str(threads)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)
        self.info = self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"pecanpy child exited ({self.proc.wait()})")
        return json.loads(line)

    def run(self, cmd: str, walks_per_node: int, walk_length: int) -> dict:
        self.proc.stdin.write(f"{cmd} {walks_per_node} {walk_length - 1}\n")  # pecanpy counts steps
        self.proc.stdin.flush()
        out = self._read()
        if out["first_len"] != walk_length or out["max_len"] != walk_length:
            raise AssertionError(f"pecanpy walks have {out['first_len']}/{out['max_len']} nodes, "
                                 f"expected {walk_length}")
        return out

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--walks-per-node", type=int, default=20)
    ap.add_argument("--walk-length", type=int, default=40)
    ap.add_argument("--python-r", type=int, default=1, help="walks per node timed for the python walker")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-pecanpy", action="store_true")
    ap.add_argument("--no-core", action="store_true", help="skip pecanpy's bare kernel timing")
    args = ap.parse_args()
    R, L = args.walks_per_node, args.walk_length

    data_dir = Path(os.environ.get("MEDIAML_DATA_DIR", ROOT.parent / "shared" / "data"))
    t0 = time.perf_counter()
    split = load_30music_split(data_dir)
    adj = build_graph(split, "uss")
    N = adj.shape[0]
    print(f"graph: {split.n_users:,} users + {split.n_train_sessions:,} sessions + {split.n_items:,} songs = "
          f"{N:,} nodes, {adj.nnz // 2:,} edges, max degree {np.diff(adj.indptr).max()} "
          f"({time.perf_counter() - t0:.2f} s); R={R}, L={L} -> {N * R:,} walks; load1 {load1():.2f}", flush=True)

    import networkx as nx

    t0 = time.perf_counter()
    G = nx.from_scipy_sparse_array(adj)
    print(f"networkx graph: {time.perf_counter() - t0:.2f} s", flush=True)
    t0 = time.perf_counter()
    random_walks(adj, 1, L, seed=0, n_threads=args.threads, progress=False)  # JIT (cached after the 1st run)
    print(f"ours: JIT/first call {time.perf_counter() - t0:.2f} s", flush=True)

    tmp = Path(tempfile.mkdtemp(prefix="bench_walks_"))
    child = None
    if not args.no_pecanpy:
        py = ensure_pecanpy_venv()
        np.savez(tmp / "graph.npz", indptr=adj.indptr, indices=adj.indices)
        t0 = time.perf_counter()
        child = PecanPyChild(py, tmp / "graph.npz", args.threads, tmp)
        print(f"pecanpy {child.info['version']} (numpy {child.info['numpy']}, {child.info['threads']} threads): "
              f"setup {child.info['setup_s']:.2f} s, warm-up/JIT {child.info['warmup_s']:.2f} s "
              f"(child start {time.perf_counter() - t0:.2f} s)", flush=True)

    def run_python(rnd):
        t = time.perf_counter()
        walks = python_walks(G, args.python_r, L, seed=rnd)
        s = time.perf_counter() - t
        assert len(walks) == N * args.python_r and all(len(w) == L for w in walks)
        return s * R / args.python_r  # extrapolated to R walks per node

    def run_ours(rnd):
        t = time.perf_counter()
        walks = random_walks(adj, R, L, seed=rnd, n_threads=args.threads, progress=False)
        s = time.perf_counter() - t
        assert walks.shape == (N * R, L)
        return s

    variants = {"python": run_python, "ours": run_ours}
    if child is not None:
        variants["pecanpy"] = lambda rnd: child.run("api", R, L)["seconds"]
        if not args.no_core:
            variants["pecanpy_core"] = lambda rnd: child.run("core", R, L)["seconds"]

    names = list(variants)
    seconds = {k: [] for k in names}
    for rnd in range(args.rounds):
        order = names[rnd % len(names):] + names[: rnd % len(names)]
        for name in order:
            seconds[name].append(variants[name](rnd))
        print(f"round {rnd + 1}: " + ", ".join(f"{k} {seconds[k][-1]:.2f} s" for k in order)
              + f"  (load1 {load1():.2f})", flush=True)
    if child is not None:
        child.close()

    n_walks = N * R
    print(f"\nwalks/s (R={R}, L={L}, {n_walks:,} walks; python: R={args.python_r} timed, x{R / args.python_r:g})")
    for k in names:
        per = [n_walks / s for s in seconds[k]]
        print(f"  {k:13s} median {np.median(per):>12,.0f} walks/s   total s for R={R}: median "
              f"{np.median(seconds[k]):8.2f}  per round " + ", ".join(f"{s:.2f}" for s in seconds[k]))
    print("ratios of walks/s within a round (median; per round)")
    for other in names:
        if other == "ours":
            continue
        r = [seconds[other][i] / seconds["ours"][i] for i in range(args.rounds)]
        print(f"  ours/{other:13s} {np.median(r):8.1f}x   (" + ", ".join(f"{x:.1f}" for x in r) + ")")

    # walks -> gensim input
    t = time.perf_counter()
    walks = random_walks(adj, R, L, seed=0, n_threads=args.threads, progress=False)
    walk_s = time.perf_counter() - t
    t = time.perf_counter()
    nbytes = write_walks_text(walks, tmp / "walks.txt")
    write_s = time.perf_counter() - t
    t = time.perf_counter()
    sentences = walks_to_sentences(walks)
    sent_s = time.perf_counter() - t
    del sentences
    print(f"\ngensim input for {n_walks:,} walks ({walks.size:,} words): walks {walk_s:.2f} s + numba text "
          f"writer {write_s:.2f} s ({nbytes / 1e6:.0f} MB) = {walk_s + write_s:.2f} s; list-of-str "
          f"conversion {sent_s:.2f} s (walks + it = {walk_s + sent_s:.2f} s); writer/str speed-up "
          f"{sent_s / write_s:.1f}x; load1 {load1():.2f}")
    for f in tmp.iterdir():
        f.unlink()
    tmp.rmdir()


if __name__ == "__main__":
    main()
