"""Every private TensorFlow / Keras internal kd_keras uses, in one place.

Keras is pinned in ``setup.py`` to the version these were measured with, and
``tests/test_compat.py`` fails the day one of them disappears, naming it.

- Keras 3's ``Trainer._maybe_symbolic_build`` (kd_keras.strategy.MultiWorkerFit skips it for
  a built model; keras-team/keras#20585).
- ``strategy.extended._in_multi_worker_mode()`` of MultiWorkerMirroredStrategy.
- TF's eager context: ``configure_coordination_service`` (no public setter for the
  heartbeat timeout) and ``check_collective_ops_peer_health`` (what MWMS itself uses).
"""

from __future__ import annotations

import tensorflow as tf

SYMBOLIC_BUILD = "_maybe_symbolic_build"  # the keras.Model method MultiWorkerFit overrides


def in_multi_worker_mode(strategy: tf.distribute.Strategy) -> bool:
    """Whether ``strategy`` spans more than one worker process."""
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def configure_coordination_service(spec: tf.train.ClusterSpec, jobs: list[str],
                                   heartbeat_ms: int) -> None:
    """Sets up TF's coordination service for ``jobs`` of ``spec`` with a heartbeat timeout,
    as MultiWorkerMirroredStrategy would (unless the context already has one)."""
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    if context.context().coordination_service:
        return
    coordinated = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=spec.num_tasks(job))
                   for job in jobs]
    context.context().configure_coordination_service(
        service_type="standalone", service_leader=multi_worker_util.coordination_leader(spec),
        coordinated_jobs=coordinated, heartbeat_timeout_in_ms=int(heartbeat_ms))


def check_peer_health(task: str, timeout_ms: int) -> None:
    """Raises UnavailableError if ``task``'s process is gone, DeadlineExceededError if it
    does not answer within ``timeout_ms``."""
    from tensorflow.python.eager import context

    context.context().check_collective_ops_peer_health(task, timeout_in_ms=int(timeout_ms))
