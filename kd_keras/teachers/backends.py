"""Teacher back ends: each sends one batch of images and returns the raw answer.

Back ends know transport only; batching, budget, retries, validation and caching live in
:class:`kd_keras.teachers.teacher.Teacher`, shared by all of them.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import http.client
import json
import os
import re
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Any, Callable, Optional

import numpy as np

from kd_keras.errors import BadAnswerError, Interrupted, TeacherError, TransientTeacherError
from kd_keras.registry import Registry

# Set when the user interrupts the run (Ctrl-C): requests in flight are aborted and no
# new one starts. See :func:`cancel_requests`.
CANCEL = threading.Event()
_ACTIVE: set = set()  # open HTTP connections, so an interrupt can abort them
_ACTIVE_LOCK = threading.Lock()


def cancel_requests() -> None:
    """Aborts every teacher request in flight and refuses new ones (called on Ctrl-C from
    a watcher thread, while the main thread may be blocked inside TensorFlow)."""
    CANCEL.set()
    with _ACTIVE_LOCK:
        for conn in list(_ACTIVE):
            _abort(conn)


def _abort(conn: http.client.HTTPConnection) -> None:
    """Shuts the request's socket down, which unblocks a thread reading from it."""
    sock = getattr(conn, "kd_socket", None) or conn.sock  # the response may hold it alone
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def without_credentials(text: str) -> str:
    """``text`` (a URL, a spec, a message) with any ``user:password@`` of a URL masked."""
    return re.sub(r"(?<=://)[^/@\s]*@", "***@", text)


def mask_secrets(text: str, secrets) -> str:
    """``text`` (e.g. an error body a server echoed) with every secret masked: as sent,
    URL-encoded, or cut short (any 8 or more of its first characters)."""
    for secret in secrets:
        for form in dict.fromkeys((secret, urllib.parse.quote(secret, safe=""),
                                   urllib.parse.quote_plus(secret))):
            for end in range(len(form), min(len(form), 8) - 1, -1):  # longest first
                text = text.replace(form[:end], "***")
    return text


def _retry_after(value: Optional[str]) -> Optional[float]:
    """Seconds from a ``Retry-After`` header given in seconds (dates are ignored)."""
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


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


@dataclasses.dataclass(frozen=True)
class BackendOptions:
    """What a ``--teacher`` spec string leaves to flags: the bearer token's environment
    variable, the per-request deadline and the signature to call."""

    token_env: Optional[str] = None
    timeout: float = 30.0
    signature_name: Optional[str] = None
    class_names: tuple = ()  # for teachers answering class names (--teacher_classes)
    encoding: str = "none"  # images sent as PNG or JPEG bytes (query.encoding)


# Teacher protocols by the spec's scheme (``http``, ``grpc``, ``savedmodel`` …): each maps
# ``(spec, BackendOptions) -> Backend``. A new protocol is one module registering here.
PROTOCOLS = Registry("teacher protocol", error=TeacherError)


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
        dims = self.input_shape.as_list()[1:] if self.input_shape.rank == 4 else None
        # The signature's image size, when fixed: images are adapted to it before sending.
        self.input_shape_hint = tuple(dims) if dims and all(dims) else None
        self.output_names = sorted(self._fn.structured_outputs)
        try:  # the fingerprint changes when the model does, so stale answers are never reused
            checksum = tf.saved_model.experimental.read_fingerprint(path).saved_model_checksum
        except Exception:  # older SavedModels have no fingerprint
            checksum = "nofingerprint"
        self.identity = f"savedmodel:{os.path.abspath(path)}:{signature}:{checksum}"

    def predict(self, images):
        import tensorflow as tf

        spec = self._fn.structured_input_signature[1][self.input_name]
        images = np.asarray(images)
        # Checked here, not by TF: a wrong-rank tensor reaches some kernels (oneDNN's
        # convolution) unchecked and aborts the whole process.
        if not spec.shape.is_compatible_with(images.shape) or not (
                np.issubdtype(images.dtype, np.number) or images.dtype == bool):
            raise TeacherError(f"the teacher SavedModel takes {spec.dtype.name} {spec.shape}, and "
                               f"refused images {list(images.shape)} of {images.dtype} (checked "
                               "before calling it)")
        try:
            out = self._fn(**{self.input_name: tf.constant(images, tf.float32)})
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as e:
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
    needed, is read from the environment variable ``token_env``, sent to that origin only
    and never logged (error bodies echoed from the server are shown with it masked).
    Each request has a real deadline of ``timeout`` seconds, however slowly the server
    trickles its bytes; answers larger than ``max_answer_bytes`` are refused; a redirect is
    an error naming where it pointed (a predict call is never re-sent elsewhere).
    """

    concurrent = True

    def __init__(self, url: str, token_env: Optional[str] = None, timeout: float = 30.0,
                 signature_name: Optional[str] = None, max_answer_bytes: int = 256 << 20,
                 encoding: str = "none"):
        self.encoding = encoding  # "none": float tensors; png|jpeg: {"b64": ...} instances
        self.url = url.rstrip("/")
        if ":predict" in self.url:
            self.url = self.url[: self.url.index(":predict")]
        parts = urllib.parse.urlsplit(self.url)
        try:
            port = parts.port
        except ValueError:  # a port out of range, or not a number
            port = -1
        if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
            raise TeacherError(f"bad REST teacher {without_credentials(url)!r}: use "
                               "http(s)://host:port/v1/models/NAME (a port from 1 to 65535)")
        self._https, self._host = parts.scheme == "https", parts.hostname
        self._port = port or (443 if self._https else 80)
        self._path = (parts.path or "/") + ":predict"
        self._token = os.environ.get(token_env) if token_env else None
        if token_env and not self._token:
            raise TeacherError(f"the teacher token variable ${token_env} is not set")
        # user:password in the URL is sent as Basic authentication and shown nowhere
        self._basic, self._secrets = None, [self._token] if self._token else []
        if parts.username is not None:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
            self._basic = base64.b64encode(f"{user}:{password}".encode()).decode()
            self._secrets += [s for s in (password, self._basic) if s]
            self.url = urllib.parse.urlunsplit(parts._replace(
                netloc=parts.netloc.rpartition("@")[2])).rstrip("/")
        self.timeout, self.signature_name = float(timeout), signature_name
        self.max_answer_bytes = int(max_answer_bytes)
        self.identity = f"http:{self.url}:{signature_name or ''}" + (
            f":{encoding}" if encoding != "none" else "")

    def _body(self, images: np.ndarray) -> bytes:
        # float32 values are written in their shortest exact form: the teacher sees the
        # very pixels that the cache keys hash.
        if self.encoding != "none":  # encoded bytes (Teacher.prepared), as TF Serving takes them
            payload = {"instances": [{"b64": base64.b64encode(b).decode()} for b in images]}
        else:
            payload = {"instances": np.ascontiguousarray(images, np.float32)}
        if self.signature_name:
            payload["signature_name"] = self.signature_name
        return dumps(payload)

    def _mask(self, text: str) -> str:
        return mask_secrets(text, self._secrets)

    def _connection(self) -> http.client.HTTPConnection:
        if self._https:
            return http.client.HTTPSConnection(self._host, self._port, timeout=self.timeout,
                                               context=ssl.create_default_context())
        return http.client.HTTPConnection(self._host, self._port, timeout=self.timeout)

    def _exchange(self, body: bytes, content_type: str = "application/json",
                  method: str = "POST", path: Optional[str] = None) -> tuple[int, dict, bytes]:
        """One request (a POST to the predict path unless told) under a deadline; (status,
        headers, body). Aborted on deadline or Ctrl-C."""
        if CANCEL.is_set():
            raise Interrupted("interrupted before sending")
        headers = {"Content-Type": content_type}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        elif self._basic:
            headers["Authorization"] = f"Basic {self._basic}"
        conn = self._connection()
        timer = threading.Timer(self.timeout, _abort, (conn,))
        timer.daemon = True
        with _ACTIVE_LOCK:
            _ACTIVE.add(conn)
        start, sent = time.monotonic(), False
        try:
            timer.start()
            conn.connect()
            conn.kd_socket = conn.sock
            conn.request(method, path or self._path, body=body or None, headers=headers)
            sent = True  # from here on the server may answer (and bill) whatever we see
            response = conn.getresponse()
            length = response.getheader("Content-Length")
            if length and length.isdigit() and int(length) > self.max_answer_bytes:
                raise BadAnswerError(f"teacher at {self.url} announced an answer of {int(length)} "
                                     f"bytes, more than the {self.max_answer_bytes} allowed")
            data = response.read(self.max_answer_bytes + 1)
            if len(data) > self.max_answer_bytes:
                raise BadAnswerError(f"teacher at {self.url} answered more than "
                                     f"{self.max_answer_bytes} bytes; refused")
            if time.monotonic() - start > self.timeout:
                raise socket.timeout()
            return response.status, dict(response.getheaders()), data
        except (OSError, http.client.HTTPException) as e:
            if CANCEL.is_set():
                raise Interrupted("interrupted during a teacher request") from None
            if time.monotonic() - start >= self.timeout - 0.05:
                raise TransientTeacherError(f"teacher at {self.url} gave no full answer within "
                                            f"the {self.timeout:g}s deadline", billed=sent) from None
            reason = getattr(e, "strerror", None) or str(e) or type(e).__name__
            raise TransientTeacherError(f"teacher at {self.url} unreachable: {reason}",
                                        billed=sent) from None
        finally:
            timer.cancel()
            with _ACTIVE_LOCK:
                _ACTIVE.discard(conn)
            conn.close()

    def check_status(self, status: int, headers: dict, body: bytes) -> None:
        """Raises for a redirect or an HTTP error (429 and 5xx are worth another try)."""
        headers = {k.lower(): v for k, v in headers.items()}
        if 300 <= status < 400:
            raise TeacherError(f"teacher at {self.url} redirected (HTTP {status}) to "
                               f"{self._mask(headers.get('location', '(no Location)'))}; "
                               "kd_keras follows no redirect on predict calls: give the final URL")
        if status >= 400:
            message = f"teacher at {self.url} answered HTTP {status}: {self._mask(_error_detail(body))}"
            if status == 429 or status >= 500:
                raise TransientTeacherError(message, _retry_after(headers.get("retry-after")),
                                            billed=False)  # refused with a status: no answer
            raise TeacherError(message)

    def predict(self, images):
        status, headers, body = self._exchange(self._body(images))
        self.check_status(status, headers, body)
        try:
            answer = loads(body)
        except JSONDecodeError:
            raise BadAnswerError(f"teacher at {self.url} answered something that is not JSON: "
                                 f"{self._mask(repr(body[:80]))}") from None
        if not isinstance(answer, dict):
            raise BadAnswerError(f"teacher at {self.url} answered JSON without 'predictions'")
        if "error" in answer:
            raise TeacherError(f"teacher at {self.url} answered an error: "
                               f"{self._mask(str(answer['error']))}")
        if "predictions" not in answer:
            raise BadAnswerError(f"teacher at {self.url} answered JSON without 'predictions' "
                                 f"(keys: {sorted(answer)})")
        return answer["predictions"]


_GRPC_PATH = re.compile(r"^/(?:v[12]/)?models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?/?$")
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
                 signature_name: Optional[str] = None, encoding: str = "none"):
        import grpc

        self.encoding = encoding  # "none": a float tensor; png|jpeg: a DT_STRING tensor
        from tensorflow_serving.apis import prediction_service_pb2_grpc

        parts = urllib.parse.urlsplit(url)
        m = _GRPC_PATH.match(parts.path)
        try:
            port = parts.port
        except ValueError:  # a port out of range, or not a number
            port = None
        if parts.scheme not in ("grpc", "grpcs") or not parts.hostname or not port or not m:
            raise TeacherError(f"bad gRPC teacher {without_credentials(url)!r}: use "
                               "grpc://host:port/models/NAME"
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
        self.identity = f"grpc:{self.url}:{signature_name or ''}" + (
            f":{encoding}" if encoding != "none" else "")
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

        if CANCEL.is_set():
            raise Interrupted("interrupted before sending")
        call = method.future(request, timeout=self.timeout, metadata=self._metadata())
        try:
            while not call.done():  # wait in slices so Ctrl-C can cancel the call
                if CANCEL.wait(0.1):
                    call.cancel()
                    raise Interrupted("interrupted during a teacher request")
            return call.result()
        except grpc.RpcError as e:
            details = mask_secrets(str(e.details()), [self._token] if self._token else [])
            if e.code() == grpc.StatusCode.UNAVAILABLE:
                message = f"teacher at {self.url} unreachable (UNAVAILABLE): {details}"
            else:
                message = f"teacher at {self.url} answered {e.code().name}: {details}"
            if e.code().name in _GRPC_TRANSIENT:  # only a lapsed deadline may hide an answer
                raise TransientTeacherError(message, billed=e.code().name == "DEADLINE_EXCEEDED"
                                            ) from None
            raise TeacherError(message) from None

    def _input_key(self) -> str:
        """The signature's one input name, asked of the server once."""
        with self._lock:
            if self.input_name is None:
                import tensorflow as tf
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
                signature = signatures.signature_def[self.signature_name]
                inputs = sorted(signature.inputs)
                if len(inputs) != 1:
                    raise TeacherError(f"teacher at {self.url} takes inputs {inputs}; name the "
                                       "image input with ?input=NAME in the teacher spec")
                self.input_name = inputs[0]
                takes_bytes = signature.inputs[inputs[0]].dtype == tf.string.as_datatype_enum
                if takes_bytes and self.encoding == "none":
                    raise TeacherError(f"teacher at {self.url} takes encoded images (a string "
                                       "input): set --config.query.encoding=png (lossless) or "
                                       "jpeg")
                if not takes_bytes and self.encoding != "none":
                    raise TeacherError(f"teacher at {self.url} takes float images, not encoded "
                                       "ones: set --config.query.encoding=none")
            return self.input_name

    def predict(self, images):
        import tensorflow as tf
        from tensorflow_serving.apis import predict_pb2

        request = predict_pb2.PredictRequest()
        self._spec(request)
        key = self._input_key()
        request.inputs[key].CopyFrom(
            tf.make_tensor_proto(list(images), dtype=tf.string, shape=[len(images)])
            if self.encoding != "none" else
            tf.make_tensor_proto(np.ascontiguousarray(images, np.float32)))
        outputs = self._call(self._stub.Predict, request).outputs
        if not outputs:
                raise BadAnswerError(f"teacher at {self.url} answered no output tensor")
        arrays = {k: tf.make_ndarray(v) for k, v in outputs.items()}
        return next(iter(arrays.values())) if len(arrays) == 1 else arrays


def _error_detail(body: bytes) -> str:
    try:
        return str(loads(body)["error"])[:500]
    except (ValueError, KeyError, TypeError, *JSONDecodeError):
        return body[:200].decode("utf-8", "replace") or "(empty body)"


PROTOCOLS.register("savedmodel", lambda spec, o: SavedModelBackend(
    spec.partition(":")[2], o.signature_name or "serving_default"))
PROTOCOLS.register("keras", lambda spec, o: KerasBackend(spec.partition(":")[2]))
def _http(spec: str, o: BackendOptions) -> Backend:
    """TF Serving REST, or the Open Inference Protocol for a ``/v2/models/`` path."""
    from kd_keras.teachers.open_inference import OpenInferenceBackend, is_v2

    if is_v2(spec):
        return OpenInferenceBackend(spec, token_env=o.token_env, timeout=o.timeout,
                                    encoding=o.encoding)
    return HttpBackend(spec, token_env=o.token_env, timeout=o.timeout,
                       signature_name=o.signature_name, encoding=o.encoding)


for _scheme in ("http", "https"):
    PROTOCOLS.register(_scheme, _http)
def _grpc(spec: str, o: BackendOptions) -> Backend:
    """TF Serving gRPC, or the Open Inference Protocol's for a ``/v2/models/`` path."""
    from kd_keras.teachers.open_inference import OpenInferenceGrpcBackend, is_v2

    cls = OpenInferenceGrpcBackend if is_v2(spec) else GrpcBackend
    return cls(spec, token_env=o.token_env, timeout=o.timeout,
               signature_name=o.signature_name, encoding=o.encoding)


for _scheme in ("grpc", "grpcs"):
    PROTOCOLS.register(_scheme, _grpc)
