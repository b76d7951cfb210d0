"""Small servers for the TensorFlow Serving predict protocols, on localhost.

For demos, tests and as a reference of the protocols. REST: ``POST
/v1/models/NAME[/versions/V]:predict`` with ``{"instances": [...]}`` answers
``{"predictions": [...]}``; errors answer ``{"error": "..."}``. gRPC: the
``tensorflow.serving.PredictionService`` methods ``Predict`` and ``GetModelMetadata``, with
binary tensors. Both can check a bearer token and inject faults (an error rate, added
latency, failing first requests) for testing.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hmac
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional, Sequence

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import meta_graph_pb2
from tensorflow_serving.apis import get_model_metadata_pb2, predict_pb2, prediction_service_pb2_grpc

from kd_keras.teachers.backends import GRPC_OPTIONS, dumps, loads
from kd_keras.teachers.encoding import decode

_PREDICT = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?:predict$")
_STATUS = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?$")
# The Open Inference Protocol (KServe v2) REST paths: metadata and infer.
_V2 = re.compile(r"^/v2/models/(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<infer>/infer)?$")


class _Serving:
    """What both servers share: the model, the token check, fault injection and counters."""

    def _setup(self, predict_fn, model_name, token, error_rate, latency_seconds, fail_first,
               seed) -> None:
        self.predict_fn, self.model_name, self.token = predict_fn, model_name, token
        self.error_rate, self.latency_seconds, self.fail_first = error_rate, latency_seconds, fail_first
        self._rng, self._lock = random.Random(seed), threading.Lock()
        self.requests = 0
        self.images_answered = 0

    def _authorized(self, header: str) -> bool:
        if not self.token:
            return True
        return hmac.compare_digest(header.encode(), f"Bearer {self.token}".encode())

    def _inject_fault(self) -> bool:
        """Adds the configured latency; True if this request must fail."""
        if self.latency_seconds:
            time.sleep(self.latency_seconds)
        with self._lock:
            self.requests += 1
            if self.requests <= self.fail_first:
                return True
            return self._rng.random() < self.error_rate

    def _answered(self, n: int) -> None:
        with self._lock:
            self.images_answered += n


class PredictServer(ThreadingHTTPServer, _Serving):
    """Serves ``predict_fn(images) -> array`` over REST under the model name ``model_name``."""

    daemon_threads = True

    def __init__(self, predict_fn: Callable[[np.ndarray], np.ndarray], model_name: str = "teacher",
                 host: str = "127.0.0.1", port: int = 0, token: Optional[str] = None,
                 error_rate: float = 0.0, latency_seconds: float = 0.0, fail_first: int = 0,
                 seed: int = 0, max_request_bytes: int = 256 << 20):
        super().__init__((host, port), _Handler)
        self._setup(predict_fn, model_name, token, error_rate, latency_seconds, fail_first, seed)
        self.max_request_bytes = int(max_request_bytes)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1/models/{self.model_name}"

    @property
    def v2_url(self) -> str:
        """The same model over the Open Inference Protocol (KServe v2) REST paths."""
        return self.url.replace("/v1/models/", "/v2/models/")

    def start(self) -> "PredictServer":
        """Serves in a daemon thread; returns self (call ``close()`` to stop)."""
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def close(self) -> None:
        """Stops a server started with ``start()`` and frees its port."""
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: PredictServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep request lines (and headers) out of the logs
        pass

    def _send(self, code: int, payload: dict, close: bool = False) -> None:
        """Answers JSON; ``close`` ends the connection (a request body left unread)."""
        body = dumps(payload)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        v2 = _V2.match(self.path)
        if v2 and not v2.group("infer") and v2.group("name") == self.server.model_name:
            return self._send(200, {"name": self.server.model_name, "platform": "kd_keras",
                                    "inputs": [{"name": "images", "datatype": "FP32",
                                                "shape": [-1, -1, -1, -1]}],
                                    "outputs": [{"name": "probabilities", "datatype": "FP32",
                                                 "shape": [-1, -1]}]})
        m = _STATUS.match(self.path)
        if not m or m.group("name") != self.server.model_name:
            return self._send(404, {"error": f"Servable not found for request: {self.path}"})
        self._send(200, {"model_version_status": [
            {"version": m.group("version") or "1", "state": "AVAILABLE",
             "status": {"error_code": "OK", "error_message": ""}}]})

    def do_POST(self):
        # The path, the token and the body's size are checked before the body is read, so
        # no one without the token can make the server read (or hold) a large body.
        m = _PREDICT.match(self.path) or _V2.match(self.path)
        if not m or m.group("name") != self.server.model_name or (
                m.re is _V2 and not m.group("infer")):
            return self._send(404, {"error": f"Servable not found for request: {self.path}"},
                              close=True)
        v2 = m.re is _V2
        if not self.server._authorized(self.headers.get("Authorization", "")):
            return self._send(401, {"error": "missing or wrong bearer token"}, close=True)
        length = self.headers.get("Content-Length", "")
        if not length.isdigit():
            return self._send(400 if length else 411, {
                "error": f"malformed request: Content-Length {length!r} is not a byte count"},
                close=True)
        if int(length) > self.server.max_request_bytes:
            return self._send(413, {"error": f"request body of {length} bytes is larger than "
                                             f"the {self.server.max_request_bytes} allowed"},
                              close=True)
        body = self.rfile.read(int(length))
        if self.server._inject_fault():
            return self._send(503, {"error": "injected fault: service unavailable"})
        try:
            request = loads(body)
            if v2:  # {"inputs": [{"name", "shape", "datatype": "FP32", "data": [flat]}]}
                tensor = request["inputs"][0]
                if tensor["datatype"] != "FP32":
                    raise ValueError(f"datatype {tensor['datatype']} is not FP32")
                images = np.asarray(tensor["data"], np.float32).reshape(tensor["shape"])
            else:
                instances = request["instances"]
                if instances and isinstance(instances[0], dict):  # encoded: {"b64": ...}
                    images = np.stack([decode(base64.b64decode(i["b64"])) for i in instances])
                else:
                    images = np.asarray(instances, dtype=np.float32)
        except (ValueError, KeyError, TypeError, IndexError, OSError) as e:  # orjson's: ValueError
            return self._send(400, {"error": f"malformed request: {e}"})
        try:
            predictions = np.asarray(self.server.predict_fn(images))
        except Exception as e:  # report, as TF Serving does, rather than drop the connection
            return self._send(400, {"error": f"{type(e).__name__}: {str(e).splitlines()[0]}"})
        self.server._answered(len(images))
        if v2:
            return self._send(200, {"model_name": self.server.model_name, "outputs": [
                {"name": "probabilities", "datatype": "FP32", "shape": list(predictions.shape),
                 "data": predictions.astype(np.float32).reshape(-1)}]})
        self._send(200, {"predictions": predictions})


class GrpcPredictServer(_Serving):
    """Serves ``predict_fn`` over the TF Serving gRPC ``PredictionService`` (Predict and
    GetModelMetadata), one signature taking images under ``input_name``."""

    def __init__(self, predict_fn: Callable[[np.ndarray], np.ndarray], model_name: str = "teacher",
                 host: str = "127.0.0.1", port: int = 0, token: Optional[str] = None,
                 error_rate: float = 0.0, latency_seconds: float = 0.0, fail_first: int = 0,
                 seed: int = 0, *, input_name: str = "images",
                 input_shape: Optional[Sequence[Optional[int]]] = None,
                 output_names: Sequence[str] = ("probabilities",),
                 signature_name: str = "serving_default", max_workers: int = 8,
                 tls: Optional[tuple[bytes, bytes]] = None, encoded: bool = False):
        self._setup(predict_fn, model_name, token, error_rate, latency_seconds, fail_first, seed)
        self.input_name, self.input_shape = input_name, input_shape
        self.encoded = encoded  # the signature takes encoded images (a string tensor)
        self.output_names, self.signature_name = list(output_names), signature_name
        self._server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers),
                                   options=GRPC_OPTIONS)
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
            _Servicer(self), self._server)
        self.host, self.tls = host, tls is not None
        address = f"{host}:{port}"
        # tls is (private key PEM, certificate chain PEM): clients then use grpcs://.
        self.port = (self._server.add_secure_port(address, grpc.ssl_server_credentials([tls]))
                     if tls else self._server.add_insecure_port(address))
        if not self.port:
            raise OSError(f"cannot listen for gRPC on {host}:{port}")

    @property
    def url(self) -> str:
        scheme = "grpcs" if self.tls else "grpc"
        return f"{scheme}://{self.host}:{self.port}/models/{self.model_name}"

    def start(self) -> "GrpcPredictServer":
        """Serves on gRPC's own threads; returns self (call ``close()`` to stop)."""
        self._server.start()
        return self

    def close(self) -> None:
        """Stops at once, cancelling calls in flight."""
        self._server.stop(None)

    def signature_def(self):
        """The one signature served, as ``GetModelMetadata`` reports it."""
        signature = meta_graph_pb2.SignatureDef(method_name="tensorflow/serving/predict")
        info = signature.inputs[self.input_name]
        info.name = f"{self.input_name}:0"
        info.dtype = (tf.string if self.encoded else tf.float32).as_datatype_enum
        if self.encoded:
            info.tensor_shape.CopyFrom(tf.TensorShape([None]).as_proto())
        elif self.input_shape is not None:
            info.tensor_shape.CopyFrom(tf.TensorShape(self.input_shape).as_proto())
        for name in self.output_names:
            out = signature.outputs[name]
            out.name, out.dtype = f"{name}:0", tf.float32.as_datatype_enum
        return signature


def _check(server: GrpcPredictServer, model_spec, context, signature: bool = True) -> None:
    """Aborts the call unless it names the served model (and signature) with the token."""
    if model_spec.name != server.model_name:
        context.abort(grpc.StatusCode.NOT_FOUND,
                      f"Servable not found for request: Latest({model_spec.name})")
    if signature and model_spec.signature_name not in ("", server.signature_name):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      f"Serving signature key \"{model_spec.signature_name}\" not found.")
    header = dict(context.invocation_metadata()).get("authorization", "")
    if not server._authorized(header):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, "missing or wrong bearer token")


class _Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
    """The two PredictionService methods a teacher needs; the others answer UNIMPLEMENTED."""

    def __init__(self, server: GrpcPredictServer):
        self.server = server

    def Predict(self, request, context):  # noqa: N802 - the gRPC method name
        server = self.server
        _check(server, request.model_spec, context)
        if server._inject_fault():
            context.abort(grpc.StatusCode.UNAVAILABLE, "injected fault: service unavailable")
        if list(request.inputs) != [server.input_name]:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"the signature takes one input {server.input_name!r}, got "
                          f"{sorted(request.inputs)}")
        try:
            tensor = tf.make_ndarray(request.inputs[server.input_name])
            images = (np.stack([decode(bytes(b)) for b in tensor.reshape(-1)])
                      if tensor.dtype == object else tensor.astype(np.float32))
            out = server.predict_fn(images)
        except Exception as e:  # report, as TF Serving does, rather than drop the call
            context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
        outputs = out if isinstance(out, dict) else {server.output_names[0]: out}
        response = predict_pb2.PredictResponse()
        response.model_spec.CopyFrom(request.model_spec)
        for name, value in outputs.items():
            response.outputs[name].CopyFrom(tf.make_tensor_proto(np.asarray(value)))
        server._answered(len(images))
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        server = self.server
        _check(server, request.model_spec, context, signature=False)  # lists all signatures
        signatures = get_model_metadata_pb2.SignatureDefMap()
        signatures.signature_def[server.signature_name].CopyFrom(server.signature_def())
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.CopyFrom(request.model_spec)
        response.metadata["signature_def"].Pack(signatures)
        return response
