"""`--strategy multiworker` for real: two worker processes on 127.0.0.1, one TF_CONFIG each, the
same command, for the classifier and the generator. Both must finish, the chief's model must land
in --out untouched by the other worker, and both workers must end with the same weights."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest
from conftest import make_tiny_dataset
from helpers import REPO, load_script, make_classifier

from fashiongen import training
from fashiongen.distribute import weights_digest
from fashiongen.generator.generator import CONFIG_FILE, DECODER_FILE, ENCODER_FILE, Generator
from fashiongen.generator.prior import PRIOR_FILE
from fashiongen.labeler.labeler import CALIBRATION_FILE, MODEL_FILE, Labeler
from fashiongen.labeler.outliers import OUTLIER_FILE
from fashiongen.model_folder import CARD_FILE, SCHEMA_FILE

WORKERS = 2
TIMEOUT = 300  # seconds for both clusters at once: about 40 s on 2 idle cores, 3 minutes on very busy ones


def free_ports(n: int) -> list[int]:
    """n ports nothing listens on now (held open together, so they differ)."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


class Cluster:
    """`script argv` started as every worker of a local cluster, each with its own TF_CONFIG, image
    cache and temporary folder (as on separate machines) and the same command."""

    def __init__(self, script: str, argv: list[str], root: Path, ports: list[int]) -> None:
        self.root = root
        addresses = [f"127.0.0.1:{port}" for port in ports]
        self.processes = []
        for index in range(WORKERS):
            (root / f"tmp-{index}").mkdir()
            tf_config = json.dumps({"cluster": {"worker": addresses}, "task": {"type": "worker", "index": index}})
            env = {**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2",
                   "FASHIONGEN_CACHE_DIR": str(root / f"cache-{index}"), "TMPDIR": str(root / f"tmp-{index}")}
            with open(root / f"worker-{index}.out", "w") as out, open(root / f"worker-{index}.err", "w") as err:
                self.processes.append(subprocess.Popen([sys.executable, str(REPO / "scripts" / script), *argv],
                                                       cwd=REPO, env=env, stdout=out, stderr=err))

    def wait(self, deadline: float) -> list[int | None]:
        """Exit codes (None: still running at the deadline, then killed)."""
        codes = []
        for process in self.processes:
            try:
                codes.append(process.wait(timeout=max(0.1, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                codes.append(None)
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        return codes

    def stdout(self, index: int) -> str:
        return (self.root / f"worker-{index}.out").read_text()

    def stderr_tails(self) -> str:
        return "\n".join(f"--- worker {i} stderr:\n{(self.root / f'worker-{i}.err').read_text()[-2500:]}"
                         for i in range(WORKERS))


def common_argv(root: Path, data_dir: Path) -> list[str]:
    # 10 training rows, 4 per global batch: 3 steps of 2 rows per worker (the last 1), then validation
    return ["--data-dir", str(data_dir), "--out", str(root / "out"), "--run-dir", str(root / "run"),
            "--strategy", "multiworker", "--epochs", "1", "--batch-size", "4", "--quiet"]


@pytest.fixture(scope="module")
def clusters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Cluster, list[int | None]]]:
    """Both models trained at once (two clusters of two workers), to keep the wall time down."""
    data_dir = make_tiny_dataset(tmp_path_factory.mktemp("data") / "fashion-small")
    make_classifier(data_dir, data_dir.parent / "classifier")
    roots = {kind: tmp_path_factory.mktemp(kind) for kind in ("classifier", "generator")}
    ports = free_ports(2 * WORKERS)
    started = {
        "classifier": Cluster("train_classifier.py", common_argv(roots["classifier"], data_dir), roots["classifier"],
                              ports[:WORKERS]),
        "generator": Cluster("train_generator.py", common_argv(roots["generator"], data_dir)
                             + ["--classifier", str(data_dir.parent / "classifier")], roots["generator"],
                             ports[WORKERS:]),
    }
    deadline = time.monotonic() + TIMEOUT
    return {kind: (cluster, cluster.wait(deadline)) for kind, cluster in started.items()}


def finished_cluster(clusters, kind: str) -> Cluster:
    cluster, codes = clusters[kind]
    assert None not in codes, f"not finished within {TIMEOUT} s: {codes}\n{cluster.stderr_tails()}"
    assert codes == [0] * WORKERS, f"exit codes {codes}\n{cluster.stderr_tails()}"
    return cluster


def printed_digest(stdout: str) -> str:
    found = re.findall(r"weights sha256 ([0-9a-f]{64})", stdout)
    assert len(found) == 1, stdout[-2000:]
    return found[0]


def assert_only_the_chief_kept_files(cluster: Cluster, model_files: set[str]) -> None:
    root = cluster.root
    assert {p.name for p in (root / "out").iterdir()} == model_files
    assert (root / "run" / training.BEST_WEIGHTS).is_file()
    # the other worker saved into its temporary folder, and deleted it at exit (only ours: Chromium,
    # which exports the confusion figures, may leave its own .org.chromium.* files on a loaded machine)
    assert f"saved {root / 'tmp-1'}" in cluster.stdout(1)
    assert list((root / "tmp-1").glob("fashiongen-worker-*")) == []


def test_classifier_on_two_workers(clusters) -> None:
    cluster = finished_cluster(clusters, "classifier")
    out = cluster.root / "out"
    chief, other = (printed_digest(cluster.stdout(i)) for i in range(WORKERS))
    # every worker ends with the same weights (BatchNormalization's statistics too), and they are --out's
    assert other == chief
    assert weights_digest(Labeler.load(out).model) == chief
    assert "--strategy multiworker" in json.loads((out / CARD_FILE).read_text())["command"]
    # with the calibration fitted after training (temperatures, the not-a-product detector)
    assert_only_the_chief_kept_files(cluster, {MODEL_FILE, SCHEMA_FILE, CARD_FILE, CALIBRATION_FILE, OUTLIER_FILE})


def test_generator_on_two_workers(clusters) -> None:
    cluster = finished_cluster(clusters, "generator")
    chief, other = (printed_digest(cluster.stdout(i)) for i in range(WORKERS))
    assert other == chief
    saved = Generator.load(cluster.root / "out")
    assert weights_digest(saved.encoder, saved.decoder) == chief
    assert_only_the_chief_kept_files(cluster, {ENCODER_FILE, DECODER_FILE, CONFIG_FILE,
                                               SCHEMA_FILE, CARD_FILE, PRIOR_FILE})


@pytest.mark.parametrize("script", ["train_classifier.py", "train_generator.py"])
def test_resume_is_refused_with_multiworker(script: str, tmp_path: Path, capsys) -> None:
    # each worker but the chief would start over from nothing, and the cluster would wait forever
    with pytest.raises(SystemExit) as exited:
        load_script(REPO / "scripts" / script).main(common_argv(tmp_path, tmp_path) + ["--resume"])
    assert exited.value.code == 2
    assert "--resume does not work with --strategy multiworker" in capsys.readouterr().err
