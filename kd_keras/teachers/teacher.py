"""The one wrapper every teacher back end goes through: batching, concurrency, budget,
retries with backoff, answer validation and a persistent cache."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
import time
from typing import Callable, Optional, Sequence

import numpy as np

from kd_keras.data.rows import unit_float
from kd_keras.errors import (BadAnswerError, BudgetExceededError, ConfigError, DataError,
                             Interrupted, TeacherError, TransientTeacherError)
from kd_keras.teachers.answers import OUTPUTS, to_probabilities
from kd_keras.teachers.backends import CANCEL, Backend
from kd_keras.teachers.cache import AnswerCache, image_keys
from kd_keras.teachers.encoding import decode, encode


def adapt_images(images: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """Images resized (antialiased) and converted (gray <-> RGB) to ``shape``, in [0, 1]."""
    import tensorflow as tf

    x = tf.convert_to_tensor(images, tf.float32)
    if x.shape[-1] == 1 and shape[2] == 3:
        x = tf.image.grayscale_to_rgb(x)
    elif x.shape[-1] == 3 and shape[2] == 1:
        x = tf.image.rgb_to_grayscale(x)
    if tuple(x.shape[1:3]) != tuple(shape[:2]):
        x = tf.image.resize(x, shape[:2], antialias=True)
    return np.clip(x.numpy(), 0.0, 1.0)


@dataclasses.dataclass
class QueryStats:
    """What querying cost so far: images answered by the teacher, cache hits, requests."""

    sent: int = 0
    cache_hits: int = 0
    requests: int = 0
    retries: int = 0


class Teacher:
    """``query(images) -> probabilities [n, num_classes]`` for any back end.

    Args:
      backend: sends one batch and returns the raw answer.
      num_classes: the class count the answers must have.
      output: what the back end answers: ``probs``, ``logits``, ``label`` or ``topk``.
      image_shape: if given, images of another shape are refused before anything is sent.
      input_shape: the teacher's own input (height, width, channels), if it differs from
        the images': they are resized and their channels converted before sending, so a
        224x224 RGB teacher can teach a 96x96 (or grayscale) student.
      cache: answers already paid for; looked up first, written after every batch.
      budget: most images ever sent (cache hits are free); ``None`` or 0 means no limit.
      batch_size: images per request.
      concurrency: requests in flight at once (for back ends that benefit, e.g. HTTP).
      max_tries, backoff_seconds: retry policy for transient failures (doubling delay).
      tolerance: how far probability rows may be from summing to 1.
      follow_seconds: if set, never send: wait up to this long for another process (the
        chief of a multi-worker run) to put the answers in the shared cache.
      follow_check: called while following; raises if that process is known to be gone
        (:func:`kd_keras.strategy.chief_watch`).
      retry_after_cap: the longest wait a server's ``Retry-After`` may ask for.

    The budget covers every answer a run ever paid for once :meth:`open_ledger` ties the
    teacher to a run (the ledger lives in the cache file); images another process sharing
    the cache is buying right now are waited for, not bought twice.
    """

    def __init__(self, backend: Backend, num_classes: int, *, output: str = "probs",
                 image_shape: Optional[Sequence[int]] = None,
                 input_shape: Optional[Sequence[int]] = None,
                 cache: Optional[AnswerCache] = None, budget: Optional[int] = None,
                 batch_size: int = 256, concurrency: int = 4, max_tries: int = 5,
                 backoff_seconds: float = 0.5, tolerance: float = 1e-3,
                 follow_seconds: Optional[float] = None, retry_after_cap: float = 60.0,
                 follow_check: Optional[Callable[[], None]] = None):
        if output not in OUTPUTS:
            raise ConfigError(f"unknown teacher output {output!r}; choose one of {OUTPUTS}")
        if int(batch_size) < 1 or int(max_tries) < 1 or int(num_classes) < 1:
            raise ConfigError("the teacher's batch_size, max_tries and num_classes must be >= 1; "
                              f"got {batch_size}, {max_tries}, {num_classes}")
        self.backend, self.num_classes, self.output = backend, int(num_classes), output
        self.image_shape = tuple(image_shape) if image_shape is not None else None
        self.input_shape = tuple(int(d) for d in input_shape) if input_shape else None
        if self.input_shape is not None and (len(self.input_shape) != 3
                                             or self.input_shape[2] not in (1, 3)):
            raise ConfigError(f"the teacher's input shape must be (height, width, 1 or 3); "
                              f"got {self.input_shape}")
        self.cache = cache if cache is not None else AnswerCache(None)
        self.budget = budget or None
        self.batch_size, self.max_tries = int(batch_size), int(max_tries)
        self.concurrency = max(1, int(concurrency)) if backend.concurrent else 1
        self.backoff_seconds, self.tolerance = backoff_seconds, tolerance
        self.follow_seconds, self.retry_after_cap = follow_seconds, float(retry_after_cap)
        self.follow_check = follow_check
        self.encoding = getattr(backend, "encoding", "none")  # images sent as PNG or JPEG
        self.identity = f"{backend.identity}|{output}"
        self.stats = QueryStats()
        self._new_locks()
        self._proven = False  # whether an answer of this teacher has passed validation
        self._refused: Optional[BadAnswerError] = None  # the answer that did not
        self.run: Optional[str] = None  # the run whose ledger the answers go to
        self.paid_before = 0  # answers that run paid for in earlier processes

    def _new_locks(self) -> None:
        self._lock = threading.Lock()
        self._reserved = 0  # images claimed by query() calls and not yet paid for
        # at most ``concurrency`` requests in flight, however many query() calls run at once
        self._slots = threading.BoundedSemaphore(self.concurrency)
        self._probe_lock = threading.Lock()  # one request alone until an answer is proven

    @property
    def paid(self) -> int:
        """Answers the run has paid for, in this process and (after open_ledger) before."""
        return self.paid_before + self.stats.sent

    def open_ledger(self, run: str, resume: bool) -> None:
        """Ties answers to ``run`` (e.g. its workdir): a resumed run's budget counts what
        it paid before; a new run starts its ledger at zero."""
        if self.follow_seconds is not None:
            return  # a follower never pays
        if not resume:
            self.cache.reset_ledger(run)
        self.run, self.paid_before = run, self.cache.paid(run)
        if resume and self.budget:
            print(f"budget: {self.paid_before} of {self.budget} answers paid before; "
                  f"{max(self.budget - self.paid_before, 0)} left", flush=True)

    def fork(self, budget: Optional[int] = None) -> "Teacher":
        """The same teacher and cache with fresh counters (e.g. to count eval queries apart)."""
        other = Teacher.__new__(Teacher)
        other.__dict__.update(self.__dict__)
        other.budget, other.stats = budget or None, QueryStats()
        other._new_locks()
        other.run, other.paid_before = None, 0
        return other

    def _check_images(self, images: np.ndarray) -> np.ndarray:
        images = unit_float(images)  # 8-bit pixels k are k / 255, as every source reads them
        if images.ndim != 4:
            raise DataError(f"teacher queries take images [n, height, width, channels], got {images.shape}")
        if self.image_shape is not None and images.shape[1:] != self.image_shape:
            raise DataError(f"images have shape {images.shape[1:]}, the teacher takes {self.image_shape}")
        if self.input_shape is not None and images.shape[1:] != self.input_shape:
            images = adapt_images(images, self.input_shape)
        return images

    def _charge(self, n: int, on_paid, again: bool) -> None:
        """Enters ``n`` images as paid *before* they are sent (in the run's ledger too), so
        an answer lost in flight (kill -9, Ctrl-C) or refused later is still counted.
        ``again`` is a re-send of images already charged once: it must fit the budget."""
        with self._lock:
            if again and self.budget is not None and self.paid + self._reserved + n > self.budget:
                raise BudgetExceededError(
                    f"the teacher may have answered (and billed) a request that then failed; "
                    f"sending its {n} images again would cross the query budget of "
                    f"{self.budget} ({self.paid} paid by this run)")
            self.stats.sent += n
            if on_paid is not None and not again:
                on_paid(n)  # the reservation turns into payment in one step
            if self.run is not None:
                self.cache.add_paid(self.run, n)

    def _refund(self, n: int, on_paid) -> None:
        """Takes back a charge for a request the teacher refused without answering."""
        with self._lock:
            self.stats.sent -= n
            if on_paid is not None:
                on_paid(-n)
            if self.run is not None:
                self.cache.add_paid(self.run, -n)

    def _ask(self, images: np.ndarray, on_paid=None) -> np.ndarray:
        """One batch through the back end, retrying transient failures; validated answers.

        The images are charged before each try (``on_paid(n)`` runs under the lock, so a
        reservation turns into payment in one step); a try the teacher refused without
        answering is refunded. Once an answer was refused as malformed, nothing more is
        sent: a teacher answering in another form than configured costs one request."""
        delay, charged = self.backoff_seconds, False
        for attempt in range(1, self.max_tries + 1):
            if self._refused is not None:
                raise BadAnswerError(f"{self._refused} (no more images sent)")
            if CANCEL.is_set():
                raise Interrupted("interrupted before sending")
            self._charge(len(images), on_paid, again=charged)
            charged = True
            try:
                with self._lock:
                    self.stats.requests += 1
                with self._slots:
                    raw = self.backend.predict(images)
                break
            except TransientTeacherError as e:
                if not e.billed:
                    self._refund(len(images), on_paid)
                    charged = False
                if attempt == self.max_tries:
                    raise TeacherError(f"{e} (gave up after {self.max_tries} tries)") from None
                with self._lock:
                    self.stats.retries += 1
                wait = delay if e.retry_after is None else min(max(e.retry_after, delay),
                                                               self.retry_after_cap)
                if CANCEL.wait(wait):
                    raise Interrupted("interrupted while waiting to retry") from None
                delay *= 2
            except BadAnswerError as e:  # answered (paid), but not in a form kd_keras reads
                self._refused = e
                raise
            except TeacherError:  # refused with a reason (4xx, a local model's check)
                self._refund(len(images), on_paid)
                raise
        try:
            probs = to_probabilities(raw, self.output, len(images), self.num_classes,
                                     self.tolerance)
        except BadAnswerError as e:
            self._refused = e
            raise
        self._proven = True
        return probs

    def check_affordable(self, images: np.ndarray, what: str, chunk: int = 4096) -> int:
        """Refuses, before anything is sent, a set whose images not yet answered would cross
        the budget (a set is bought whole or not at all). Returns how many are unanswered."""
        missing = set()
        for i in range(0, len(images), chunk):
            keys = image_keys(self.prepared(images[i:i + chunk])[0], self.identity)
            known = self.cache.get_many(keys)
            missing.update(k for k in keys if k not in known)
        if self.budget is not None and self.paid + len(missing) > self.budget:
            raise BudgetExceededError(
                f"{what}: {len(missing)} images are not answered yet, and buying them would "
                f"cross the query budget of {self.budget} ({self.paid} already paid); nothing "
                "was sent. Raise --config.query.budget or label fewer images")
        return len(missing)

    def prepared(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(the pixels the teacher sees, what is sent) for ``images``: checked, adapted to its
        input shape, and with an encoding (``backend.encoding``, PNG or JPEG) the encoded
        bytes, whose decoding the first element is."""
        images = self._check_images(images)
        if self.encoding == "none":
            return images, images
        sent, seen = np.empty(len(images), dtype=object), np.empty_like(images)
        for i, image in enumerate(images):
            sent[i] = encode(image, self.encoding)
            seen[i] = decode(sent[i], images.shape[-1])
        return seen, sent

    def query(self, images: np.ndarray) -> np.ndarray:
        """Probabilities for ``images``; only images never answered before are sent."""
        return self.query_seen(images)[1]

    def query_seen(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(images as the student should see them, probabilities): with an encoding, the
        decoded pixels the teacher answered about (so the student trains on exactly those),
        else the images themselves; only images never answered before are sent."""
        seen, sent = self.prepared(images)
        if self.input_shape is not None and self.encoding != "none":
            # resized for the teacher: the student keeps its own size (the pixels as given)
            student_view = np.asarray(images, np.float32)
        else:
            student_view = seen
        if not len(seen):
            return student_view, np.zeros((0, self.num_classes), np.float32)
        return student_view, self._answers(seen, sent)

    def _answers(self, images: np.ndarray, sent: np.ndarray) -> np.ndarray:
        keys = image_keys(images, self.identity)
        known = self.cache.get_many(keys)
        if self.follow_seconds is not None:
            return self._follow(keys, known)
        with self._lock:
            self.stats.cache_hits += sum(1 for k in keys if k in known)
        first = {k: i for i, k in reversed(list(enumerate(keys)))}
        while True:
            missing = [k for k in dict.fromkeys(keys) if k not in known]
            if not missing:
                return np.stack([known[k] for k in keys]).astype(np.float32)
            mine, others = self.cache.claim(missing)
            if mine:
                self._buy(mine, sent[[first[k] for k in mine]], known)
            if others:  # another process is buying these: wait for its answers
                self._wait_for(others, known)

    def _buy(self, keys: list, images: np.ndarray, known: dict) -> None:
        """Sends claimed images in batches within the budget; their answers go to ``known``."""
        with self._lock:
            committed = self.paid + self._reserved
            if self.budget is not None and committed + len(keys) > self.budget:
                self.cache.release(keys)
                raise BudgetExceededError(
                    f"sending {len(keys)} more images would cross the query budget of "
                    f"{self.budget} ({committed} already paid by this run); those were not sent. "
                    "Raise --config.query.budget or use fewer synthetic images.")
            self._reserved += len(keys)
        unpaid = [len(keys)]  # of this reservation; paid images count in ``paid`` instead

        def paid(n: int) -> None:  # under self._lock
            self._reserved -= n
            unpaid[0] -= n
        try:
            batches = [(keys[i:i + self.batch_size], images[i:i + self.batch_size])
                       for i in range(0, len(keys), self.batch_size)]
            self._run_batches(batches, known, paid)
        finally:
            self.cache.release([k for k in keys if k not in known])
            with self._lock:
                self._reserved -= unpaid[0]

    def _wait_for(self, keys: list, known: dict) -> None:
        """Polls the cache until answers to ``keys`` appear or their claims lapse."""
        while keys:
            if CANCEL.wait(0.2):
                raise Interrupted("interrupted while waiting for another process's answers")
            known.update(self.cache.get_many(keys))
            keys = [k for k in keys if k not in known]
            if keys and self.cache.claim(keys)[0]:
                return  # some claims lapsed and are ours now: the caller buys them

    def _follow(self, keys: list, known: dict) -> np.ndarray:
        """Waits for answers another process is paying for to appear in the shared cache."""
        deadline = time.time() + self.follow_seconds
        with self._lock:
            self.stats.cache_hits += len(keys)
        while True:
            missing = [k for k in dict.fromkeys(keys) if k not in known]
            if not missing:
                return np.stack([known[k] for k in keys]).astype(np.float32)
            if time.time() > deadline:
                raise TeacherError(f"waited {self.follow_seconds:.0f}s for the chief worker's "
                                   f"answers to {len(missing)} images in {self.cache.path}; "
                                   "do all workers share one --cache file?")
            if self.follow_check is not None:
                self.follow_check()
            time.sleep(0.5)
            known.update(self.cache.get_many(missing))

    def _run_batches(self, batches, known: dict, on_paid=None) -> None:
        def one(batch):
            batch_keys, batch_images = batch
            probs = self._ask(batch_images, on_paid)
            self.cache.put_many(batch_keys, probs)  # before anything else can fail
            known.update(zip(batch_keys, probs))

        if not self._proven:  # one request alone until the teacher's answers are proven
            with self._probe_lock:
                if not self._proven and batches:
                    one(batches[0])
                    batches = batches[1:]
        errors = []
        with concurrent.futures.ThreadPoolExecutor(self.concurrency) as pool:
            for future in concurrent.futures.as_completed([pool.submit(one, b) for b in batches]):
                try:
                    future.result()
                except TeacherError as e:
                    errors.append(e)
        if errors:
            bad = next((e for e in errors if isinstance(e, BadAnswerError)), errors[0])
            raise type(bad)(f"{bad} [{len(errors)} of {len(batches)} batches failed; answers "
                            "to the others are cached]")
