"""A real Open Inference Protocol server for tests and benchmarks: MLServer (``make
install`` puts it in ``.venv-mlserver``) serving a linear softmax teacher (x @ W) through a
small NumPy runtime, started on 127.0.0.1 with free ports."""

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.request
from typing import Iterator

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
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


@contextlib.contextmanager
def serving(folder: str, w: np.ndarray, shape, name: str = "toy",
            start_seconds: float = 90.0) -> Iterator[tuple[str, str]]:
    """MLServer serving softmax(x @ ``w``) for images of ``shape`` as model ``name``, its
    files under ``folder``; yields the model's REST and gRPC specs
    (``http://127.0.0.1:P/v2/models/NAME``, ``grpc://127.0.0.1:Q/v2/models/NAME``)."""
    model = os.path.join(folder, name)
    os.makedirs(model, exist_ok=True)
    with open(os.path.join(model, "runtime.py"), "w") as f:
        f.write(RUNTIME)
    np.save(os.path.join(model, "w.npy"), w)
    with open(os.path.join(model, "model-settings.json"), "w") as f:
        json.dump({"name": name, "implementation": "runtime.Softmax",
                   "inputs": [{"name": "images", "datatype": "FP32", "shape": [-1, *shape]}],
                   "outputs": [{"name": "probabilities", "datatype": "FP32",
                                "shape": [-1, int(w.shape[1])]}]}, f)
    port, grpc_port = _free_port(), _free_port()
    with open(os.path.join(folder, "settings.json"), "w") as f:
        json.dump({"host": "127.0.0.1", "http_port": port, "grpc_port": grpc_port,
                   "metrics_endpoint": None, "parallel_workers": 0}, f)
    proc = subprocess.Popen([MLSERVER, "start", folder], cwd=folder,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + start_seconds
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/{name}/ready",
                                            timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("MLServer did not start")
            time.sleep(0.5)
        yield (f"http://127.0.0.1:{port}/v2/models/{name}",
               f"grpc://127.0.0.1:{grpc_port}/v2/models/{name}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
