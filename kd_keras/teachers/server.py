"""A small server for the TensorFlow Serving REST predict protocol, on localhost.

For demos, tests and as a reference of the protocol: ``POST /v1/models/NAME[/versions/V]:predict``
with ``{"instances": [...]}`` answers ``{"predictions": [...]}``; errors answer
``{"error": "..."}``. Faults (an error rate, added latency) can be injected for testing.
"""

from __future__ import annotations

import hmac
import random
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable, Optional

import numpy as np

from kd_keras.teachers.backends import dumps, loads

_PREDICT = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?:predict$")
_STATUS = re.compile(r"^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+))?$")


class PredictServer(ThreadingHTTPServer):
    """Serves ``predict_fn(images) -> array`` under the model name ``model_name``."""

    daemon_threads = True

    def __init__(self, predict_fn: Callable[[np.ndarray], np.ndarray], model_name: str = "teacher",
                 host: str = "127.0.0.1", port: int = 0, token: Optional[str] = None,
                 error_rate: float = 0.0, latency_seconds: float = 0.0, fail_first: int = 0,
                 seed: int = 0):
        super().__init__((host, port), _Handler)
        self.predict_fn, self.model_name, self.token = predict_fn, model_name, token
        self.error_rate, self.latency_seconds, self.fail_first = error_rate, latency_seconds, fail_first
        self._rng, self._lock = random.Random(seed), threading.Lock()
        self.requests = 0
        self.images_answered = 0

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1/models/{self.model_name}"

    def start(self) -> "PredictServer":
        """Serves in a daemon thread; returns self (call ``shutdown()`` to stop)."""
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def _inject_fault(self) -> bool:
        with self._lock:
            self.requests += 1
            if self.requests <= self.fail_first:
                return True
            return self._rng.random() < self.error_rate


class _Handler(BaseHTTPRequestHandler):
    server: PredictServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep request lines (and headers) out of the logs
        pass

    def _send(self, code: int, payload: dict) -> None:
        body = dumps(payload)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        if not self.server.token:
            return True
        given = self.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {self.server.token}".encode())

    def do_GET(self):
        m = _STATUS.match(self.path)
        if not m or m.group("name") != self.server.model_name:
            return self._send(404, {"error": f"Servable not found for request: {self.path}"})
        self._send(200, {"model_version_status": [
            {"version": m.group("version") or "1", "state": "AVAILABLE",
             "status": {"error_code": "OK", "error_message": ""}}]})

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        m = _PREDICT.match(self.path)
        if not m or m.group("name") != self.server.model_name:
            return self._send(404, {"error": f"Servable not found for request: {self.path}"})
        if not self._authorized():
            return self._send(401, {"error": "missing or wrong bearer token"})
        if self.server.latency_seconds:
            time.sleep(self.server.latency_seconds)
        if self.server._inject_fault():
            return self._send(503, {"error": "injected fault: service unavailable"})
        try:
            request = loads(body)
            images = np.asarray(request["instances"], dtype=np.float32)
        except (ValueError, KeyError, TypeError) as e:  # orjson's decode error is a ValueError
            return self._send(400, {"error": f"malformed request: {e}"})
        try:
            predictions = np.asarray(self.server.predict_fn(images))
        except Exception as e:  # report, as TF Serving does, rather than drop the connection
            return self._send(400, {"error": f"{type(e).__name__}: {str(e).splitlines()[0]}"})
        with self.server._lock:
            self.server.images_answered += len(images)
        self._send(200, {"predictions": predictions})
