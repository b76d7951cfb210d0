"""Students for devices: TFLite float and full-integer int8 files beside the SavedModel,
checked with LiteRT's interpreter (issue #25, item 4)."""

import json

import numpy as np
import pytest
from test_distill import tiny_config, toy_teacher

from kd_keras import data
from kd_keras.distill.run import run_fsbbt
from kd_keras.errors import ConfigError
from kd_keras.export.tflite import parse_formats, tflite_predict
from kd_keras.teachers import CallableBackend, Teacher


def test_a_run_writes_float_and_full_integer_students_and_reports_them(idx_dir, tmp_path):
    from ai_edge_litert.interpreter import Interpreter

    config = tiny_config(idx_dir)
    config.synthesis.sources, config.student.epochs = "real,mixup", 3
    config.export.tflite, config.export.calibration_images = "float,int8", 64
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    eval_set = data.load("fashion_mnist:test", (28, 28, 1), data_dir=idx_dir)
    teacher = Teacher(CallableBackend(toy_teacher), 10)
    report = run_fsbbt(config, teacher, unlabeled, eval_set, str(tmp_path / "w"))
    # training and the eval sample (counted apart): nothing more for the export
    assert teacher.stats.sent == 400 and report["eval_queries"] == 200
    tfl = report["tflite"]
    assert set(tfl) == {"float", "int8"} and tfl["int8"]["bytes"] < tfl["float"]["bytes"]
    assert tfl["float"]["agreement_with_student"] >= 0.99  # the same function in float
    assert tfl["int8"]["agreement_with_student"] >= 0.9
    assert abs(tfl["int8"]["accuracy"] - report["student_accuracy"]) <= 0.1
    assert json.loads((tmp_path / "w" / "report.json").read_text())["tflite"] == tfl
    quantized = Interpreter(model_path=str(tmp_path / "w" / "student_int8.tflite"))
    assert quantized.get_input_details()[0]["dtype"] == np.int8  # full-integer, I/O included
    assert quantized.get_output_details()[0]["dtype"] == np.int8
    assert all(d["dtype"] != np.float32 for d in quantized.get_tensor_details()
               if d["name"] and d["index"] not in (quantized.get_input_details()[0]["index"],))
    scores = tflite_predict(str(tmp_path / "w" / "student.tflite"), eval_set.images[:5])
    np.testing.assert_allclose(scores.sum(1), 1, atol=1e-4)  # probabilities, as the SavedModel


def test_unknown_formats_are_refused_before_any_answer(idx_dir, tmp_path):
    with pytest.raises(ConfigError, match="unknown TFLite format 'fp16'"):
        parse_formats("float,fp16")
    config = tiny_config(idx_dir)
    config.export.tflite = "int4"
    teacher = Teacher(CallableBackend(toy_teacher), 10)
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    with pytest.raises(ConfigError, match="unknown TFLite format 'int4'"):
        run_fsbbt(config, teacher, unlabeled, None, str(tmp_path / "w"))
    assert teacher.stats.requests == 0
