"""Black-box teachers: one spec string picks a back end, one wrapper makes it safe.

Specs: ``savedmodel:DIR``, ``keras:FILE.keras``, ``http(s)://host:port/v1/models/NAME
[/versions/V]`` (TensorFlow Serving REST), ``grpc(s)://host:port/models/NAME[/versions/V]``
(TensorFlow Serving gRPC, binary tensors: the fast way to a served teacher). Python callables
go through :class:`CallableBackend`.
"""

from __future__ import annotations

import os
from typing import Optional

from kd_keras.errors import TeacherError
from kd_keras.teachers.answers import OUTPUTS, to_probabilities
from kd_keras.teachers.backends import (Backend, CallableBackend, GrpcBackend, HttpBackend,
                                        KerasBackend, SavedModelBackend)
from kd_keras.teachers.cache import AnswerCache, image_keys
from kd_keras.teachers.teacher import QueryStats, Teacher


def backend_from_spec(spec: str, token_env: Optional[str] = None, timeout: float = 30.0,
                      signature_name: Optional[str] = None) -> Backend:
    """The back end named by a ``--teacher`` spec string."""
    if spec.startswith(("http://", "https://")):
        return HttpBackend(spec, token_env=token_env, timeout=timeout, signature_name=signature_name)
    if spec.startswith(("grpc://", "grpcs://")):
        return GrpcBackend(spec, token_env=token_env, timeout=timeout, signature_name=signature_name)
    kind, _, arg = spec.partition(":")
    if kind == "savedmodel" and arg:
        return SavedModelBackend(arg, signature_name or "serving_default")
    if kind == "keras" and arg:
        return KerasBackend(arg)
    if os.path.isdir(spec):
        return SavedModelBackend(spec, signature_name or "serving_default")
    raise TeacherError(f"unknown teacher spec {spec!r}: use savedmodel:DIR, keras:FILE.keras "
                       "http(s)://host:port/v1/models/NAME or grpc://host:port/models/NAME")


def teacher_from_config(spec: str, config, cache_path: Optional[str],
                        token_env: Optional[str] = None,
                        signature_name: Optional[str] = None) -> Teacher:
    """A :class:`Teacher` for ``spec`` with the query settings of an experiment config."""
    q = config.query
    backend = backend_from_spec(spec, token_env=token_env, timeout=q.timeout_seconds,
                                signature_name=signature_name)
    return Teacher(backend, config.data.num_classes, output=q.output,
                   image_shape=config.data.image_shape, cache=AnswerCache(cache_path),
                   input_shape=tuple(q.image_shape) or getattr(backend, "input_shape_hint", None),
                   budget=q.budget or None, batch_size=q.batch_size, concurrency=q.concurrency,
                   max_tries=q.max_tries, backoff_seconds=q.backoff_seconds)


__all__ = ["OUTPUTS", "AnswerCache", "Backend", "CallableBackend", "GrpcBackend", "HttpBackend",
           "KerasBackend", "QueryStats", "SavedModelBackend", "Teacher", "backend_from_spec", "image_keys",
           "teacher_from_config", "to_probabilities"]
