"""One ``--strategy`` flag to choose how training is distributed."""

from __future__ import annotations

import time
from typing import Callable, Optional

import keras
import numpy as np
import tensorflow as tf

from kd_keras import _compat
from kd_keras.errors import ConfigError

STRATEGIES = ("mirrored", "multi_worker", "default")


def get_strategy(name: str = "mirrored",
                 heartbeat_seconds: float = 60.0) -> tf.distribute.Strategy:
    """``mirrored``: mirrored over all local accelerators; ``multi_worker``: workers from
    TF_CONFIG; ``default``: no distribution (the current default strategy).

    ``heartbeat_seconds`` (multi_worker only): how long a worker may go unheard before the
    others give up on it (TF's own default is 10 s; see ``configure_heartbeat``).

    With fewer than two local accelerators (a CPU-only machine) there is nothing to mirror
    over, and ``mirrored`` gives the default strategy: the same one-replica arithmetic
    without MirroredStrategy's per-step cost (measured about 2x on the student here,
    bench/results/speed_levers.jsonl)."""
    if name == "mirrored":
        if len(tf.config.list_logical_devices("GPU")) < 2:
            return tf.distribute.get_strategy()
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        configure_heartbeat(heartbeat_seconds)
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except tf.errors.UnknownError as e:
            if "Could not start gRPC server" not in str(e):
                raise
            raise ConfigError(f"this worker could not listen on {own_address()} (its address "
                              "in TF_CONFIG): the port is taken or the address is not this "
                              "machine's; free it or name another in every worker's "
                              "TF_CONFIG, then start every worker again") from None
    if name == "default":
        return tf.distribute.get_strategy()
    raise ConfigError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")


def own_address() -> str:
    """This task's address as TF_CONFIG names it, with its task (e.g. ``worker 0``)."""
    cluster = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    try:
        address = cluster.cluster_spec().task_address(cluster.task_type, cluster.task_id)
    except (KeyError, ValueError, TypeError):
        address = "?"
    return f"{address}, {cluster.task_type} {cluster.task_id}"


def configure_heartbeat(heartbeat_seconds: float) -> None:
    """Sets the heartbeat timeout of TF's coordination service before a multi-worker
    strategy starts it.

    TF declares a worker dead after 10 s without a heartbeat and aborts every worker's
    collectives. A worker that is only paused that long (a loaded machine, a suspended VM)
    then ends the whole run, answers already paid for and all: seen once in CI. The setting
    is what MultiWorkerMirroredStrategy would configure itself, with a longer timeout; a
    worker that really died is still found, ``heartbeat_seconds`` later."""
    if not heartbeat_seconds > 0:
        raise ConfigError(f"heartbeat_seconds must be > 0, got {heartbeat_seconds}")
    cluster = tf.distribute.cluster_resolver.TFConfigClusterResolver()
    spec = cluster.cluster_spec()
    if cluster.task_type not in ("chief", "worker"):
        return  # not a task the strategy coordinates
    _compat.configure_coordination_service(
        spec, [job for job in ("chief", "worker") if job in spec.jobs],
        int(heartbeat_seconds * 1000))


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process is the chief: worker 0 (or the chief task) of a multi-worker
    cluster, or the only process otherwise."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and not has_chief


class ChiefLost(tf.errors.UnavailableError):
    """The chief worker's process is gone (it no longer accepts connections)."""


def chief_watch(strategy: tf.distribute.Strategy,
                every_seconds: float = 5.0) -> Optional[Callable[[], None]]:
    """For a non-chief worker, a check to call while it waits for the chief's answers or
    training set; None for the chief or a single process.

    The check raises :class:`ChiefLost` once the chief's process refuses connections (it
    died), so the wait ends within seconds instead of after ``--follow_seconds`` (an hour
    by default: a failed test once left a worker waiting so). A chief that is only slow or
    paused is still waited for. Asks TF's collective runtime at most every ``every_seconds``.
    """
    if is_chief(strategy) or not in_multi_worker_mode(strategy):
        return None
    jobs = strategy.cluster_resolver.cluster_spec().jobs
    task = f"/job:{'chief' if 'chief' in jobs else 'worker'}/replica:0/task:0"
    last = [float("-inf")]

    def check() -> None:
        if time.monotonic() - last[0] < every_seconds:
            return
        try:
            _compat.check_peer_health(task, int(every_seconds * 1000))
        except tf.errors.UnavailableError as e:
            message = getattr(e, "message", str(e)).strip()  # the CLI shows its first line
            raise ChiefLost(None, None, f"the chief worker {task} is gone: {message}") from None
        except tf.errors.DeadlineExceededError:
            pass  # slow or paused, not gone: keep waiting
        last[0] = time.monotonic()

    return check


in_multi_worker_mode = _compat.in_multi_worker_mode


class MultiWorkerFit:
    """Mixin that lets a custom-``train_step`` model ``fit`` under multi-worker strategies.

    Keras 3's ``fit`` stumbles twice under MultiWorkerMirroredStrategy with more than one
    worker (keras-team/keras#20585): it reduces one input batch across replicas to build
    the model symbolically, and it reduces scalar logs with ``axis=0``. Models using this
    mixin are built (optimizer included, see :func:`compile_built`) before ``fit``, so the
    first step is skipped, and they return their logs through :meth:`logs`, which gives
    them a length-1 axis in multi-worker mode. On one device nothing changes.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):  # _compat.SYMBOLIC_BUILD
        if self.built and (self.optimizer is None or self.optimizer.built):
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def logs(self) -> dict:
        """``{metric name: result}`` for ``train_step``/``test_step`` to return."""
        reshape = in_multi_worker_mode(tf.distribute.get_strategy())
        return {m.name: tf.reshape(m.result(), [1]) if reshape else m.result()
                for m in self.metrics}


def compile_built(model: keras.Model, optimizer: keras.optimizers.Optimizer, *,
                  jit_compile: bool = False, steps_per_execution: int = 1) -> None:
    """Compiles ``model`` (a MultiWorkerFit) and builds its optimizer's slots now, in the
    current strategy scope. ``jit_compile`` (XLA) and ``steps_per_execution`` (several
    steps per call into TensorFlow) cut the per-step overhead of small models. Keras's
    multi-step loop fails under multi-worker training, so there it runs one step per call."""
    if in_multi_worker_mode(tf.distribute.get_strategy()):
        steps_per_execution = 1
    model.compile(optimizer=optimizer, jit_compile=jit_compile,
                  steps_per_execution=steps_per_execution)
    # compile may wrap the optimizer (a LossScaleOptimizer under mixed_float16): build that.
    model.optimizer.build(model.trainable_variables)


def _all_reduce_sum(strategy: tf.distribute.Strategy, value: np.ndarray,
                    first_replica_only: bool) -> np.ndarray:
    """The sum over every replica of the cluster of ``value`` (of the first replica's alone
    when ``first_replica_only``: the others give zeros, so the sum is its value exactly)."""
    x = tf.constant(value)

    def per_replica():
        context = tf.distribute.get_replica_context()
        mine = x
        if first_replica_only:
            first = tf.equal(context.replica_id_in_sync_group, 0)
            mine = tf.where(first, x, tf.zeros_like(x))
        return context.all_reduce(tf.distribute.ReduceOp.SUM, mine)

    result = tf.function(lambda: strategy.run(per_replica))()
    return strategy.experimental_local_results(result)[0].numpy()


def from_chief(strategy: tf.distribute.Strategy, value: np.ndarray) -> np.ndarray:
    """The chief's ``value`` on every worker (``value`` itself on one process): a decision
    each worker computes (answers of models trained in sync, a threshold applied to them)
    taken once for all, so that no worker trains on another set than the others."""
    if not in_multi_worker_mode(strategy):
        return value
    return _all_reduce_sum(strategy, np.asarray(value), first_replica_only=True)


def all_workers(strategy: tf.distribute.Strategy, flag: bool) -> bool:
    """Whether ``flag`` holds on every worker (``flag`` on one process): e.g. every worker has
    kept what an interrupted run made, so all skip making it again, or none does."""
    if not in_multi_worker_mode(strategy):
        return bool(flag)
    total = _all_reduce_sum(strategy, np.float32(1.0 if flag else 0.0), first_replica_only=False)
    return int(round(float(total))) == strategy.num_replicas_in_sync
