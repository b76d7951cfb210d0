"""A real Open Inference Protocol server: MLServer (``make install`` puts it in
``.venv-mlserver``), started on 127.0.0.1 with a small runtime of this test's own
(tests/mlserver_toy.py), queried through the one Teacher wrapper over REST and gRPC
(issue #25, item 1)."""

import os

import numpy as np
import pytest
from mlserver_toy import MLSERVER, serving
from test_teachers import SHAPE, W, images, softmax_teacher

from kd_keras.teachers import make_teacher


@pytest.mark.slow
def test_an_mlserver_teacher_answers_through_the_one_wrapper(tmp_path):
    if not os.path.exists(MLSERVER):
        if os.environ.get("CI"):
            pytest.fail(f"{MLSERVER} is missing: make install builds it")
        pytest.skip(f"{MLSERVER} is missing: make install builds it")
    with serving(str(tmp_path), W, SHAPE) as (http_spec, grpc_spec):
        t = make_teacher(http_spec, 5, image_shape=SHAPE, batch_size=16, budget=40)
        x = images(40)
        np.testing.assert_allclose(t.query(x), softmax_teacher(x), atol=1e-5)
        assert t.paid == 40 and t.stats.requests == 3
        assert t.query(x).shape == (40, 5) and t.stats.cache_hits == 40  # cached: free
        g = make_teacher(grpc_spec, 5, image_shape=SHAPE,
                         batch_size=16)  # inference.GRPCInferenceService, binary tensors
        np.testing.assert_allclose(g.query(x), softmax_teacher(x), atol=1e-5)
        assert g.paid == 40
