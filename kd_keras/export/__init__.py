"""Exports classifiers for serving: a SavedModel that answers probabilities, plus .keras."""

from __future__ import annotations

import os
import shutil

import keras
import numpy as np
import tensorflow as tf


def with_softmax(logits_model: keras.Model) -> keras.Model:
    """Wraps a logits model so it answers class probabilities, as a teacher API would."""
    inputs = keras.Input(logits_model.input_shape[1:], name="images")
    outputs = keras.layers.Softmax(name="probabilities")(logits_model(inputs))
    return keras.Model(inputs, outputs, name=f"{logits_model.name}_probs")


def export_classifier(logits_model: keras.Model, savedmodel_dir: str, keras_path: str) -> None:
    """Writes ``logits_model`` (+softmax) as a SavedModel and as a ``.keras`` file.

    The SavedModel has a ``serve`` endpoint and a ``serving_default`` signature taking
    float32 images in [0, 1] and returning probabilities; the ``.keras`` file holds the
    logits model itself, for further training or fine-tuning.
    """
    if os.path.exists(savedmodel_dir):
        shutil.rmtree(savedmodel_dir)
    os.makedirs(os.path.dirname(os.path.abspath(keras_path)), exist_ok=True)
    with_softmax(logits_model).export(savedmodel_dir, format="tf_saved_model", verbose=False)
    logits_model.save(keras_path)


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
