"""The TensorFlow / Keras internals of kd_keras/_compat.py still exist (fails, naming the
hook, the day an upgrade removes one)."""

import keras
import tensorflow as tf

from kd_keras import _compat


def test_the_internal_hooks_kd_keras_uses_exist():
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2
    from tensorflow.python.distribute import multi_worker_util
    from tensorflow.python.eager import context

    assert hasattr(keras.Model, _compat.SYMBOLIC_BUILD), "keras.Model._maybe_symbolic_build"
    assert hasattr(coordination_config_pb2, "CoordinatedJob")
    assert hasattr(multi_worker_util, "coordination_leader")
    ctx = context.context()
    assert hasattr(ctx, "configure_coordination_service"), "context.configure_coordination_service"
    assert hasattr(ctx, "check_collective_ops_peer_health"), "context.check_collective_ops_peer_health"
    assert hasattr(ctx, "coordination_service")
    from tensorflow.python.distribute import collective_all_reduce_strategy as cars

    assert hasattr(cars.CollectiveAllReduceExtended, "_in_multi_worker_mode")
    assert not _compat.in_multi_worker_mode(tf.distribute.get_strategy())
