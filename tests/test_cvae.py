import keras
import numpy as np
import pytest
import tensorflow_probability as tfp

from conftest import make_images
from kd_keras.synthesis.cvae import CVAE, train_cvae

tfd = tfp.distributions


def _data(n=200):
    x, y = make_images(n, size=16)
    return x[..., None].astype(np.float32) / 255, np.eye(10, dtype=np.float32)[y]


@pytest.mark.parametrize("architecture", ["conv", "mlp"])
def test_distributions_are_tfp_and_elbo_decreases(architecture):
    x, y = _data()
    model = CVAE((16, 16, 1), 10, latent_dim=2, architecture=architecture)
    model.compile(optimizer="adam")
    before = model.evaluate(x, y, batch_size=100, verbose=0, return_dict=True)["loss"]
    assert isinstance(model.posterior(x[:4], y[:4]), tfd.Distribution)
    likelihood = model.likelihood(np.zeros((4, 2), np.float32), y[:4])
    assert isinstance(likelihood, tfd.Distribution) and likelihood.event_shape == (16, 16, 1)
    trained = train_cvae(x, y, latent_dim=2, epochs=15, batch_size=50, learning_rate=3e-3,
                         architecture=architecture, verbose=0)
    assert trained.get_config()["architecture"] == architecture
    after = trained.evaluate(x, y, batch_size=100, verbose=0, return_dict=True)["loss"]
    assert after < 0.8 * before


def test_samples_shape_range_and_class_balance():
    x, y = _data(60)
    model = train_cvae(x, y, latent_dim=3, epochs=1, batch_size=30, learning_rate=1e-3, verbose=0)
    images, labels = model.sample(50, seed=1)
    assert images.shape == (50, 16, 16, 1) and images.min() >= 0 and images.max() <= 1
    np.testing.assert_array_equal(np.bincount(labels), np.full(10, 5))
    again, _ = model.sample(50, seed=1)
    np.testing.assert_array_equal(images, again)  # same seed, same images (cache-friendly)


def test_hybrid_latents_half_gaussian_half_uniform():
    model = CVAE((16, 16, 1), 10, latent_dim=2, uniform_bound=3.0)
    z = model.hybrid_latents(20000, seed=0).numpy()
    normal, uniform = z[:10000], z[10000:]
    assert np.abs(uniform).max() <= 3.0 and abs(uniform.var() - 3.0) < 0.15  # U(-3,3): var 3
    assert abs(normal.var() - 1.0) < 0.05 and np.abs(normal).max() > 3.0


def test_normal_likelihood_for_colour_images():
    x = np.random.default_rng(0).random((40, 8, 8, 3)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[np.arange(40) % 10]
    model = train_cvae(x, y, latent_dim=2, epochs=1, batch_size=20, learning_rate=1e-3,
                       likelihood="normal", verbose=0)
    images, _ = model.sample(10)
    assert images.shape == (10, 8, 8, 3)


def test_trains_under_a_mixed_precision_policy():
    """Layers compute in bfloat16, the distributions (and so the ELBO) stay float32."""
    import keras

    x, y = _data(64)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = train_cvae(x, y, latent_dim=2, epochs=1, batch_size=32, learning_rate=1e-3,
                           verbose=0)
        assert model.decoder.layers[-1].compute_dtype == "bfloat16"
        assert model.likelihood(np.zeros((2, 2), np.float32), y[:2]).dtype == np.float32
        assert np.isfinite(model.evaluate(x, y, verbose=0, return_dict=True)["loss"])
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_mlp_is_the_papers_dense_cvae():
    """FS-BBT's MNIST/Fashion-MNIST CVAE: image + one-hot -> 256-128-64 -> latent; back
    through 64-128-256 to one output per pixel."""
    model = CVAE((28, 28, 1), 10, latent_dim=2, architecture="mlp")
    units = lambda m: [l.units for l in m.layers if isinstance(l, keras.layers.Dense)]  # noqa
    assert units(model.encoder) == [256, 128, 64, 4]
    assert units(model.decoder) == [64, 128, 256, 784]
    assert not any(isinstance(l, keras.layers.Conv2D) for l in model.decoder.layers)


@pytest.mark.slow
def test_an_interrupted_cvae_resumes_from_its_last_epoch(idx_dir, tmp_path, monkeypatch):
    from kd_keras import data
    from kd_keras.distill.run import run_fsbbt
    from kd_keras.synthesis import cvae as cvae_module
    from kd_keras.teachers import AnswerCache, CallableBackend, Teacher

    from test_distill import _Crash, _Epochs, tiny_config, toy_teacher

    config = tiny_config(idx_dir)
    config.synthesis.sources, config.synthesis.selection = "real,cvae", "random"
    config.cvae.epochs, config.student.epochs = 3, 1
    unlabeled = data.load("fashion_mnist:train[:100]", (28, 28, 1), data_dir=idx_dir).unlabeled()
    cache, workdir = str(tmp_path / "cache.sqlite"), str(tmp_path / "run")
    train = cvae_module.train_cvae
    extra = [_Crash()]
    monkeypatch.setattr(cvae_module, "train_cvae",
                        lambda *a, callbacks, **kw: train(*a, callbacks=callbacks + extra, **kw))
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_fsbbt(config, Teacher(CallableBackend(toy_teacher), 10, cache=AnswerCache(cache)),
                  unlabeled, None, workdir)
    extra[:] = [_Epochs()]
    run_fsbbt(config, Teacher(CallableBackend(toy_teacher), 10, cache=AnswerCache(cache)),
              unlabeled, None, workdir, resume=True)
    assert extra[0].seen == [1, 2]  # the CVAE went on from its checkpoint, not from epoch 0
