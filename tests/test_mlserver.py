"""A real Open Inference Protocol server: MLServer (``make install`` puts it in
``.venv-mlserver``), started on 127.0.0.1 with a small runtime of this test's own, queried
through the one Teacher wrapper over REST and gRPC (issue #25, item 1)."""

import json
import os
import socket
import subprocess
import time
import urllib.request

import numpy as np
import pytest
from conftest import ROOT
from test_teachers import SHAPE, W, images, softmax_teacher

from kd_keras.teachers import make_teacher

MLSERVER = os.environ.get("KD_KERAS_MLSERVER",
                          os.path.join(ROOT, ".venv-mlserver", "bin", "mlserver"))
RUNTIME = '''
import numpy as np
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class Softmax(MLModel):
    async def load(self) -> bool:
        self.w = np.load(__file__.replace("runtime.py", "w.npy"))
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        x = NumpyCodec.decode_input(payload.inputs[0])
        z = x.reshape(len(x), -1) @ self.w
        e = np.exp(z - z.max(1, keepdims=True))
        probs = (e / e.sum(1, keepdims=True)).astype(np.float32)
        return InferenceResponse(model_name=self.name,
                                 outputs=[NumpyCodec.encode_output("probabilities", probs)])
'''


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_an_mlserver_teacher_answers_through_the_one_wrapper(tmp_path):
    if not os.path.exists(MLSERVER):
        if os.environ.get("CI"):
            pytest.fail(f"{MLSERVER} is missing: make install builds it")
        pytest.skip(f"{MLSERVER} is missing: make install builds it")
    model = tmp_path / "toy"
    model.mkdir()
    (model / "runtime.py").write_text(RUNTIME)
    np.save(model / "w.npy", W)
    (model / "model-settings.json").write_text(json.dumps({
        "name": "toy", "implementation": "runtime.Softmax",
        "inputs": [{"name": "images", "datatype": "FP32", "shape": [-1, *SHAPE]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 5]}]}))
    port, grpc_port = _free_port(), _free_port()
    (tmp_path / "settings.json").write_text(json.dumps({
        "host": "127.0.0.1", "http_port": port, "grpc_port": grpc_port,
        "metrics_endpoint": None, "parallel_workers": 0}))
    proc = subprocess.Popen([MLSERVER, "start", str(tmp_path)], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/toy/ready",
                                            timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            assert proc.poll() is None and time.time() < deadline, "MLServer did not start"
            time.sleep(0.5)
        t = make_teacher(f"http://127.0.0.1:{port}/v2/models/toy", 5, image_shape=SHAPE,
                         batch_size=16, budget=40)
        x = images(40)
        np.testing.assert_allclose(t.query(x), softmax_teacher(x), atol=1e-5)
        assert t.paid == 40 and t.stats.requests == 3
        assert t.query(x).shape == (40, 5) and t.stats.cache_hits == 40  # cached: free
        g = make_teacher(f"grpc://127.0.0.1:{grpc_port}/v2/models/toy", 5, image_shape=SHAPE,
                         batch_size=16)  # inference.GRPCInferenceService, binary tensors
        np.testing.assert_allclose(g.query(x), softmax_teacher(x), atol=1e-5)
        assert g.paid == 40
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
