"""Students for devices: TFLite (LiteRT) files converted from the exported SavedModel, and
checked with LiteRT's own interpreter on the eval images.

Formats are plug-ins of :data:`TFLITE_FORMATS` (``float``, ``int8``): a converter from the
SavedModel folder and a few calibration images to the file's bytes. ``int8`` is full-integer:
every op in int8, input and output int8 too (quantize images with the input's scale and zero
point, as :func:`tflite_predict` does), calibrated on a sample of the run's own training
images, so it needs no extra data and no answers.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from kd_keras.data.rows import unit_float
from kd_keras.errors import ConfigError
from kd_keras.registry import Registry

TFLITE_FORMATS = Registry("TFLite format")
FILES = {"float": "student.tflite", "int8": "student_int8.tflite"}


def _converter(savedmodel: str):
    import tensorflow as tf

    return tf.lite.TFLiteConverter.from_saved_model(savedmodel)


@TFLITE_FORMATS.register("float")
def float_model(savedmodel: str, calibration: np.ndarray) -> bytes:
    """The student as it is, in float32."""
    return _converter(savedmodel).convert()


@TFLITE_FORMATS.register("int8")
def int8_model(savedmodel: str, calibration: np.ndarray) -> bytes:
    """Full-integer int8, input and output included, calibrated on ``calibration``."""
    import tensorflow as tf

    converter = _converter(savedmodel)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([image[None]] for image in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def parse_formats(text: str) -> list[str]:
    """``"float,int8"`` -> the formats named (each must be registered); ``""`` -> none."""
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    for name in names:
        TFLITE_FORMATS.lookup(name)
    if len(set(names)) != len(names):
        raise ConfigError(f"export.tflite names a format twice: {text!r}")
    return names


def check_runtime() -> None:
    """LiteRT's interpreter is needed to check the files: refused before any answer."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        raise ConfigError("export.tflite needs LiteRT: pip install ai-edge-litert") from None


def write_tflite(savedmodel: str, formats: Sequence[str], calibration: np.ndarray,
                 out_dir: str) -> dict[str, str]:
    """Converts the SavedModel to each format; returns {format: path written}."""
    written = {}
    for name in formats:
        data = TFLITE_FORMATS.lookup(name)(savedmodel, np.asarray(calibration, np.float32))
        path = os.path.join(out_dir, FILES[name])
        with open(path + ".partial", "wb") as f:
            f.write(data)
        os.replace(path + ".partial", path)
        written[name] = path
    return written


def tflite_predict(path: str, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Class scores of a TFLite file for float images in [0, 1], run by LiteRT's
    interpreter (int8 files: images quantized, scores dequantized)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scores = []
    for i in range(0, len(images), batch_size):
        batch = unit_float(images[i:i + batch_size])
        interpreter.resize_tensor_input(inp["index"], list(batch.shape))
        interpreter.allocate_tensors()
        if inp["dtype"] == np.int8:
            scale, zero = inp["quantization"]
            batch = np.clip(np.round(batch / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], batch)
        interpreter.invoke()
        result = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        if out["dtype"] == np.int8:
            scale, zero = out["quantization"]
            result = (result.astype(np.float32) - zero) * scale
        scores.append(result)
    return np.concatenate(scores)


def tflite_report(files: dict[str, str], images: np.ndarray, labels, student_scores) -> dict:
    """Per file: its size, and (with eval images) its accuracy and its agreement with the
    float student (the SavedModel's top-1)."""
    report = {}
    for name, path in files.items():
        entry = {"file": os.path.basename(path), "bytes": os.path.getsize(path)}
        if images is not None and len(images):
            top = tflite_predict(path, images).argmax(1)
            entry["agreement_with_student"] = float(np.mean(top == np.argmax(student_scores, 1)))
            if labels is not None:
                entry["accuracy"] = float(np.mean(top == labels))
        report[name] = entry
    return report
