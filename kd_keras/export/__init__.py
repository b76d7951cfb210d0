"""Exports classifiers for serving: a SavedModel that answers probabilities, plus .keras."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from kd_keras.workdir import Workdir


def with_softmax(logits_model: keras.Model) -> keras.Model:
    """Wraps a logits model so it answers class probabilities, as a teacher API would."""
    inputs = keras.Input(logits_model.input_shape[1:], name="images")
    outputs = keras.layers.Softmax(name="probabilities")(logits_model(inputs))
    return keras.Model(inputs, outputs, name=f"{logits_model.name}_probs")


def export_classifier(logits_model: keras.Model, workdir: Workdir | str, name: str) -> str:
    """Writes ``logits_model`` (+softmax) as the SavedModel ``workdir/name/`` and the logits
    model itself as ``workdir/name.keras``; returns the SavedModel's path.

    The SavedModel has a ``serve`` endpoint and a ``serving_default`` signature taking
    float32 images in [0, 1] and returning probabilities; the ``.keras`` file is for further
    training or fine-tuning. Only outputs a kd_keras run made are ever replaced (see
    :class:`kd_keras.workdir.Workdir`), and the old SavedModel survives a failed export.
    """
    wd = workdir if isinstance(workdir, Workdir) else Workdir(workdir)
    wd.check_outputs([name, name + ".keras"])
    path = wd.replace_dir(name, lambda tmp: with_softmax(logits_model).export(
        tmp, format="tf_saved_model", verbose=False))
    logits_model.save(wd.claim(name + ".keras"))
    return path


def load_serving(savedmodel_dir: str):
    """Loads an exported SavedModel; returns a function images -> probabilities (numpy)."""
    loaded = tf.saved_model.load(savedmodel_dir)
    fn = loaded.signatures["serving_default"]
    (key,) = fn.structured_input_signature[1].keys()

    def predict(images: np.ndarray) -> np.ndarray:
        out = fn(**{key: tf.convert_to_tensor(images, tf.float32)})
        return next(iter(out.values())).numpy()

    predict.loaded = loaded  # keep the trackable alive with the function
    return predict
