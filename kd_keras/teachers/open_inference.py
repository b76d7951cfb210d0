"""The Open Inference Protocol (KServe v2) over REST: Triton, KServe, Seldon MLServer and
OpenVINO Model Server speak it.

``http(s)://HOST:PORT/v2/models/NAME[/versions/V]``: the model's metadata
(``GET …/v2/models/NAME``) names its input and says its datatype, once, before the first
image is sent; each batch is ``POST …/infer`` with ``{"inputs": [{"name", "shape",
"datatype": "FP32", "data": [...]}]}``, and the answer's ``outputs`` are read back into arrays
(one output: an array; several, e.g. top-k classes and scores: a dict by name). The
transport (deadlines, tokens, redirects, size caps, Ctrl-C, masking) is the REST one's, and
budget, cache and retries are the one Teacher wrapper's.
"""

from __future__ import annotations

import threading
from typing import Optional

import numpy as np

from kd_keras.errors import BadAnswerError, TeacherError
from kd_keras.teachers.backends import JSONDecodeError, HttpBackend, dumps, loads

DATATYPES = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "INT64": np.int64,
             "INT32": np.int32, "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_}


def is_v2(url: str) -> bool:
    """Whether a REST URL names an Open Inference Protocol model."""
    return "/v2/models/" in url


class OpenInferenceBackend(HttpBackend):
    """An Open Inference Protocol model over REST (see the module doc)."""

    def __init__(self, url: str, token_env: Optional[str] = None, timeout: float = 30.0,
                 encoding: str = "none"):
        super().__init__(url.rstrip("/").removesuffix("/infer"), token_env=token_env,
                         timeout=timeout)
        if encoding != "none":  # BYTES inputs need the binary extension: not spoken yet
            self.encoding = "unsupported"
        self._path = self._path[:-len(":predict")] + "/infer"
        self._metadata_path = self._path[:-len("/infer")]
        self.identity = f"v2:{self.url}"
        self.input_name: Optional[str] = None
        self._lock = threading.Lock()

    def _input(self) -> str:
        """The model's one input, from its metadata (asked once)."""
        with self._lock:
            if self.input_name is None:
                status, headers, body = self._exchange(b"", method="GET",
                                                       path=self._metadata_path)
                self.check_status(status, headers, body)
                try:
                    inputs = loads(body)["inputs"]
                except (JSONDecodeError, KeyError, TypeError):
                    raise TeacherError(f"teacher at {self.url} answered no model metadata "
                                       "(GET …/v2/models/NAME): is it an Open Inference "
                                       "Protocol server?") from None
                if len(inputs) != 1:
                    raise TeacherError(f"teacher at {self.url} takes inputs "
                                       f"{[i.get('name') for i in inputs]}; kd_keras sends one")
                if inputs[0].get("datatype") == "BYTES":
                    raise TeacherError(f"teacher at {self.url} takes encoded images (BYTES); "
                                       "kd_keras sends FP32 tensors over this protocol")
                self.input_name = inputs[0]["name"]
            return self.input_name

    def _body(self, images: np.ndarray) -> bytes:
        images = np.ascontiguousarray(images, np.float32)
        return dumps({"inputs": [{"name": self._input(), "shape": list(images.shape),
                                  "datatype": "FP32", "data": images.reshape(-1)}]})

    def predict(self, images):
        status, headers, body = self._exchange(self._body(images))
        self.check_status(status, headers, body)
        try:
            answer = loads(body)
            outputs = answer["outputs"]
        except (JSONDecodeError, KeyError, TypeError):
            raise BadAnswerError(f"teacher at {self.url} answered no 'outputs': "
                                 f"{self._mask(repr(body[:80]))}") from None
        arrays = {}
        for out in outputs:
            try:
                dtype = DATATYPES[out["datatype"]]
                arrays[out["name"]] = np.asarray(out["data"], dtype).reshape(out["shape"])
            except (KeyError, TypeError, ValueError):
                raise BadAnswerError(f"teacher at {self.url} answered an output that is not "
                                     f"a numeric tensor: {self._mask(repr(out)[:80])}") from None
        if not arrays:
            raise BadAnswerError(f"teacher at {self.url} answered no output tensor")
        return next(iter(arrays.values())) if len(arrays) == 1 else arrays


__all__ = ["OpenInferenceBackend", "is_v2"]
