import importlib.util
import os

import pytest

from conftest import ROOT
from kd_keras import models
from kd_keras.distill.run import parse_sources, synthetic_counts

CONFIGS = ["fashion_mnist", "mnist", "cifar10", "cifar100", "digits"]


def load(name, variant=None):
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "configs", f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(variant)


@pytest.mark.parametrize("name", CONFIGS)
def test_configs_name_real_models_and_a_quick_variant(name):
    paper, quick = load(name), load(name, "quick")
    for c in (paper, quick):
        assert c.teacher.model in models.BUILDERS and c.student.model in models.BUILDERS
        parse_sources(c.synthesis.sources)
    assert quick.student.epochs < paper.student.epochs
    assert quick.synthesis.num_synthetic <= paper.synthesis.num_synthetic
    with pytest.raises(ValueError, match="unknown config variant"):
        load(name, "huge")


def test_fashion_mnist_has_the_papers_settings():
    c = load("fashion_mnist", "paper")
    assert (c.synthesis.selection, c.student.lr_schedule) == ("random", "constant")
    assert load("fashion_mnist").synthesis.selection == "uncertainty"  # measured better
    assert (c.synthesis.num_synthetic, c.cvae.latent_dim, c.cvae.batch_size) == (48000, 2, 256)
    assert (c.student.batch_size, c.student.learning_rate, c.student.epochs) == (64, 1e-3, 50)
    assert (c.mixup.alpha, c.mixup.low, c.mixup.high, c.mixup.decimals) == (1.0, 0.05, 0.95, 2)
    assert c.data.unlabeled == "fashion_mnist:train[:2000]"


def test_synthetic_counts_follow_the_sources():
    c = load("fashion_mnist")
    plan, n_cvae = synthetic_counts(c, 2000)
    assert len(plan) + n_cvae == 48000 and 3000 < n_cvae < 7000  # CVAE replaces dropped pairs
    c.synthesis.cvae_share = 0.25
    plan, n_cvae = synthetic_counts(c, 2000)
    assert (len(plan), n_cvae) == (36000, 12000)
    c.synthesis.sources = "real,mixup"
    assert len(synthetic_counts(c, 2000)[0]) == 48000
    c.synthesis.sources = "real,cvae"
    assert synthetic_counts(c, 2000) == (None, 48000)
    c.synthesis.sources = "real"
    assert synthetic_counts(c, 2000) == (None, 0)
    with pytest.raises(ValueError, match="synthesis.sources"):
        parse_sources("real,gan")
