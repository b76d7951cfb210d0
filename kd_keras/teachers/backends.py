"""Teacher back ends: each sends one batch of images and returns the raw answer.

Back ends know transport only; batching, budget, retries, validation and caching live in
:class:`kd_keras.teachers.teacher.Teacher`, shared by all of them.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import socket
import threading
import urllib.error
import urllib.parse
import urllib.request
from typing import Any, Callable, Optional

import numpy as np

from kd_keras.errors import BadAnswerError, TeacherError, TransientTeacherError


try:  # orjson writes float32 arrays exactly and parses several times faster than json
    import orjson

    def dumps(obj) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_SERIALIZE_NUMPY)

    loads = orjson.loads
    JSONDecodeError = (orjson.JSONDecodeError, UnicodeDecodeError)
except ImportError:  # pragma: no cover - orjson is a dependency, json is the fallback
    def dumps(obj) -> bytes:
        return json.dumps(obj, separators=(",", ":"),
                          default=lambda a: a.tolist()).encode()

    loads = json.loads
    JSONDecodeError = (json.JSONDecodeError, UnicodeDecodeError)


class Backend:
    """Sends a batch of images to a teacher. ``identity`` names the teacher in cache keys."""

    identity: str = ""
    concurrent: bool = False  # whether several requests may usefully be in flight at once

    def predict(self, images: np.ndarray) -> Any:
        raise NotImplementedError


class CallableBackend(Backend):
    """A Python function ``images -> answer``, for library users and tests."""

    def __init__(self, fn: Callable[[np.ndarray], Any], identity: str = "callable"):
        self.fn, self.identity = fn, identity

    def predict(self, images):
        return self.fn(images)


class SavedModelBackend(Backend):
    """A SavedModel called through its serving signature; nothing else of it is read."""

    def __init__(self, path: str, signature: str = "serving_default"):
        import tensorflow as tf

        if not os.path.isdir(path):
            raise TeacherError(f"teacher SavedModel not found: {path}")
        try:
            self._loaded = tf.saved_model.load(path)
        except (OSError, ValueError, tf.errors.OpError) as e:
            raise TeacherError(f"cannot load teacher SavedModel {path}: {str(e).splitlines()[0]}") from None
        if signature not in self._loaded.signatures:
            raise TeacherError(f"teacher SavedModel {path} has no signature {signature!r} "
                               f"(has {list(self._loaded.signatures)})")
        self._fn = self._loaded.signatures[signature]
        self.input_name = next(iter(self._fn.structured_input_signature[1]))
        self.input_shape = self._fn.structured_input_signature[1][self.input_name].shape
        self.output_names = sorted(self._fn.structured_outputs)
        try:  # the fingerprint changes when the model does, so stale answers are never reused
            checksum = tf.saved_model.experimental.read_fingerprint(path).saved_model_checksum
        except Exception:  # older SavedModels have no fingerprint
            checksum = "nofingerprint"
        self.identity = f"savedmodel:{os.path.abspath(path)}:{signature}:{checksum}"

    def predict(self, images):
        import tensorflow as tf

        try:
            out = self._fn(**{self.input_name: tf.constant(images, tf.float32)})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
            spec = self._fn.structured_input_signature[1][self.input_name]
            raise TeacherError(f"the teacher SavedModel takes {spec.dtype.name} {spec.shape}, and "
                               f"refused images {list(images.shape)} ({type(e).__name__})") from None
        if len(out) == 1:
            return next(iter(out.values())).numpy()
        return {k: v.numpy() for k, v in out.items()}


class KerasBackend(Backend):
    """A ``.keras`` file loaded in safe mode (no arbitrary code) and called on batches."""

    def __init__(self, path: str):
        import keras

        if not os.path.exists(path):
            raise TeacherError(f"teacher .keras file not found: {path}")
        try:
            self._model = keras.saving.load_model(path, compile=False, safe_mode=True)
        except Exception as e:  # Keras raises many types; the message is what matters.
            raise TeacherError(f"cannot load teacher {path}: {str(e).splitlines()[0]}") from None
        with open(path, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()[:16]
        self.identity = f"keras:{os.path.abspath(path)}:{digest}"

    def predict(self, images):
        try:
            return np.asarray(self._model(images, training=False))
        except (ValueError, TypeError) as e:
            raise TeacherError(f"the teacher model takes inputs {self._model.input_shape}, and "
                               f"refused images {list(images.shape)} ({type(e).__name__})") from None


class HttpBackend(Backend):
    """The TensorFlow Serving REST predict API: ``POST {url}:predict``.

    ``url`` is ``http(s)://host:port/v1/models/NAME[/versions/V]``. A bearer token, if
    needed, is read from the environment variable ``token_env`` and never logged.
    """

    concurrent = True

    def __init__(self, url: str, token_env: Optional[str] = None, timeout: float = 30.0,
                 signature_name: Optional[str] = None):
        self.url = url.rstrip("/")
        if ":predict" in self.url:
            self.url = self.url[: self.url.index(":predict")]
        self._token = os.environ.get(token_env) if token_env else None
        if token_env and not self._token:
            raise TeacherError(f"the teacher token variable ${token_env} is not set")
        self.timeout, self.signature_name = timeout, signature_name
        self.identity = f"http:{self.url}:{signature_name or ''}"

    def _body(self, images: np.ndarray) -> bytes:
        # float32 values are written in their shortest exact form: the teacher sees the
        # very pixels that the cache keys hash.
        payload = {"instances": np.ascontiguousarray(images, np.float32)}
        if self.signature_name:
            payload["signature_name"] = self.signature_name
        return dumps(payload)

    def predict(self, images):
        request = urllib.request.Request(self.url + ":predict", data=self._body(images),
                                         method="POST",
                                         headers={"Content-Type": "application/json"})
        if self._token:
            request.add_header("Authorization", f"Bearer {self._token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as e:
            detail = _error_detail(e.read())
            message = f"teacher at {self.url} answered HTTP {e.code}: {detail}"
            if e.code == 429 or e.code >= 500:
                raise TransientTeacherError(message) from None
            raise TeacherError(message) from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                http.client.HTTPException) as e:
            reason = getattr(e, "reason", e)
            raise TransientTeacherError(f"teacher at {self.url} unreachable: {reason}") from None
        try:
            answer = loads(body)
        except JSONDecodeError:
            raise BadAnswerError(f"teacher at {self.url} answered something that is not JSON: "
                                 f"{body[:80]!r}") from None
        if not isinstance(answer, dict):
            raise BadAnswerError(f"teacher at {self.url} answered JSON without 'predictions'")
        if "error" in answer:
            raise TeacherError(f"teacher at {self.url} answered an error: {answer['error']}")
        if "predictions" not in answer:
            raise BadAnswerError(f"teacher at {self.url} answered JSON without 'predictions' "
                                 f"(keys: {sorted(answer)})")
        return answer["predictions"]


_GRPC_PATH = re.compile(r"^/(?:v1/)?models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?/?$")
# gRPC codes worth another try, as HTTP 429 and 5xx are for REST.
_GRPC_TRANSIENT = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED", "INTERNAL")
GRPC_OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


def read_pem(path: str, what: str) -> bytes:
    """The bytes of a PEM file (certificate, key or CA roots), or a clear error naming ``what``."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise TeacherError(f"cannot read {what} {path}: {e.strerror}") from None


class GrpcBackend(Backend):
    """The TensorFlow Serving gRPC ``PredictionService``: images travel as binary tensors.

    ``url`` is ``grpc://host:port/models/NAME[/versions/V]``, or ``grpcs://`` for TLS, trusting
    the system's roots or the PEM file given as ``?ca=PATH`` (a private CA). JSON
    costs far more than a small model itself; this is the fast path to a served teacher.
    The input name is read once from the model's signature (``GetModelMetadata``) unless
    given as ``?input=NAME``. A bearer token from ``token_env`` goes in the call metadata.
    """

    concurrent = True

    def __init__(self, url: str, token_env: Optional[str] = None, timeout: float = 30.0,
                 signature_name: Optional[str] = None):
        import grpc
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        parts = urllib.parse.urlsplit(url)
        m = _GRPC_PATH.match(parts.path)
        if parts.scheme not in ("grpc", "grpcs") or not parts.hostname or not parts.port or not m:
            raise TeacherError(f"bad gRPC teacher {url!r}: use grpc://host:port/models/NAME"
                               "[/versions/V][?input=NAME]")
        self.url = f"{parts.scheme}://{parts.hostname}:{parts.port}{parts.path.rstrip('/')}"
        self.model_name, self.version = m.group("name"), m.group("version")
        self.signature_name = signature_name or "serving_default"
        query = urllib.parse.parse_qs(parts.query)
        self.input_name = query.get("input", [None])[0]
        self._token = os.environ.get(token_env) if token_env else None
        if token_env and not self._token:
            raise TeacherError(f"the teacher token variable ${token_env} is not set")
        self.timeout = timeout
        self.identity = f"grpc:{self.url}:{signature_name or ''}"
        target = f"{parts.hostname}:{parts.port}"
        if parts.scheme == "grpcs":
            credentials = grpc.ssl_channel_credentials(
                read_pem(query["ca"][0], "the gRPC teacher's CA file (?ca=)") if "ca" in query else None)
            self._channel = grpc.secure_channel(target, credentials, GRPC_OPTIONS)
        else:
            self._channel = grpc.insecure_channel(target, GRPC_OPTIONS)
        self._stub = prediction_service_pb2_grpc.PredictionServiceStub(self._channel)
        self._lock = threading.Lock()

    def _metadata(self):
        return [("authorization", f"Bearer {self._token}")] if self._token else None

    def _spec(self, message) -> None:
        message.model_spec.name = self.model_name
        message.model_spec.signature_name = self.signature_name
        if self.version:
            message.model_spec.version.value = int(self.version)

    def _call(self, method, request):
        import grpc

        try:
            return method(request, timeout=self.timeout, metadata=self._metadata())
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                message = f"teacher at {self.url} unreachable (UNAVAILABLE): {e.details()}"
            else:
                message = f"teacher at {self.url} answered {e.code().name}: {e.details()}"
            if e.code().name in _GRPC_TRANSIENT:
                raise TransientTeacherError(message) from None
            raise TeacherError(message) from None

    def _input_key(self) -> str:
        """The signature's one input name, asked of the server once."""
        with self._lock:
            if self.input_name is None:
                from tensorflow_serving.apis import get_model_metadata_pb2

                request = get_model_metadata_pb2.GetModelMetadataRequest()
                self._spec(request)
                request.metadata_field.append("signature_def")
                answer = self._call(self._stub.GetModelMetadata, request)
                signatures = get_model_metadata_pb2.SignatureDefMap()
                answer.metadata["signature_def"].Unpack(signatures)
                if self.signature_name not in signatures.signature_def:
                    raise TeacherError(f"teacher at {self.url} has no signature "
                                       f"{self.signature_name!r} (has "
                                       f"{sorted(signatures.signature_def)})")
                inputs = sorted(signatures.signature_def[self.signature_name].inputs)
                if len(inputs) != 1:
                    raise TeacherError(f"teacher at {self.url} takes inputs {inputs}; name the "
                                       "image input with ?input=NAME in the teacher spec")
                self.input_name = inputs[0]
            return self.input_name

    def predict(self, images):
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request)
        request.inputs[self._input_key()].CopyFrom(
            tf.make_tensor_proto(np.ascontiguousarray(images, np.float32)))
        outputs = self._call(self._stub.Predict, request).outputs
        if not outputs:
                raise BadAnswerError(f"teacher at {self.url} answered no output tensor")
        arrays = {k: tf.make_ndarray(v) for k, v in outputs.items()}
        return next(iter(arrays.values())) if len(arrays) == 1 else arrays


def _error_detail(body: bytes) -> str:
    try:
        return str(loads(body)["error"])
    except (ValueError, KeyError, TypeError, *JSONDecodeError):
        return body[:200].decode("utf-8", "replace") or "(empty body)"
