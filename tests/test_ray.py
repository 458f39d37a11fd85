"""`decrank encode --ray` and `rerank --ray` against a real Ray cluster on this machine: a head node and a second
node started as separate processes, one CPU each (not local_mode). Their outputs must equal one process's
byte for byte, survive a killed worker and a killed driver, and every user error is one line."""

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

ray = pytest.importorskip("ray")

from pyserini_decrank.cli import main  # noqa: E402

pytestmark = pytest.mark.slow  # a cluster starts and stops: `pytest -m 'not slow'` leaves it out

ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONUNBUFFERED": "1"}
RAY = str(Path(sys.executable).parent / "ray")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args, timeout=120, prefix=()):
    proc = subprocess.run([*prefix, RAY, *args], env=ENV, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node and a second node, one CPU each; stopped (every Ray process of this machine) at the end."""
    subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True, timeout=60)
    address = f"127.0.0.1:{_free_port()}"
    _ray("start", "--head", "--num-cpus", "1", "--port", address.split(":")[1], "--include-dashboard", "false",
         "--disable-usage-stats")
    _ray("start", "--address", address, "--num-cpus", "1")
    try:
        yield address
    finally:
        subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True, timeout=60)


def test_no_cluster_is_one_line(tiny_models, tmp_path):
    """--ray alone with no cluster running here (the fixture below starts one later in this module)."""
    subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True, timeout=60)
    env = {k: v for k, v in ENV.items() if k != "RAY_ADDRESS"}
    (tmp_path / "corpus.tsv").write_text("d1\tsome text\n")
    proc = subprocess.run([sys.executable, "-m", "pyserini_decrank", "encode", "--model", str(tiny_models("t5")),
                           "--corpus", str(tmp_path / "corpus.tsv"), "--store", str(tmp_path / "s"), "--ray"],
                          env=env, capture_output=True, text=True, timeout=120)
    one_line_error(proc, "no Ray cluster is running on this machine", "--ray ADDRESS")
    assert not (tmp_path / "s").exists()


@pytest.fixture(scope="module")
def setup(tiny_models, tmp_path_factory):
    from _tiny import sentences

    root = tmp_path_factory.mktemp("ray")
    texts = sentences(600, seed=11)
    (root / "corpus.tsv").write_text("".join(f"d{i}\t{t} {t}\n" for i, t in enumerate(texts)))
    (root / "run.txt").write_text("".join(f"q{q} Q0 d{q * 17 + i} {i + 1} {40 - i} bm25\n"
                                          for q in range(12) for i in range(15)))
    (root / "topics.tsv").write_text("".join(f"q{q}\t{' '.join(texts[q * 17].split()[:3])}\n" for q in range(12)))
    return root, str(tiny_models("t5"))


def cli(*args) -> None:
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code == 0, result.output


def decrank(*args, timeout=300) -> subprocess.CompletedProcess:
    """The command in a process of its own, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "pyserini_decrank", *map(str, args)], env=ENV, capture_output=True,
                          text=True, timeout=timeout)


def digests(store: Path) -> dict[str, str]:
    return {str(p.relative_to(store)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(store.rglob("*")) if p.is_file() and p.name != ".lock"}


def encode_args(root, model, store, *more):
    return ["encode", "--model", model, "--corpus", root / "corpus.tsv", "--store", store, "--shard-size", "40",
            "--batch-size", "8", *more]


def one_line_error(proc, *fragments):
    lines = [line for line in proc.stderr.splitlines() if line.strip() and "(raylet)" not in line]
    assert proc.returncode == 2 and len(lines) == 1 and lines[0].startswith("decrank: error: "), proc.stderr[-3000:]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture(scope="module")
def reference(setup):
    """One process, one thread (what each one-CPU worker runs with): the store and the run."""
    root, model = setup
    cli(*encode_args(root, model, root / "one"), "--threads", "1")
    cli("rerank", "--model", model, "--store", root / "one", "--topics", root / "topics.tsv", "--run", root / "run.txt",
        "--output", root / "one.txt", "--depth", "10", "--interpolated", "0.5", root / "one-0.5.txt", "--threads", "1")
    return digests(root / "one")


def test_encode_and_rerank_on_two_nodes_equal_one_process(cluster, setup, reference):
    root, model = setup
    proc = decrank(*encode_args(root, model, root / "two"), "--ray", cluster)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert digests(root / "two") == reference and len(reference) > 30  # every shard file and the manifest
    again = decrank(*encode_args(root, model, root / "two"), "--ray", cluster)  # nothing left: no worker starts
    assert again.returncode == 0 and "encoded 0 documents (600 already stored" in again.stderr, again.stderr[-3000:]
    assert digests(root / "two") == reference
    proc = decrank("rerank", "--model", model, "--store", root / "two", "--topics", root / "topics.tsv",
                   "--run", root / "run.txt", "--output", root / "two.txt", "--depth", "10",
                   "--interpolated", "0.5", root / "two-0.5.txt", "--ray", cluster)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (root / "two.txt").read_bytes() == (root / "one.txt").read_bytes()
    assert (root / "two-0.5.txt").read_bytes() == (root / "one-0.5.txt").read_bytes()


def test_trained_codec_is_trained_once_and_equals_one_process(cluster, setup):
    root, model = setup
    cli(*encode_args(root, model, root / "sq8-one"), "--codec", "SQ8", "--threads", "1")
    proc = decrank(*encode_args(root, model, root / "sq8-two"), "--codec", "SQ8", "--ray", cluster)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert digests(root / "sq8-two") == digests(root / "sq8-one")


def _kill_when(pattern: str, ready, killed: list) -> None:
    """SIGKILLs the first process whose command line matches ``pattern`` once ``ready()`` holds."""
    deadline = time.time() + 120
    while time.time() < deadline and not killed:
        if ready():
            found = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True).stdout.split()
            if found:
                os.kill(int(found[0]), signal.SIGKILL)
                killed.append(int(found[0]))
        time.sleep(0.05)


def test_a_killed_worker_is_restarted_and_the_store_is_still_right(cluster, setup, reference):
    root, model = setup
    killed: list = []
    killer = threading.Thread(target=_kill_when, args=("ray::ShardEncoder.encode_shard", lambda: True, killed))
    killer.start()
    proc = decrank(*encode_args(root, model, root / "killed"), "--ray", cluster)
    killer.join()
    assert killed, "no worker was seen encoding"
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert digests(root / "killed") == reference


def test_a_killed_driver_resumes_from_the_listed_shards(cluster, setup, reference):
    root, model = setup
    store = root / "resumed"
    manifest = store / "manifest.json"
    driver = subprocess.Popen([sys.executable, "-m", "pyserini_decrank", *map(str, encode_args(root, model, store)),
                               "--ray", cluster], env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    listed = lambda: manifest.is_file() and '"name": "00001"' in manifest.read_text()  # noqa: E731
    deadline = time.time() + 120
    while driver.poll() is None and not listed() and time.time() < deadline:
        time.sleep(0.05)
    driver.kill()
    driver.wait()
    assert '"complete": false' in manifest.read_text(), "the driver finished before it could be killed"
    proc = decrank(*encode_args(root, model, store), "--ray", cluster)
    assert proc.returncode == 0, proc.stderr[-3000:]
    kept = int(re.search(r"\((\d+) already stored", proc.stderr).group(1))
    assert kept >= 80  # the two listed shards were kept, not encoded again
    assert digests(store) == reference


def test_bad_clusters_are_one_line_and_write_nothing(cluster, setup, tmp_path):
    root, model = setup
    store = tmp_path / "never"
    one_line_error(decrank(*encode_args(root, model, store), "--ray", f"127.0.0.1:{_free_port()}"), "unreachable")
    one_line_error(decrank(*encode_args(root, model, store), "--ray", "no-port-here"), "not host:port")
    one_line_error(decrank(*encode_args(root, model, store), "--ray", cluster, "--ray-workers", "3"),
                   "holds 2 workers of 1 CPU each, not the 3 asked for")
    one_line_error(decrank(*encode_args(root, model, store), "--ray", cluster, "--ray-cpus", "2"),
                   "holds no worker of 2 CPUs")
    one_line_error(decrank("rerank", "--model", model, "--store", root / "one", "--topics", root / "topics.tsv",
                           "--run", root / "run.txt", "--output", tmp_path / "out.txt", "--ray", cluster,
                           "--ray-gpus", "1"), "holds no worker of 1 CPU and 1 GPU")
    assert not store.exists() and not (tmp_path / "out.txt").exists()


def _private_mounts_work() -> bool:
    if not shutil.which("unshare"):
        return False
    import tempfile

    with tempfile.TemporaryDirectory() as folder:  # the mount lives and dies in the probe's own namespace
        probe = subprocess.run(["unshare", "-m", "--propagation", "private", "mount", "-t", "tmpfs", "none", folder],
                               capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _private_mounts_work(), reason="needs `unshare -m` (a private mount namespace) for a node "
                    "that cannot see the store's folder")
def test_a_store_one_node_cannot_read_is_one_line(cluster, setup, tmp_path):
    """A third node whose view of the shared folder is an empty tmpfs, as a node without the NFS mount sees it."""
    root, model = setup
    shared = tmp_path / "shared"
    shared.mkdir()
    shutil.copytree(root / "one", shared / "store")
    _ray("start", "--address", cluster, "--num-cpus", "1", prefix=(
        "unshare", "-m", "--propagation", "private", "sh", "-c", f'mount -t tmpfs none "{shared}" && exec "$0" "$@"'))
    deadline = time.time() + 60
    while len([n for n in _alive_nodes(cluster)]) < 3 and time.time() < deadline:
        time.sleep(0.5)
    one_line_error(decrank(*encode_args(root, model, shared / "new"), "--ray", cluster, "--ray-workers", "3"),
                   "is not readable from Ray node")
    assert not (shared / "new").exists()
    proc = decrank("rerank", "--model", model, "--store", shared / "store", "--topics", root / "topics.tsv",
                   "--run", root / "run.txt", "--output", shared / "out.txt", "--ray", cluster, "--ray-workers", "3")
    one_line_error(proc, "cannot load the re-ranker")
    assert not (shared / "out.txt").exists()


def _alive_nodes(address: str) -> list:
    code = "import ray; ray.init(address=%r, logging_level='ERROR'); print(sum(n['Alive'] for n in ray.nodes()))"
    out = subprocess.run([sys.executable, "-c", code % address], env=ENV, capture_output=True, text=True, timeout=60)
    return list(range(int(out.stdout.strip() or 0)))
