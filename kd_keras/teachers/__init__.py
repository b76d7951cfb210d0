"""Black-box teachers: one spec string picks a back end, one wrapper makes it safe.

Specs: ``savedmodel:DIR``, ``keras:FILE.keras``, ``http(s)://host:port/v1/models/NAME
[/versions/V]`` (TensorFlow Serving REST), ``grpc(s)://host:port/models/NAME[/versions/V]``
(TensorFlow Serving gRPC, binary tensors: the fast way to a served teacher). Python callables
go through :class:`CallableBackend`.
"""

from __future__ import annotations

from kd_keras.teachers.answers import OUTPUTS, to_probabilities
from kd_keras.teachers.backends import (PROTOCOLS, Backend, BackendOptions, CallableBackend,
                                        GrpcBackend, HttpBackend, KerasBackend,
                                        SavedModelBackend)
from kd_keras.teachers.cache import AnswerCache, image_keys
from kd_keras.teachers.class_names import ClassNameBackend, read_class_names
from kd_keras.teachers.factory import backend_from_spec, make_teacher, teacher_from_config
from kd_keras.teachers.teacher import QueryStats, Teacher

__all__ = ["OUTPUTS", "PROTOCOLS", "AnswerCache", "Backend", "BackendOptions", "CallableBackend",
           "ClassNameBackend", "GrpcBackend", "HttpBackend", "KerasBackend", "QueryStats", "SavedModelBackend",
           "Teacher", "backend_from_spec", "image_keys", "make_teacher", "read_class_names",
           "teacher_from_config", "to_probabilities"]
