"""The one way a teacher is built, for the commands and the Python API alike: a spec string
(or a Python function) becomes a back end of a registered protocol, wrapped in the
:class:`Teacher` that batches, counts, caps, retries, validates and caches."""

from __future__ import annotations

import os
from typing import Any, Callable, Optional, Sequence, Union

import numpy as np

from kd_keras.errors import TeacherError
from kd_keras.teachers.backends import PROTOCOLS, Backend, BackendOptions, CallableBackend
from kd_keras.teachers.cache import AnswerCache
from kd_keras.teachers.class_names import read_class_names
from kd_keras.teachers.teacher import Teacher

Target = Union[str, Callable[[np.ndarray], Any]]


def scheme(spec: str) -> str:
    """The protocol a spec names: ``http`` for ``http://…``, ``savedmodel`` for
    ``savedmodel:DIR``; a bare folder is a SavedModel."""
    if "://" in spec:
        return spec.split("://", 1)[0]
    kind, sep, arg = spec.partition(":")
    if sep and arg and kind in PROTOCOLS:
        return kind
    return "savedmodel" if os.path.isdir(spec) else kind


def backend_from_spec(spec: str, token_env: Optional[str] = None, timeout: float = 30.0,
                      signature_name: Optional[str] = None,
                      class_names: Sequence[str] = (), encoding: str = "none") -> Backend:
    """The back end named by a ``--teacher`` spec string."""
    kind = scheme(spec)
    if kind not in PROTOCOLS:
        raise TeacherError(f"unknown teacher spec {spec!r}: use savedmodel:DIR, keras:FILE.keras, "
                           "http(s)://host:port/v1/models/NAME or grpc://host:port/models/NAME "
                           f"(protocols: {', '.join(PROTOCOLS.names())})")
    if "://" not in spec and os.path.isdir(spec):
        spec = f"savedmodel:{spec}"
    backend = PROTOCOLS.lookup(kind)(spec, BackendOptions(
        token_env, float(timeout), signature_name, tuple(class_names), encoding))
    if encoding != "none" and getattr(backend, "encoding", "none") != encoding:
        raise TeacherError(f"teacher {spec!r} cannot be sent encoded images "
                           f"(query.encoding={encoding}): only TF Serving REST and gRPC can")
    return backend


def make_teacher(target: Target, num_classes: int, *, output: str = "probs",
                 budget: Optional[int] = None, cache: Optional[str] = None,
                 image_shape: Optional[Sequence[int]] = None,
                 input_shape: Optional[Sequence[int]] = None, token_env: Optional[str] = None,
                 signature: Optional[str] = None, timeout: float = 30.0, batch_size: int = 256,
                 concurrency: int = 4, max_tries: int = 5, backoff_seconds: float = 0.5,
                 class_names: Union[str, Sequence[str], None] = None,
                 encoding: str = "none") -> Teacher:
    """A :class:`Teacher` for a spec string or a Python function ``images -> answers``.

    ``input_shape`` (the teacher's own image size) defaults to what the back end reports
    (a SavedModel's fixed signature), so images are resized for it the same way everywhere.
    ``class_names`` (a file, one name a line, or the names) maps a teacher's class names to
    indices; a back end that answers in one form (class names: top-k) sets ``output``.
    """
    if isinstance(class_names, str):
        class_names = read_class_names(class_names)
    if class_names and len(class_names) != num_classes:
        raise TeacherError(f"--teacher_classes names {len(class_names)} classes, the config "
                           f"expects {num_classes}")
    backend = (CallableBackend(target) if callable(target) else
               backend_from_spec(target, token_env=token_env, timeout=timeout,
                                 signature_name=signature, class_names=class_names or (),
                                 encoding=encoding))
    output = getattr(backend, "answers", None) or output
    batch_size = getattr(backend, "images_per_request", None) or batch_size
    return Teacher(backend, num_classes, output=output, image_shape=image_shape,
                   input_shape=tuple(input_shape or ()) or getattr(backend, "input_shape_hint", None),
                   cache=AnswerCache(cache), budget=budget or None, batch_size=batch_size,
                   concurrency=concurrency, max_tries=max_tries, backoff_seconds=backoff_seconds)


def teacher_from_config(spec: Target, config, cache_path: Optional[str],
                        token_env: Optional[str] = None,
                        signature_name: Optional[str] = None) -> Teacher:
    """A :class:`Teacher` for ``spec`` with the query settings of an experiment config."""
    q = config.query
    return make_teacher(spec, config.data.num_classes, output=q.output, budget=q.budget,
                        class_names=q.class_names or None, encoding=q.encoding,
                        cache=cache_path, image_shape=config.data.image_shape,
                        input_shape=q.image_shape, token_env=token_env,
                        signature=signature_name, timeout=q.timeout_seconds,
                        batch_size=q.batch_size, concurrency=q.concurrency,
                        max_tries=q.max_tries, backoff_seconds=q.backoff_seconds)
