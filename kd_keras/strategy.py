"""One ``--strategy`` flag to choose how training is distributed."""

from __future__ import annotations

import keras
import tensorflow as tf

from kd_keras.errors import ConfigError

STRATEGIES = ("mirrored", "multi_worker", "default")


def get_strategy(name: str = "mirrored") -> tf.distribute.Strategy:
    """``mirrored``: mirrored over all local accelerators; ``multi_worker``: workers from
    TF_CONFIG; ``default``: no distribution (the current default strategy).

    With fewer than two local accelerators (a CPU-only machine) there is nothing to mirror
    over, and ``mirrored`` gives the default strategy: the same one-replica arithmetic
    without MirroredStrategy's per-step cost (measured about 2x on the student here,
    bench/results/speed_levers.jsonl)."""
    if name == "mirrored":
        if len(tf.config.list_logical_devices("GPU")) < 2:
            return tf.distribute.get_strategy()
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "default":
        return tf.distribute.get_strategy()
    raise ConfigError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")


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


def in_multi_worker_mode(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` spans more than one worker process."""
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


class MultiWorkerFit:
    """Mixin that lets a custom-``train_step`` model ``fit`` under multi-worker strategies.

    Keras 3's ``fit`` stumbles twice under MultiWorkerMirroredStrategy with more than one
    worker (keras-team/keras#20585): it reduces one input batch across replicas to build
    the model symbolically, and it reduces scalar logs with ``axis=0``. Models using this
    mixin are built (optimizer included, see :func:`compile_built`) before ``fit``, so the
    first step is skipped, and they return their logs through :meth:`logs`, which gives
    them a length-1 axis in multi-worker mode. On one device nothing changes.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
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
