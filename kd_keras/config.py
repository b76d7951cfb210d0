"""The shape of every experiment config, and helpers shared by the files in ``configs/``.

Configs are data: ``configs/<dataset>.py`` calls :func:`base_config` with the paper's
settings for its data set, and ``:quick`` shrinks it with :func:`make_quick`.
"""

from __future__ import annotations

import json
from typing import Sequence

import ml_collections

from kd_keras.errors import ConfigError


def base_config(*, name: str, train: str, test: str, unlabeled: str,
                image_shape: Sequence[int], num_classes: int, teacher_model: str,
                student_model: str, teacher_epochs: int, num_synthetic: int,
                cvae_epochs: int, cvae_likelihood: str = "bernoulli") -> ml_collections.ConfigDict:
    """The full set of settings, filled with the paper's values for one data set."""
    c = ml_collections.ConfigDict()
    c.name = name
    c.seed = 0

    c.data = ml_collections.ConfigDict()
    c.data.train = train            # labelled data the teacher is trained on
    c.data.test = test              # evaluation only: never used to train or select
    c.data.unlabeled = unlabeled    # the user's few unlabeled images (N)
    c.data.image_shape = tuple(image_shape)
    c.data.num_classes = num_classes
    c.data.data_dir = ""            # overrides the default folder of IDX sources

    c.teacher = ml_collections.ConfigDict()
    c.teacher.model = teacher_model
    c.teacher.epochs = teacher_epochs
    c.teacher.batch_size = 64
    c.teacher.learning_rate = 1e-3

    c.query = ml_collections.ConfigDict()
    c.query.batch_size = 256        # images per teacher request
    c.query.concurrency = 4         # requests in flight at once (HTTP teachers)
    # Most training answers the run may ever pay for (0 = no limit). The plan follows from
    # it: M shrinks to budget - N unless synthesis.fixed_count.
    c.query.budget = 0
    c.query.max_tries = 5           # tries per request before giving up
    c.query.backoff_seconds = 0.5   # first retry delay; doubles each try
    c.query.timeout_seconds = 30.0
    c.query.output = "probs"        # what the teacher answers: probs|logits|label|topk
    # The teacher's own input (height, width, channels) when it differs from the data's:
    # images are resized before sending. () = the data's shape, or a SavedModel's signature.
    c.query.image_shape = ()

    c.synthesis = ml_collections.ConfigDict()
    # Which sets the student learns from: "real" and registered generators (mixup, cvae,
    # cutmix, ...), each optionally with its share of M, e.g. "real,mixup:0.8,cutmix:0.2".
    # Default: CutMix (with KL at T = 2, below), measured better than FS-BBT's MixUp + CVAE
    # and our earlier default (uncertainty-selected MixUp + CVAE) over 3 seeds on
    # Fashion-MNIST, docs/RESULTS.md.
    c.synthesis.sources = "real,cutmix"
    c.synthesis.num_synthetic = num_synthetic  # M: synthetic images of all generators
    # True: M is exactly num_synthetic, and a plan over query.budget is an error (commands
    # set it when --config.synthesis.num_synthetic is given); False: M fits the budget.
    c.synthesis.fixed_count = False
    # Without shares: "paper" lets the other generators make up the near-copy pairs MixUp
    # drops (FS-BBT: CVAE images replace dropped pairs); "even" splits M evenly.
    c.synthesis.split = "paper"
    c.synthesis.batch_size = 1024   # synthetic images made per tf.data step
    c.synthesis.grid_size = 8       # TensorBoard image grids are grid_size x grid_size
    # Which synthetic images to pay for: random (the paper's) | uncertainty (a probe student
    # picks them: better for MixUp + CVAE, worse for CutMix on Fashion-MNIST, docs/RESULTS.md).
    c.synthesis.selection = "random"

    c.selection = ml_collections.ConfigDict()  # for synthesis.selection=uncertainty
    c.selection.pool_factor = 3.0   # candidates drawn per synthetic image paid for
    c.selection.warmup = 0.5        # share of the images picked at random first
    c.selection.probe_epochs = 5    # epochs of the probe student that scores candidates
    c.selection.generators = "mixup"  # generators selection chooses among: names or "all"

    c.mixup = ml_collections.ConfigDict()
    c.mixup.alpha = 1.0             # lambda ~ Beta(alpha, alpha)
    c.mixup.decimals = 2            # lambda is rounded to this many decimals
    c.mixup.low = 0.05              # pairs with lambda <= low are near-copies: dropped
    c.mixup.high = 0.95             # pairs with lambda >= high are near-copies: dropped

    c.cutmix = ml_collections.ConfigDict()
    c.cutmix.alpha = 1.0            # box area share from Beta(alpha, alpha)
    c.cutmix.low = 0.05             # boxes covering <= low or >= high of the image are
    c.cutmix.high = 0.95            # near-copies of one real image: redrawn

    c.cvae = ml_collections.ConfigDict()
    c.cvae.latent_dim = 2
    # conv: convolutional (the paper's choice for CIFAR); mlp: FS-BBT's own CVAE for MNIST and
    # Fashion-MNIST (dense 256-128-64 each way), which their configs choose.
    c.cvae.architecture = "conv"
    c.cvae.epochs = cvae_epochs
    c.cvae.batch_size = 256
    c.cvae.learning_rate = 1e-3
    c.cvae.likelihood = cvae_likelihood  # bernoulli|normal per pixel
    c.cvae.uniform_bound = 3.0      # hybrid sampling: half N(0, I), half U(-b, b)
    c.cvae.condition = "onehot"     # onehot (teacher's top-1, the paper's) | soft
    c.cvae.steps_per_execution = 8  # training steps per call into TensorFlow (speed only)

    c.eval = ml_collections.ConfigDict()
    # Student accuracy on --eval needs no answers; the teacher's accuracy and agreement come
    # from at most this many eval images (answers counted in eval_queries; 0 = none).
    c.eval.teacher_sample = 1000
    # The student's accuracy on up to this many labelled eval images after every epoch, in
    # TensorBoard (no answers bought; 0 = off). The final report uses every eval image.
    c.eval.epoch_sample = 2000

    c.student = ml_collections.ConfigDict()
    c.student.model = student_model
    # 0 = auto: 50 epochs, or more for a small training set, so that the student takes at
    # least min_steps steps (at most 200 epochs). Measured at 10K answers (79 steps an
    # epoch): 100 epochs 84.79 +- 0.06 against 50 epochs 84.70 +- 0.78 (docs/RESULTS.md).
    # A number > 0 is used as it is.
    c.student.epochs = 0
    c.student.min_steps = 7900
    # Batch 128 at twice the paper's rate (64 at 1e-3): as accurate on the mean of 3 seeds at
    # 10K and 50K answers and about 20 % faster (docs/RESULTS.md); :paper sets 64 and 1e-3.
    c.student.batch_size = 128
    c.student.learning_rate = 2e-3
    c.student.lr_schedule = "constant"  # constant (the paper's) | cosine (decays to 0)
    # Weight averaging: 0 = off (the paper's); m in (0, 1) keeps an exponential moving
    # average of the student's weights (Keras's optimizer ``use_ema``, momentum m) and the
    # saved student takes the averaged weights at the end of training; the horizon
    # 1 / (1 - m) is cut to a quarter of a short run. 0.999 measured over 3 seeds: 87.11 +-
    # 0.24 against 86.72 +- 0.59 at 50K answers, 85.25 +- 0.14 against 84.79 +- 0.06 at 10K.
    c.student.ema = 0.999
    # BatchNorm students: after training, the moving statistics are recomputed for the
    # final (averaged) weights over up to this many batches of training images (0: never).
    # Without it a MobileNetV3-Small student answered one class at inference (issue #21).
    c.student.bn_batches = 200
    # soft_ce (the paper's) | kl | hard_ce | smooth_ce (label-only teachers). KL at T = 2 is
    # the default: T = 4 was better on our LeNet-5 teacher but fell below 94 % of a held-out
    # MLP teacher on 2 of 3 seeds at 10K answers; T = 2 kept 94.5-95.6 % there, soft CE
    # 94.8-95.6 % but 0.5 points less at 10K on LeNet-5 (docs/RESULTS.md).
    c.student.loss = "kl"
    c.student.temperature = 2.0     # for loss=kl
    c.student.label_smoothing = 0.1  # for loss=smooth_ce (top-1 class, smoothed)
    c.student.targets = "teacher"   # teacher|true_labels ("student alone" baseline)
    # Label-preserving augmentation reusing each image's answer: none|shift|flip_shift
    c.student.augment = "none"
    c.student.shift = 0.1           # largest shift, as a fraction of height and width
    # Unpaid mixes of answered images within each batch, targets mixed alike: none|mixup|
    # cutmix, replacing batch_mix_share of each batch, mix shares from Beta(alpha, alpha).
    c.student.batch_mix = "none"
    c.student.batch_mix_share = 0.5
    c.student.batch_mix_alpha = 1.0
    # The real images' weight: each epoch shows them this many times (answers paid once).
    c.student.real_repeat = 1
    # Training steps per call into TensorFlow: the same updates, less per-step overhead
    # (measured, docs/RESULTS.md); jit_compile (XLA) did not help on this CPU.
    c.student.steps_per_execution = 32
    c.student.jit_compile = False
    return c


def cifar_config(*, name: str, num_classes: int, n_real: int, teacher_model: str,
                 student_model: str, teacher_epochs: int) -> ml_collections.ConfigDict:
    """CIFAR-10/100 from TFDS in the paper's setting: M = 40,000, a Normal-likelihood CVAE
    for 600 epochs, teacher batch 128."""
    c = base_config(
        name=name, train=f"tfds:{name}:train", test=f"tfds:{name}:test",
        unlabeled=f"tfds:{name}:train[:{n_real}]", image_shape=(32, 32, 3),
        num_classes=num_classes, teacher_model=teacher_model, student_model=student_model,
        teacher_epochs=teacher_epochs, num_synthetic=40000, cvae_epochs=600,
        cvae_likelihood="normal")
    c.teacher.batch_size = 128
    return c


def make_paper(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """The paper's method exactly: real + random MixUp pairs + CVAE images (the paper's
    split), soft cross-entropy, Adam at a constant 1e-3, batch 64, 50 epochs, no weight
    averaging."""
    c.name += "_paper"
    c.synthesis.sources = "real,mixup,cvae"
    c.synthesis.split = "paper"
    c.synthesis.selection = "random"
    c.student.loss = "soft_ce"
    c.student.epochs = 50
    c.student.batch_size = 64
    c.student.learning_rate = 1e-3
    c.student.lr_schedule = "constant"
    c.student.ema = 0.0
    c.student.augment = "none"
    c.student.batch_mix = "none"
    return c


def make_quick(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A few-minute variant for demos and tests: fewer epochs, fewer synthetic images."""
    c.name += "_quick"
    c.teacher.epochs = 2
    c.synthesis.num_synthetic = min(c.synthesis.num_synthetic, 5000)
    c.cvae.epochs = 10
    c.student.epochs = 20  # measured: 83.4 % against an 86.7 % teacher in under 2 minutes
    return c


def make_demo(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """``make demo``: a student close to its teacher in about two minutes on 2 cores
    (teacher training included), our defaults at a 22,000-answer budget."""
    c.name += "_demo"
    c.teacher.epochs = 5
    c.synthesis.num_synthetic = min(c.synthesis.num_synthetic, 20000)
    c.student.epochs = 0  # auto: 50 epochs here
    return c


VARIANTS = {"paper": make_paper, "quick": make_quick, "demo": make_demo}


def select(get: "callable", arg: str | None) -> ml_collections.ConfigDict:
    """Applies the variants named after ``:`` in ``--config=FILE:VARIANT[,VARIANT…]``, in
    order: ``paper`` (the paper's method exactly), ``quick`` (tests and a one-minute look),
    ``demo`` (``make demo``: about two minutes); none gives our defaults. E.g. ``configs/fashion_mnist.py:paper,quick``."""
    c = get()
    for name in [a.strip() for a in (arg or "").split(",") if a.strip()]:
        if name not in VARIANTS:
            raise ConfigError(f"unknown config variant {name!r}; use one or more of "
                              f"{sorted(VARIANTS)}, comma-separated")
        c = VARIANTS[name](c)
    return c


def write_resolved(config: ml_collections.ConfigDict, workdir, **extra) -> str:
    """Writes the resolved config (plus run flags) to ``workdir/config.json``; returns the path.

    ``workdir`` is a :class:`kd_keras.workdir.Workdir` or a folder path."""
    from kd_keras.workdir import Workdir

    wd = workdir if isinstance(workdir, Workdir) else Workdir(workdir)
    path = wd.claim("config.json")
    from kd_keras.teachers.backends import without_credentials

    extra = {k: without_credentials(v) if isinstance(v, str) else v for k, v in extra.items()}
    with open(path, "w") as f:
        json.dump({"config": config.to_dict(), "flags": extra}, f, indent=2, default=str)
    return path
