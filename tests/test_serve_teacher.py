"""``bin/serve_teacher.py`` survives malformed requests (issue #21, item 6)."""

import http.client
import json
import os
import subprocess
import sys
import time

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from conftest import ROOT


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A convolutional SavedModel (a wrong-rank tensor aborted TF's oneDNN kernel) served
    over REST and gRPC with a token; yields (rest host, rest port, grpc target, process)."""
    import keras

    from kd_keras.export import export_classifier

    d = tmp_path_factory.mktemp("served")
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Flatten()(keras.layers.Conv2D(4, 3)(inputs))
    export_classifier(keras.Model(inputs, keras.layers.Dense(5)(x)), str(d), "sm")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "bin", "serve_teacher.py"),
                             f"--savedmodel={d}/sm", "--port=0", "--grpc_port=0",
                             "--model_name=t", "--token_env=SERVE_TOKEN"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, SERVE_TOKEN="s3cret", TF_CPP_MIN_LOG_LEVEL="2"))
    try:
        rest = proc.stdout.readline().split(" at ")[1].split(":predict")[0]
        target = proc.stdout.readline().split(" at ")[1].strip().split("//")[1].split("/")[0]
        host, port = rest.split("//")[1].split("/")[0].split(":")
        yield host, int(port), target, proc
    finally:
        proc.kill()
        proc.wait()


def _post(host, port, body=b"", headers=None):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.putrequest("POST", "/v1/models/t:predict")
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        if body:
            conn.send(body)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


AUTH = {"Authorization": "Bearer s3cret"}


@pytest.mark.slow
def test_malformed_requests_get_an_error_and_the_server_lives(served):
    host, port, target, proc = served
    for shape in [(2, 36), (2, 6, 6), (2, 6, 6, 1, 1), (2, 6, 6, 3)]:
        body = json.dumps({"instances": np.zeros(shape).tolist()}).encode()
        status, answer = _post(host, port, body, {**AUTH, "Content-Length": str(len(body))})
        assert status == 400 and b"takes float32" in answer, (shape, answer)
    status, _ = _post(host, port, b"{}", {**AUTH, "Content-Length": "abc"})
    assert status == 400
    start = time.time()  # announced 10 GB without a token: refused before any byte is read
    status, _ = _post(host, port, headers={"Content-Length": str(10 << 30)})
    assert status == 401 and time.time() - start < 5
    status, _ = _post(host, port, headers={**AUTH, "Content-Length": str(10 << 30)})
    assert status == 413

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "t"
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.zeros((2, 36), np.float32)))
    with pytest.raises(grpc.RpcError) as e:
        stub.Predict(request, metadata=[("authorization", "Bearer s3cret")], timeout=10)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    # still serving, both protocols
    good = json.dumps({"instances": np.zeros((2, 6, 6, 1)).tolist()}).encode()
    status, answer = _post(host, port, good, {**AUTH, "Content-Length": str(len(good))})
    assert status == 200 and np.asarray(json.loads(answer)["predictions"]).shape == (2, 5)
    request.inputs["images"].CopyFrom(tf.make_tensor_proto(np.zeros((2, 6, 6, 1), np.float32)))
    answer = stub.Predict(request, metadata=[("authorization", "Bearer s3cret")], timeout=10)
    assert proc.poll() is None and len(answer.outputs) == 1


@pytest.mark.slow
def test_serving_beyond_loopback_without_a_token_warns(tmp_path):
    from kd_keras.export import export_classifier
    import keras

    inputs = keras.Input((6, 6, 1))
    export_classifier(keras.Model(inputs, keras.layers.Dense(5)(keras.layers.Flatten()(inputs))),
                      str(tmp_path), "sm")
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "bin", "serve_teacher.py"),
                             f"--savedmodel={tmp_path}/sm", "--port=0", "--host=0.0.0.0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    try:
        assert "serving" in proc.stdout.readline()
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert "warning: serving on 0.0.0.0 without --token_env" in err
