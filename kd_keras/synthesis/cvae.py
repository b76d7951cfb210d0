"""A conditional VAE (FS-BBT step 3) whose encoder and decoder produce TFP distributions.

The encoder gives the posterior q(z | x, y) (a diagonal Gaussian), the decoder the
likelihood p(x | z, y) (Bernoulli or Normal per pixel); ``train_step`` maximises the ELBO
``E_q[log p(x | z, y)] - KL(q || N(0, I))`` through ``fit``. Sampling is the paper's
"hybrid": half the latents from N(0, I), half from Uniform(-b, b), class-balanced labels.
"""

from __future__ import annotations

import os
from typing import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from keras import layers

from kd_keras.data.epochs import epoch_batches, prefetched
from kd_keras.errors import ConfigError
from kd_keras.strategy import MultiWorkerFit, compile_built
from kd_keras.synthesis.base import IndexedCandidates, Synthesizer, register
from kd_keras.data.rows import quantize, unit_float

tfd = tfp.distributions


def _conv_encoder(image_shape: Sequence[int], num_classes: int, latent_dim: int) -> keras.Model:
    x_in, y_in = keras.Input(tuple(image_shape)), keras.Input((num_classes,))
    h = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu")(x_in)
    h = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Concatenate()([layers.Flatten()(h), y_in])
    h = layers.Dense(256, activation="relu")(h)
    return keras.Model([x_in, y_in], layers.Dense(2 * latent_dim)(h), name="encoder")


def _conv_decoder(image_shape: Sequence[int], num_classes: int, latent_dim: int) -> keras.Model:
    height, width, channels = image_shape
    if height % 4 or width % 4:
        raise ConfigError(f"the conv CVAE needs image sides divisible by 4, got {image_shape}; "
                          f"use cvae.architecture=mlp")
    z_in, y_in = keras.Input((latent_dim,)), keras.Input((num_classes,))
    h = layers.Concatenate()([z_in, y_in])
    h = layers.Dense(256, activation="relu")(h)
    h = layers.Dense((height // 4) * (width // 4) * 64, activation="relu")(h)
    h = layers.Reshape((height // 4, width // 4, 64))(h)
    h = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu")(h)
    return keras.Model([z_in, y_in], layers.Conv2D(channels, 3, padding="same")(h), name="decoder")


MLP_UNITS = (256, 128, 64)  # the paper's code for MNIST and Fashion-MNIST


def _mlp_encoder(image_shape: Sequence[int], num_classes: int, latent_dim: int) -> keras.Model:
    x_in, y_in = keras.Input(tuple(image_shape)), keras.Input((num_classes,))
    h = layers.Concatenate()([layers.Flatten()(x_in), y_in])
    for units in MLP_UNITS:
        h = layers.Dense(units, activation="relu")(h)
    return keras.Model([x_in, y_in], layers.Dense(2 * latent_dim)(h), name="encoder")


def _mlp_decoder(image_shape: Sequence[int], num_classes: int, latent_dim: int) -> keras.Model:
    z_in, y_in = keras.Input((latent_dim,)), keras.Input((num_classes,))
    h = layers.Concatenate()([z_in, y_in])
    for units in reversed(MLP_UNITS):
        h = layers.Dense(units, activation="relu")(h)
    h = layers.Dense(int(np.prod(image_shape)))(h)
    return keras.Model([z_in, y_in], layers.Reshape(tuple(image_shape))(h), name="decoder")


# cvae.architecture: "mlp" is FS-BBT's own CVAE for the 28x28 sets (dense 256-128-64 each
# way, about 1 MFLOP per image); "conv" is a small convolutional one (about 16 MFLOP).
ARCHITECTURES = {"conv": (_conv_encoder, _conv_decoder), "mlp": (_mlp_encoder, _mlp_decoder)}


class CVAE(MultiWorkerFit, keras.Model):
    """Conditional VAE for images in [0, 1]; conditions are class-probability vectors."""

    def __init__(self, image_shape: Sequence[int], num_classes: int, latent_dim: int = 2,
                 likelihood: str = "bernoulli", uniform_bound: float = 3.0,
                 architecture: str = "conv", **kwargs):
        super().__init__(**kwargs)
        if likelihood not in ("bernoulli", "normal"):
            raise ConfigError(f"unknown CVAE likelihood {likelihood!r}: bernoulli or normal")
        if architecture not in ARCHITECTURES:
            raise ConfigError(f"unknown cvae.architecture {architecture!r}: choose one of "
                              f"{sorted(ARCHITECTURES)}")
        self.image_shape, self.num_classes = tuple(image_shape), int(num_classes)
        self.latent_dim, self.likelihood_kind = int(latent_dim), likelihood
        self.uniform_bound, self.architecture = float(uniform_bound), architecture
        make_encoder, make_decoder = ARCHITECTURES[architecture]
        self.encoder = make_encoder(self.image_shape, self.num_classes, self.latent_dim)
        self.decoder = make_decoder(self.image_shape, self.num_classes, self.latent_dim)
        if likelihood == "normal":  # one learned per-pixel noise scale
            self.log_scale = self.add_weight(shape=(), initializer="zeros", name="log_scale")
        self.built = True  # encoder and decoder are functional models, built already
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.recon_tracker = keras.metrics.Mean(name="reconstruction")
        self.kl_tracker = keras.metrics.Mean(name="kl")

    def get_config(self):
        return {**super().get_config(), "image_shape": self.image_shape,
                "num_classes": self.num_classes, "latent_dim": self.latent_dim,
                "likelihood": self.likelihood_kind, "uniform_bound": self.uniform_bound,
                "architecture": self.architecture}

    @property
    def metrics(self):
        return [self.loss_tracker, self.recon_tracker, self.kl_tracker]

    def prior(self) -> tfd.Distribution:
        return tfd.MultivariateNormalDiag(loc=tf.zeros(self.latent_dim),
                                          scale_diag=tf.ones(self.latent_dim))

    def posterior(self, images, conditions, training=False) -> tfd.Distribution:
        """q(z | x, y): a diagonal Gaussian."""
        # Distributions stay float32 under a mixed-precision policy.
        params = tf.cast(self.encoder([images, conditions], training=training), tf.float32)
        loc, raw_scale = tf.split(params, 2, axis=-1)
        return tfd.MultivariateNormalDiag(loc=loc, scale_diag=tf.nn.softplus(raw_scale) + 1e-5)

    def likelihood(self, latents, conditions, training=False) -> tfd.Distribution:
        """p(x | z, y): independent Bernoulli (or Normal) pixels."""
        out = tf.cast(self.decoder([latents, conditions], training=training), tf.float32)
        if self.likelihood_kind == "bernoulli":
            return tfd.Independent(tfd.Bernoulli(logits=out, dtype=tf.float32), 3)
        scale = tf.exp(tf.convert_to_tensor(self.log_scale)) + 1e-3
        return tfd.Independent(tfd.Normal(loc=tf.sigmoid(out), scale=scale), 3)

    def call(self, inputs, training=False):
        images, conditions = inputs
        z = self.posterior(images, conditions, training).sample()
        return self.likelihood(z, conditions, training).mean()

    def _elbo_terms(self, images, conditions, training):
        q = self.posterior(images, conditions, training)
        z = q.sample()  # reparameterised: gradients flow through loc and scale
        recon = self.likelihood(z, conditions, training).log_prob(images)
        kl = tfd.kl_divergence(q, self.prior())
        return recon, kl

    def train_step(self, data):
        images, conditions = data
        with tf.GradientTape() as tape:
            recon, kl = self._elbo_terms(images, conditions, True)
            # Mean over the global batch: gradients are summed across replicas.
            loss = tf.nn.compute_average_loss(kl - recon)
        grads = tape.gradient(loss, self.trainable_variables)
        self.optimizer.apply(grads, self.trainable_variables)
        return self._update_metrics(recon, kl)

    def test_step(self, data):
        images, conditions = data
        return self._update_metrics(*self._elbo_terms(images, conditions, False))

    def _update_metrics(self, recon, kl):
        self.loss_tracker.update_state(kl - recon)
        self.recon_tracker.update_state(-recon)
        self.kl_tracker.update_state(kl)
        return self.logs()

    def hybrid_latents(self, n: int, seed: int) -> tf.Tensor:
        """The paper's hybrid latents: first half N(0, I), second half U(-b, b)."""
        seeds = tf.random.split(tf.constant([seed, 7], tf.int64), 2)
        n_normal = n - n // 2
        normal = tf.random.stateless_normal([n_normal, self.latent_dim], seeds[0])
        uniform = tf.random.stateless_uniform([n // 2, self.latent_dim], seeds[1],
                                              -self.uniform_bound, self.uniform_bound)
        return tf.concat([normal, uniform], axis=0)

    def decode(self, latents: tf.Tensor, labels: tf.Tensor) -> tf.Tensor:
        """Images (likelihood means, clipped to [0, 1], 8-bit levels) for latents and
        class labels."""
        y = tf.one_hot(tf.cast(labels, tf.int32), self.num_classes)
        mean = self.likelihood(tf.cast(latents, tf.float32), y).mean()
        return quantize(tf.clip_by_value(tf.cast(mean, tf.float32), 0.0, 1.0))

    def sample(self, n: int, seed: int = 0, batch_size: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """``n`` images (likelihood means, 8-bit levels) with class-balanced labels."""
        labels = np.arange(n) % self.num_classes
        z = self.hybrid_latents(n, seed)
        out = [self.decode(z[i:i + batch_size], labels[i:i + batch_size])
               for i in range(0, n, batch_size)]
        images = tf.concat(out, 0).numpy() if out else np.zeros((0, *self.image_shape), np.float32)
        return images, labels


def train_cvae(images: np.ndarray, conditions: np.ndarray, *, latent_dim: int, epochs: int,
               batch_size: int, learning_rate: float, likelihood: str = "bernoulli",
               uniform_bound: float = 3.0, architecture: str = "conv", seed: int = 0,
               callbacks=None, verbose: int = 2, strategy: tf.distribute.Strategy | None = None,
               steps_per_execution: int = 1) -> CVAE:
    """Builds and fits a CVAE on ``images`` conditioned on ``conditions`` [n, classes]."""
    keras.utils.set_random_seed(seed)
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        model = CVAE(images.shape[1:], conditions.shape[1], latent_dim, likelihood, uniform_bound,
                     architecture)
        compile_built(model, keras.optimizers.Adam(learning_rate),
                      steps_per_execution=steps_per_execution)
    ds = prefetched(epoch_batches((images.astype(np.float32), conditions.astype(np.float32)),
                                  batch_size, seed))
    model.fit(ds, epochs=epochs, callbacks=callbacks or [], verbose=verbose, shuffle=False)
    return model


@register("cvae")
class CVAESynthesizer(Synthesizer):
    """The CVAE as a generator (``config.cvae``): trained on the real images conditioned on
    the teacher's answers (one-hot top-1, the paper's, or soft), or reloaded from
    ``WORKDIR/cvae.weights.h5`` on ``--resume``; candidates are hybrid samples."""

    def prepare(self, ctx, real, real_probs) -> None:
        c, num_classes = self.config.cvae, real_probs.shape[1]
        conditions = (real_probs if c.condition == "soft"
                      else np.eye(num_classes, dtype=np.float32)[real_probs.argmax(1)])
        kwargs = dict(latent_dim=c.latent_dim, likelihood=c.likelihood,
                      uniform_bound=c.uniform_bound, architecture=c.get("architecture", "conv"))
        path = ctx.workdir.claim("cvae.weights.h5")
        if ctx.resume and os.path.exists(path):
            print(f"cvae: reloading {path}", flush=True)
            with ctx.strategy.scope():
                self.model = CVAE(real.shape, num_classes, **kwargs)
            self.model.load_weights(path)
            return
        print(f"cvae: training a {kwargs['architecture']} CVAE on {len(real)} images for "
              f"{c.epochs} epochs", flush=True)
        # backed up every epoch, so an interrupted run resumes the CVAE where it stopped
        backup = ctx.workdir.claim("cvae_checkpoints")
        if not ctx.resume:
            ctx.workdir.remove("cvae_checkpoints")  # only ever one a kd_keras run made
        with ctx.stage("cvae_train"):
            self.model = train_cvae(
                unit_float(real.images), conditions, epochs=c.epochs, batch_size=c.batch_size,
                learning_rate=c.learning_rate, seed=self.config.seed, strategy=ctx.strategy,
                callbacks=[keras.callbacks.BackupAndRestore(backup, delete_checkpoint=True),
                           keras.callbacks.TensorBoard(ctx.workdir.join("tb", "cvae"))],
                verbose=ctx.verbosity(), steps_per_execution=c.steps_per_execution, **kwargs)
        self.model.save_weights(path)

    def candidates(self, count: int, seed: int) -> IndexedCandidates:
        """Hybrid latents and class-balanced conditions, decoded batch by batch as they are
        labelled; not ``exact`` (a network's pixels may differ with the batch), so the
        labelled images are stored once."""
        labels = np.arange(count) % self.model.num_classes
        latents = self.model.hybrid_latents(count, seed).numpy()
        return IndexedCandidates((latents, labels), self.model.decode, exact=False)
