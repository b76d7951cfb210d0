"""Teachers that answer class *names* with scores, one encoded image per request: the shape
of hosted image-classification endpoints (Hugging Face Inference and its look-alikes).

``hf+http(s)://HOST[:PORT]/models/NAME``: each image is POSTed as PNG bytes (lossless for
the uint8 pixels of real photos) to ``http(s)://HOST[:PORT]/models/NAME``, which answers
``[{"label": "Sneaker", "score": 0.91}, …]`` (the top few; ``[[…]]`` is accepted too). The
names map to indices through ``--teacher_classes=FILE`` (one name a line, in index order), and
the answers become partial top-k answers. The Teacher sends one image per request, each
counted as it is sent, ``query.concurrency`` requests at once (raise it for a slow service);
its first request goes alone, so an answer naming a class not in the file is an error naming
it after one request.

Another label-name API needs only a subclass: override :meth:`request` (what one image's
request is) and :meth:`labels_and_scores` (how its answer reads), and register its scheme in
:data:`kd_keras.teachers.PROTOCOLS`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from kd_keras.errors import BadAnswerError, TeacherError
from kd_keras.teachers.backends import (
    PROTOCOLS,
    Backend,
    BackendOptions,
    HttpBackend,
    JSONDecodeError,
    loads,
)
from kd_keras.teachers.encoding import encode


def read_class_names(path: str) -> tuple[str, ...]:
    """Class names, one a line in index order (blank lines ignored)."""
    try:
        with open(path, encoding="utf-8") as f:
            names = tuple(line.strip() for line in f if line.strip())
    except (OSError, UnicodeDecodeError) as e:
        raise TeacherError(f"cannot read --teacher_classes {path}: {e}") from None
    if len(set(names)) != len(names):
        raise TeacherError(f"--teacher_classes {path} names a class twice")
    if not names:
        raise TeacherError(f"--teacher_classes {path} holds no class names")
    return names


class ClassNameBackend(Backend):
    """Posts one PNG per request; answers ``{"classes": rows, "scores": rows}`` (top-k)."""

    concurrent = True
    answers = "topk"  # what the Teacher must read its answers as
    images_per_request = 1

    def __init__(self, spec: str, class_names: Sequence[str], options: BackendOptions):
        if not class_names:
            raise TeacherError(f"teacher {spec} answers class names: give them with "
                               "--teacher_classes=FILE (one name a line, in index order)")
        self.url = spec.split("+", 1)[1]
        # the transport (deadlines, tokens, redirects, size caps, Ctrl-C) is the REST one's
        self._http = HttpBackend(self.url, token_env=options.token_env, timeout=options.timeout)
        self._http._path = self._http._path[:-len(":predict")]
        self.url = self._http.url
        self.index = {name: i for i, name in enumerate(class_names)}
        self.identity = f"names:{self.url}:{len(class_names)}"

    def request(self, image: np.ndarray) -> bytes:
        return encode(image, "png")

    def labels_and_scores(self, body: bytes) -> list[tuple[str, float]]:
        try:
            answer = loads(body)
        except JSONDecodeError:
            raise BadAnswerError(f"teacher at {self.url} answered something that is not JSON: "
                                 f"{self._http._mask(repr(body[:80]))}") from None
        if isinstance(answer, list) and len(answer) == 1 and isinstance(answer[0], list):
            answer = answer[0]
        if not isinstance(answer, list) or not all(
                isinstance(a, dict) and "label" in a and "score" in a for a in answer):
            raise BadAnswerError(f"teacher at {self.url} answered "
                                 f"{self._http._mask(repr(body[:80]))}; expected "
                                 "[{\"label\": ..., \"score\": ...}, ...]")
        return [(str(a["label"]), a["score"]) for a in answer]

    def _one(self, image: np.ndarray) -> tuple[list[int], list[float]]:
        status, headers, body = self._http._exchange(self.request(image),
                                                     content_type="image/png")
        self._http.check_status(status, headers, body)
        classes, scores = [], []
        for label, score in self.labels_and_scores(body):
            if label not in self.index:
                raise BadAnswerError(f"teacher at {self.url} answered the class {label!r}, "
                                     "which --teacher_classes does not name")
            classes.append(self.index[label])
            scores.append(score)
        return classes, scores

    def predict(self, images):
        rows = [self._one(image) for image in images]  # the Teacher sends one at a time
        return {"classes": [c for c, _ in rows], "scores": [s for _, s in rows]}


for _scheme in ("hf+http", "hf+https"):
    PROTOCOLS.register(_scheme, lambda spec, o: ClassNameBackend(spec, o.class_names, o))


__all__ = ["ClassNameBackend", "read_class_names"]
