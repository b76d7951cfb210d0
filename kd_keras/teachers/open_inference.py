"""The Open Inference Protocol (KServe v2) over REST and gRPC: Triton, KServe, Seldon
MLServer and OpenVINO Model Server speak it. gRPC: ``grpc(s)://HOST:PORT/v2/models/NAME``
(:class:`OpenInferenceGrpcBackend`, binary ``raw_input_contents``). REST:

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
from kd_keras.teachers.backends import GrpcBackend, HttpBackend, JSONDecodeError, dumps, loads

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




def _messages() -> dict:
    """The protocol's gRPC messages kd_keras uses (``inference`` package, field numbers of
    the Open Inference Protocol), built at run time: no generated code to ship."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="kd_keras_open_inference.proto",
                                              package="inference", syntax="proto3")

    def message(parent, name, fields):
        m = parent.add()
        m.name = name
        for number, field, kind, repeated, type_name in fields:
            f = m.field.add(name=field, number=number, type=kind,
                            label=F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL)
            if type_name:
                f.type_name = type_name
        return m

    S, I64, B, MSG = F.TYPE_STRING, F.TYPE_INT64, F.TYPE_BYTES, F.TYPE_MESSAGE
    tensor = [(1, "name", S, False, None), (2, "datatype", S, False, None),
              (3, "shape", I64, True, None)]
    message(file.message_type, "ModelMetadataRequest",
            [(1, "name", S, False, None), (2, "version", S, False, None)])
    meta = message(file.message_type, "ModelMetadataResponse",
                   [(1, "name", S, False, None), (2, "versions", S, True, None),
                    (3, "platform", S, False, None),
                    (4, "inputs", MSG, True, ".inference.ModelMetadataResponse.TensorMetadata"),
                    (5, "outputs", MSG, True, ".inference.ModelMetadataResponse.TensorMetadata")])
    message(meta.nested_type, "TensorMetadata", tensor)
    message(file.message_type, "InferTensorContents",
            [(2, "int_contents", F.TYPE_INT32, True, None), (3, "int64_contents", I64, True, None),
             (6, "fp32_contents", F.TYPE_FLOAT, True, None),
             (7, "fp64_contents", F.TYPE_DOUBLE, True, None), (8, "bytes_contents", B, True, None)])
    contents = (5, "contents", MSG, False, ".inference.InferTensorContents")
    request = message(file.message_type, "ModelInferRequest",
                      [(1, "model_name", S, False, None), (2, "model_version", S, False, None),
                       (3, "id", S, False, None),
                       (5, "inputs", MSG, True, ".inference.ModelInferRequest.InferInputTensor"),
                       (7, "raw_input_contents", B, True, None)])
    message(request.nested_type, "InferInputTensor", tensor + [contents])
    response = message(file.message_type, "ModelInferResponse",
                       [(1, "model_name", S, False, None), (2, "model_version", S, False, None),
                        (3, "id", S, False, None),
                        (5, "outputs", MSG, True,
                         ".inference.ModelInferResponse.InferOutputTensor"),
                        (6, "raw_output_contents", B, True, None)])
    message(response.nested_type, "InferOutputTensor", tensor + [contents])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {m.name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"inference.{m.name}"))
            for m in file.message_type}


_CONTENTS = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT32": "int_contents",
             "INT64": "int64_contents"}


class OpenInferenceGrpcBackend(GrpcBackend):
    """The Open Inference Protocol's ``inference.GRPCInferenceService``:
    ``grpc(s)://HOST:PORT/v2/models/NAME[/versions/V]``; the input is sent as binary
    ``raw_input_contents`` (FP32), its name read once from ``ModelMetadata``."""

    def __init__(self, url: str, token_env: Optional[str] = None, timeout: float = 30.0,
                 signature_name: Optional[str] = None, encoding: str = "none"):
        super().__init__(url, token_env=token_env, timeout=timeout, encoding="none")
        if encoding != "none":  # BYTES inputs: not spoken yet
            self.encoding = "unsupported"
        self.identity = f"v2grpc:{self.url}"
        self._m = _messages()
        service = "/inference.GRPCInferenceService/"
        self._metadata_call = self._channel.unary_unary(
            service + "ModelMetadata", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self._m["ModelMetadataResponse"].FromString)
        self._infer_call = self._channel.unary_unary(
            service + "ModelInfer", request_serializer=lambda m: m.SerializeToString(),
            response_deserializer=self._m["ModelInferResponse"].FromString)

    def _input_key(self) -> str:
        with self._lock:
            if self.input_name is None:
                request = self._m["ModelMetadataRequest"](name=self.model_name,
                                                          version=self.version or "")
                inputs = list(self._call(self._metadata_call, request).inputs)
                if len(inputs) != 1:
                    raise TeacherError(f"teacher at {self.url} takes inputs "
                                       f"{[i.name for i in inputs]}; kd_keras sends one")
                if inputs[0].datatype == "BYTES":
                    raise TeacherError(f"teacher at {self.url} takes encoded images (BYTES); "
                                       "kd_keras sends FP32 tensors over this protocol")
                self.input_name = inputs[0].name
            return self.input_name

    def predict(self, images):
        images = np.ascontiguousarray(images, np.float32)
        request = self._m["ModelInferRequest"](model_name=self.model_name,
                                               model_version=self.version or "")
        tensor = request.inputs.add(name=self._input_key(), datatype="FP32")
        tensor.shape.extend(images.shape)
        request.raw_input_contents.append(images.tobytes())
        answer = self._call(self._infer_call, request)
        arrays = {}
        for i, out in enumerate(answer.outputs):
            if out.datatype not in DATATYPES:
                raise BadAnswerError(f"teacher at {self.url} answered a {out.datatype} output")
            dtype = DATATYPES[out.datatype]
            if i < len(answer.raw_output_contents):
                flat = np.frombuffer(answer.raw_output_contents[i], dtype)
            elif out.datatype in _CONTENTS:
                flat = np.asarray(getattr(out.contents, _CONTENTS[out.datatype]), dtype)
            else:
                raise BadAnswerError(f"teacher at {self.url} answered {out.name} without data")
            try:
                arrays[out.name] = flat.reshape(list(out.shape))
            except ValueError:
                raise BadAnswerError(f"teacher at {self.url} answered {flat.size} values for "
                                     f"the shape {list(out.shape)}") from None
        if not arrays:
            raise BadAnswerError(f"teacher at {self.url} answered no output tensor")
        return next(iter(arrays.values())) if len(arrays) == 1 else arrays


__all__ = ["OpenInferenceBackend", "OpenInferenceGrpcBackend", "is_v2"]
