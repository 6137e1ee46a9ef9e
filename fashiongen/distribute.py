"""Training on several devices or machines: the tf.distribute strategy of `--strategy`, the chief's folders, and keeping the replicas' statistics in step."""

from __future__ import annotations

import argparse
import atexit
import hashlib
import shutil
import tempfile
from pathlib import Path

import keras
import numpy as np

from fashiongen.errors import TrainingError


def make_strategy(name: str, cpu_devices: int | None = None):
    """`default` (one device: the GPU when TensorFlow sees one), `mirrored` (all local GPUs, else
    the logical CPUs) or `multiworker` (the machines in TF_CONFIG)."""
    import tensorflow as tf

    if cpu_devices:
        cpu = tf.config.list_physical_devices("CPU")[0]
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
        except RuntimeError as error:  # TensorFlow already ran something in this process
            raise TrainingError(f"--cpu-devices must be set before TensorFlow starts ({error}); "
                                "run the script in a fresh process") from None
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        return _multi_worker_strategy()
    if name != "default":
        raise TrainingError(f"unknown strategy {name!r}; valid: default, mirrored, multiworker")
    return tf.distribute.get_strategy()


def _multi_worker_strategy():
    """MultiWorkerMirroredStrategy over the TF_CONFIG cluster, made fit for Keras 3's fit()."""
    import tensorflow as tf

    class MultiWorkerStrategy(tf.distribute.MultiWorkerMirroredStrategy):
        """Two Keras 3 calls that this strategy's reduce() rejects (keras-team/keras#20585)."""

        def reduce(self, reduce_op, value, axis=None):
            base = super().reduce

            def one(part):
                # fit() reduces each step's scalar logs with axis=0 ("Invalid reduction dimension 0
                # for input with 0 dimensions"): a scalar has no batch axis, average the replicas
                rank = getattr(self.experimental_local_results(part)[0], "shape", tf.TensorShape(None)).rank
                return base(reduce_op, part, None if rank == 0 else axis)

            # fit() reduces a whole (x, y, weights) batch to build the model ("Attempt to convert a
            # value (PerReplica...) to a Tensor"): reduce its parts one by one
            return tf.nest.map_structure(one, value)

    return MultiWorkerStrategy()


def is_chief(strategy) -> bool:
    """False only on the workers of a multi-worker cluster other than the chief (worker 0)."""
    return bool(strategy.extended.should_checkpoint)


def use_worker_folders(strategy, args: argparse.Namespace) -> None:
    """On a non-chief worker, point args.out and args.run_dir at a temporary folder deleted at exit.

    TF's multi-worker convention: every worker runs the same saves (a save may read variables
    that the workers synchronise together), and only the chief's copy is kept. So the other
    workers never overwrite the chief's model or run folder on a shared disk."""
    if is_chief(strategy):
        return
    temporary = Path(tempfile.mkdtemp(prefix="fashiongen-worker-"))
    atexit.register(shutil.rmtree, temporary, ignore_errors=True)
    args.out, args.run_dir = temporary / "out", temporary / "run"


def weights_digest(*models: keras.Model) -> str:
    """sha256 of the models' weights (shapes and values, in order): equal on every worker of a run."""
    digest = hashlib.sha256()
    for model in models:
        for weight in model.weights:
            value = np.ascontiguousarray(keras.ops.convert_to_numpy(weight))
            digest.update(f"{value.dtype}{value.shape}".encode())
            digest.update(value.tobytes())
    return digest.hexdigest()


def report_worker(strategy, *models: keras.Model) -> None:
    """On a worker of a multi-worker cluster, print its role and the digest of its final weights
    (the run went right when every worker prints the same digest)."""
    resolver = strategy.cluster_resolver
    if resolver is None or not resolver.task_type:
        return
    role = "the chief" if is_chief(strategy) else "not the chief: its files are deleted"
    print(f"worker {resolver.task_type} {resolver.task_id} ({role}): weights sha256 {weights_digest(*models)}")


class ReplicaStatistics(keras.callbacks.Callback):
    """Average the non-trainable float weights (BatchNormalization's moving mean and variance) over
    all replicas before each validation and at each epoch end, so before any checkpoint. Keras 3
    updates them on each replica from that replica's part of the batch and never syncs them: each
    worker of a cluster would validate and save its own statistics (tf.keras averaged them on read)."""

    def __init__(self, strategy) -> None:
        super().__init__()
        self.strategy = strategy
        self.average = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        import tensorflow as tf

        variables = [w.value for w in self.model.non_trainable_weights if "float" in str(w.dtype)]

        @tf.function  # strategy.run outside a graph is slow (and TensorFlow warns)
        def average() -> None:
            local = self.strategy.run(lambda: [tf.identity(v) for v in variables])
            for variable, value in zip(variables, local):
                variable.assign(self.strategy.reduce("MEAN", value, axis=None))

        self.average = average if variables else (lambda: None)

    def on_test_begin(self, logs: dict | None = None) -> None:
        self.average()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.average()
