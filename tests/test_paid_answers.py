"""Every answer the teacher was paid for is counted, and no sequence of refused answers,
failures, kills and resumes crosses the budget (issue #21, items 2 and 3)."""

import threading
import time

import numpy as np
import pytest

from kd_keras.errors import (BadAnswerError, BudgetExceededError, TeacherError,
                             TransientTeacherError)
from kd_keras.teachers import AnswerCache, CallableBackend, Teacher
from kd_keras.teachers.backends import HttpBackend
from kd_keras.teachers.server import PredictServer

from test_teachers import SHAPE, images, softmax_teacher

RUN = "/runs/paid"


class Billing:
    """A teacher function that counts every image it answered (what an API bills)."""

    def __init__(self, answer):
        self.answer, self.billed, self.calls = answer, 0, 0
        self._lock = threading.Lock()

    def __call__(self, x):
        with self._lock:
            self.billed += len(x)
            self.calls += 1
        return self.answer(x)


def teacher(fn, cache, budget=None, **kw):
    """A Teacher over ``fn`` that sends up to ``concurrency`` (4) requests at once, as an
    HTTP back end does."""
    backend = CallableBackend(fn)
    backend.concurrent = True
    kw.setdefault("batch_size", 64)
    return Teacher(backend, 5, image_shape=SHAPE, cache=cache, budget=budget, **kw)


BAD_ANSWERS = {
    "logits_for_probs": lambda x: np.log(softmax_teacher(x)),
    "nine_classes": lambda x: softmax_teacher(x)[:, :4] / softmax_teacher(x)[:, :4].sum(1, keepdims=True),
    "wrong_rows": lambda x: softmax_teacher(x)[1:],
    "strings": lambda x: [["a"] * 5 for _ in x],
    "infinity": lambda x: np.full((len(x), 5), np.inf),
}


@pytest.mark.parametrize("kind", sorted(BAD_ANSWERS))
def test_a_teacher_answering_another_form_costs_one_request_and_is_counted(kind):
    cache = AnswerCache(None)
    fn = Billing(BAD_ANSWERS[kind])
    t = teacher(fn, cache, budget=1500)
    t.open_ledger(RUN, resume=False)
    with pytest.raises(BadAnswerError):
        t.query(images(1000))
    assert fn.calls == 1 and fn.billed == 64  # the first request alone, then nothing
    assert t.paid == 64 and cache.paid(RUN) == 64  # refused, but paid: counted
    # the corrected rerun (resume) knows what was paid: the budget holds
    fixed = teacher(Billing(softmax_teacher), cache, budget=1500)
    fixed.open_ledger(RUN, resume=True)
    with pytest.raises(BudgetExceededError):
        fixed.query(images(1500, seed=2))
    assert fixed.backend.fn.billed == 0


def test_a_teacher_turning_to_nan_never_crosses_the_budget_over_resumes():
    cache = AnswerCache(None)
    good_until = [300]

    def turns(x):
        if good_until[0] <= 0:
            return np.full((len(x), 5), np.nan)
        good_until[0] -= len(x)
        return softmax_teacher(x)
    fn = Billing(turns)
    x = images(1000)
    for attempt in range(4):  # a run and three resumes
        t = teacher(fn, cache, budget=1200)
        t.open_ledger(RUN, resume=attempt > 0)
        with pytest.raises((BadAnswerError, BudgetExceededError)):
            t.query(x)
        assert cache.paid(RUN) == fn.billed <= 1200


def test_every_request_in_flight_is_in_the_ledger_before_it_is_answered():
    cache = AnswerCache(None)
    seen = []

    def watch(x):  # what the ledger says while the teacher is answering
        seen.append(cache.paid(RUN))
        return softmax_teacher(x)
    t = teacher(watch, cache, concurrency=1)
    t.open_ledger(RUN, resume=False)
    t.query(images(192))
    assert seen == [64, 128, 192]  # a kill -9 at any instant leaves the sent images counted


def test_a_retry_of_a_request_that_may_have_been_billed_counts_again_and_fits_the_budget():
    tries = []

    def timed_out_once(x):
        tries.append(len(x))
        if len(tries) == 1:
            raise TransientTeacherError("deadline passed", billed=True)
        return softmax_teacher(x)
    t = teacher(timed_out_once, AnswerCache(None), budget=200, backoff_seconds=0.001)
    t.query(images(64))
    assert t.paid == 128  # the lost answer may have been billed

    def always_lost(x):
        raise TransientTeacherError("deadline passed", billed=True)
    t2 = teacher(always_lost, AnswerCache(None), budget=100, backoff_seconds=0.001)
    with pytest.raises(BudgetExceededError, match="sending its 64 images again"):
        t2.query(images(64))
    assert t2.paid == 64


def test_a_refusal_with_a_status_is_not_counted():
    calls = []

    def busy_once(x):
        calls.append(1)
        if len(calls) == 1:
            raise TransientTeacherError("HTTP 503", billed=False)
        return softmax_teacher(x)
    t = teacher(busy_once, AnswerCache(None), budget=64, backoff_seconds=0.001)
    t.query(images(64))  # 503 then an answer: 64 paid, within a budget of exactly 64
    assert t.paid == 64 and len(calls) == 2


def test_concurrency_caps_requests_in_flight_across_parallel_queries():
    state = {"now": 0, "most": 0}
    lock = threading.Lock()

    def slow(x):
        with lock:
            state["now"] += 1
            state["most"] = max(state["most"], state["now"])
        time.sleep(0.05)
        with lock:
            state["now"] -= 1
        return softmax_teacher(x)
    t = teacher(slow, AnswerCache(None), concurrency=4, batch_size=8)
    t.query(images(8, seed=9))  # proves the teacher: later queries go concurrent
    threads = [threading.Thread(target=t.query, args=(images(128, seed=s),)) for s in (1, 2)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    assert state["most"] == 4


def test_rest_connection_refused_is_not_billed_and_a_hung_answer_is():
    server = PredictServer(softmax_teacher, "toy").start()
    url = server.url
    server.close()  # nothing listens: the request is never delivered
    refused = Teacher(HttpBackend(url, timeout=2), 5, image_shape=SHAPE, max_tries=2,
                      backoff_seconds=0.001)
    with pytest.raises(TeacherError, match="unreachable"):
        refused.query(images(4))
    assert refused.paid == 0


def test_labelling_an_array_copies_no_whole_set():
    """label_arrays reads its images batch by batch: no float32 copy of all of them, and no
    gathering of the images it does not return (issue #24, item 4)."""
    import tracemalloc

    from kd_keras.teachers.labelling import label_arrays

    x = np.random.default_rng(0).random((50000, *SHAPE)).astype(np.float32)  # 7.2 MB
    t = teacher(softmax_teacher, AnswerCache(None), batch_size=1024)
    tracemalloc.start()
    probs = label_arrays(x, t, "test")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    np.testing.assert_allclose(probs, softmax_teacher(x), atol=1e-5)
    assert peak < x.nbytes / 2, peak  # a whole copy would be x.nbytes


def test_a_rest_teacher_answering_bad_json_costs_one_request():
    from fake_http import _reply, _Server

    server = _Server(lambda h: _reply(h, 200, b"<html>not json</html>"))
    try:
        t = Teacher(HttpBackend(server.url, timeout=5), 5, image_shape=SHAPE, batch_size=64,
                    budget=1000)
        t.open_ledger(RUN, resume=False)
        with pytest.raises(BadAnswerError, match="not JSON"):
            t.query(images(500))
        with pytest.raises(BadAnswerError, match="no more images sent"):  # e.g. the other
            t.query(images(500, seed=3))  # labelling call running in parallel
        assert len(server.requests) == 1 and t.paid == 64 and t.cache.paid(RUN) == 64
    finally:
        server.close()
