import gzip
import os

import ml_collections
import numpy as np
import pytest
import tensorflow as tf

from conftest import make_images
from kd_keras import data
from kd_keras.errors import DataError


def test_idx_round_trip_plain_and_gzip(tmp_path):
    x = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "a.idx.gz"):
        data.write_idx(str(tmp_path / name), x)
        np.testing.assert_array_equal(data.read_idx(str(tmp_path / name)), x)
    f = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    data.write_idx(str(tmp_path / "f.idx"), f)
    np.testing.assert_array_equal(data.read_idx(str(tmp_path / "f.idx")), f)


def test_idx_rejects_bad_files(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x08\x01abcd")
    with pytest.raises(DataError, match="bad magic"):
        data.read_idx(str(tmp_path / "bad"))
    x = np.zeros((4, 5), np.uint8)
    data.write_idx(str(tmp_path / "t.idx"), x)
    raw = (tmp_path / "t.idx").read_bytes()
    (tmp_path / "t.idx").write_bytes(raw[:-3])
    with pytest.raises(DataError, match="promises 20 bytes"):
        data.read_idx(str(tmp_path / "t.idx"))
    with gzip.open(tmp_path / "c.gz", "wb") as f:
        f.write(b"\x00\x00")
    with pytest.raises(DataError, match="not an IDX file"):
        data.read_idx(str(tmp_path / "c.gz"))
    with pytest.raises(DataError, match="not found"):
        data.read_idx(str(tmp_path / "missing.gz"))


def test_fashion_mnist_source_reads_idx_folder(idx_dir):
    train = data.load("fashion_mnist:train", (28, 28, 1), data_dir=idx_dir)
    assert train.images.shape == (600, 28, 28, 1) and train.images.dtype == np.float32
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0
    assert train.labels.shape == (600,) and train.num_classes == 10
    test = data.load("fashion_mnist:test", data_dir=idx_dir)
    assert len(test) == 200


def test_env_var_names_the_idx_folder(idx_dir, monkeypatch):
    monkeypatch.setenv("KD_KERAS_FASHION_MNIST_DIR", idx_dir)
    assert len(data.load("fashion_mnist:test")) == 200


def test_missing_idx_folder_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="dataset-fashion-mnist"):
        data.load("fashion_mnist:train", data_dir=str(tmp_path))


def test_few_shot_subset_is_reproducible_and_balanced(idx_dir):
    a = data.load("fashion_mnist:train[:200]", data_dir=idx_dir, seed=3)
    b = data.load("fashion_mnist:train[:200]", data_dir=idx_dir, seed=3)
    c = data.load("fashion_mnist:train[:200]", data_dir=idx_dir, seed=4)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, c.images)
    np.testing.assert_array_equal(np.bincount(a.labels, minlength=10), np.full(10, 20))
    assert a.name == "fashion_mnist:train[:200]"


def test_few_shot_balances_uneven_classes():
    labels = np.array([0] * 3 + [1] * 50 + [2] * 50)
    idx = data.few_shot_indices(len(labels), 30, labels, seed=0)
    assert len(idx) == 30 and len(set(idx)) == 30
    counts = np.bincount(labels[idx], minlength=3)
    assert counts[0] == 3 and counts.sum() == 30
    with pytest.raises(DataError, match="only 103"):
        data.few_shot_indices(len(labels), 200, labels, seed=0)


def test_slice_selector(idx_dir):
    full = data.load("fashion_mnist:test", data_dir=idx_dir)
    part = data.load("fashion_mnist:test[10:20]", data_dir=idx_dir)
    np.testing.assert_array_equal(part.images, full.images[10:20])


def test_only_the_selected_images_become_floats(idx_dir, monkeypatch):
    """A few-shot selector converts its 200 images, not the source's 600 (time, memory)."""
    converted = []
    to_float = data.sources.to_float_images
    monkeypatch.setattr(data.sources, "to_float_images",
                        lambda images, where: converted.append(len(images)) or to_float(images, where))
    few = data.load("fashion_mnist:train[:200]", (28, 28, 1), data_dir=idx_dir, seed=3)
    assert converted == [200] and few.images.dtype == np.float32
    raw = data.read_idx(os.path.join(idx_dir, "train-images-idx3-ubyte.gz"))
    labels = data.read_idx(os.path.join(idx_dir, "train-labels-idx1-ubyte.gz"))
    idx = data.few_shot_indices(len(raw), 200, labels, seed=3)
    np.testing.assert_array_equal(few.images[..., 0], raw[idx].astype(np.float32) / 255.0)


def test_npz_source_labelled_and_unlabelled(tmp_path):
    x, y = make_images(30)
    np.savez(tmp_path / "l.npz", images=x, labels=y)
    np.savez(tmp_path / "u.npz", x=x.astype(np.float32) / 255)
    labelled = data.load(f"npz:{tmp_path}/l.npz", (28, 28, 1))
    assert labelled.labels is not None and len(labelled) == 30
    unlabelled = data.load(f"npz:{tmp_path}/u.npz")
    assert unlabelled.labels is None
    np.testing.assert_allclose(unlabelled.images, labelled.images, atol=1e-6)


def test_wrong_shape_and_bad_values_are_clear_errors(tmp_path):
    x, _ = make_images(5, size=20)
    np.savez(tmp_path / "s.npz", images=x)
    with pytest.raises(DataError, match=r"shape \(20, 20, 1\), the model expects \(28, 28, 1\)"):
        data.load(f"npz:{tmp_path}/s.npz", (28, 28, 1))
    np.savez(tmp_path / "v.npz", images=np.full((2, 28, 28), 7.0, np.float32))
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        data.load(f"npz:{tmp_path}/v.npz")
    with pytest.raises(DataError, match="file not found"):
        data.load(f"npz:{tmp_path}/nope.npz")
    with pytest.raises(DataError, match="unknown data source"):
        data.load("imagenet:train")


def _write_png(path, array):
    tf.io.write_file(str(path), tf.io.encode_png(array))


def test_folder_source_with_class_subfolders_resizes(tmp_path):
    x, y = make_images(8, size=32)
    for i, (im, label) in enumerate(zip(x, y)):
        os.makedirs(tmp_path / f"class_{label}", exist_ok=True)
        _write_png(tmp_path / f"class_{label}" / f"{i}.png", im[..., None])
    s = data.load(f"folder:{tmp_path}", (28, 28, 1))
    assert s.images.shape == (8, 28, 28, 1)
    assert s.labels is not None and s.num_classes == len(set(y.tolist()))


def test_folder_source_unlabelled_and_bad_folders(tmp_path):
    x, _ = make_images(3)
    for i, im in enumerate(x):
        _write_png(tmp_path / f"{i}.png", im[..., None])
    s = data.load(f"folder:{tmp_path}", (28, 28, 1))
    assert s.labels is None and len(s) == 3
    (tmp_path / "broken.png").write_bytes(b"not a png at all")
    with pytest.raises(DataError, match="broken.png"):
        data.load(f"folder:{tmp_path}", (28, 28, 1))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images"):
        data.load(f"folder:{empty}", (28, 28, 1))


def test_tfds_source_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=40):
        s = data.load("tfds:mnist:train[:20]", (28, 28, 1), seed=1)
    assert s.images.shape == (20, 28, 28, 1) and s.num_classes == 10
    assert s.images.dtype == np.float32 and s.images.max() <= 1.0


def test_tfds_unknown_dataset_is_clear_error():
    with pytest.raises(DataError, match="tfds:no_such_dataset_xyz"):
        data.load("tfds:no_such_dataset_xyz:train")


def test_digits_source():
    s = data.load("digits:train", (8, 8, 1))
    assert s.num_classes == 10 and s.images.max() <= 1.0 and len(s) > 1000


def test_epoch_batches_reshuffle_every_epoch_without_autotuning():
    """Every row once per epoch, a new order each epoch, the same orders for the same seed;
    the student's pipeline (with its augment and mix stages) keeps autotuning off, whose
    thread otherwise stalls each new epoch (issue #11)."""
    from kd_keras.data.epochs import epoch_batches
    from kd_keras.distill.student import training_dataset

    x = np.arange(10, dtype=np.float32)
    ds = epoch_batches((x, -x), batch_size=4, seed=3)
    epochs = [[b[0].numpy() for b in ds] for _ in range(2)]
    for batches in epochs:
        assert [len(b) for b in batches] == [4, 4, 2]
        assert sorted(np.concatenate(batches)) == list(range(10))
    assert not np.array_equal(np.concatenate(epochs[0]), np.concatenate(epochs[1]))
    again = [b[0].numpy() for b in epoch_batches((x, -x), batch_size=4, seed=3)]
    np.testing.assert_array_equal(np.concatenate(again), np.concatenate(epochs[0]))
    assert ds.options().autotune.enabled is False
    images = np.zeros((8, 28, 28, 1), np.float32)
    probs = np.full((8, 10), 0.1, np.float32)
    from kd_keras.distill.store import LabelledSet

    labelled = LabelledSet.of_arrays(images, probs)
    settings = ml_collections.ConfigDict(dict(batch_size=4, shift=0.1, batch_mix="cutmix",
                                              batch_mix_share=0.5, batch_mix_alpha=1.0,
                                              hold_mib=1))
    student = training_dataset(labelled, settings, 0, augment="shift")
    assert student.options().autotune.enabled is False
    # the student's set: every image once an epoch, reshuffled, the same for the same seed
    labelled = LabelledSet.of_arrays(np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1),
                                     np.eye(10, dtype=np.float32))
    ds = labelled.dataset(4, seed=3)
    epochs = [np.concatenate([np.round(b[0].numpy().ravel() * 255) for b in ds])
              for _ in range(2)]
    assert sorted(epochs[0]) == list(range(10)) and not np.array_equal(*epochs)
    again = np.concatenate([np.round(b[0].numpy().ravel() * 255)
                            for b in labelled.dataset(4, seed=3)])
    np.testing.assert_array_equal(again, epochs[0])
    for x, y in ds:  # each image with its own answer
        np.testing.assert_array_equal(np.round(x.numpy().ravel() * 255), y.numpy().argmax(1))
    assert ds.options().autotune.enabled is False


def test_cmyk_jpeg_and_animated_gif_decode_to_the_models_channels(tmp_path):
    from PIL import Image

    rgb = (np.random.default_rng(0).random((20, 20, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg")
    frames = [Image.fromarray(np.roll(rgb, k, 0)) for k in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(tmp_path / "rgba.png")
    for shape in ((28, 28, 1), (28, 28, 3)):
        s = data.load(f"folder:{tmp_path}", shape)
        assert s.images.shape == (3, *shape)


def test_nested_class_folders_complex_and_text_npz_are_clear_errors(tmp_path):
    x, _ = make_images(2)
    os.makedirs(tmp_path / "cats" / "more")
    _write_png(tmp_path / "cats" / "0.png", x[0][..., None])
    _write_png(tmp_path / "cats" / "more" / "1.png", x[1][..., None])
    with pytest.raises(DataError, match=r"cats/ holds folders \(more\)"):
        data.load(f"folder:{tmp_path}", (28, 28, 1))
    np.savez(tmp_path / "c.npz", images=np.ones((2, 6, 6), np.complex64))
    with pytest.raises(DataError, match="real numeric array"):
        data.load(f"npz:{tmp_path}/c.npz")
    (tmp_path / "t.npz").write_text("images,labels\n1,2\n")
    with pytest.raises(DataError, match="is not an npz archive"):
        data.load(f"npz:{tmp_path}/t.npz")


# 7. One line instead of a traceback.
def test_bad_data_sources_are_clear_errors(tmp_path):
    folder = tmp_path / "imgs"
    (folder / "cats").mkdir(parents=True)
    (folder / "cats" / "x.png").mkdir()  # a directory with an image's name
    with pytest.raises(DataError, match="x.png"):
        data.load(f"folder:{folder}", (8, 8, 1))
    np.save(tmp_path / "a.npy", np.zeros((2, 8, 8)))
    with pytest.raises(DataError, match="not an npz"):
        data.load(f"npz:{tmp_path}/a.npy")
    np.savez(tmp_path / "obj.npz", images=np.array([np.zeros((8, 8)), None], dtype=object))
    with pytest.raises(DataError, match="obj.npz"):
        data.load(f"npz:{tmp_path}/obj.npz")
    for bad in (np.array([0, np.nan]), np.array([0, -1])):
        np.savez(tmp_path / "lab.npz", images=np.zeros((2, 8, 8), np.uint8), labels=bad)
        with pytest.raises(DataError, match="labels"):
            data.load(f"npz:{tmp_path}/lab.npz")


def test_hidden_folders_are_not_classes_and_loose_images_do_not_vanish(tmp_path):
    import tensorflow as tf

    png = tf.io.encode_png(tf.zeros((8, 8, 1), tf.uint8)).numpy()
    root = tmp_path / "imgs"
    for d in ("a", "b", ".ipynb_checkpoints"):
        (root / d).mkdir(parents=True)
        (root / d / "1.png").write_bytes(png)
    loaded = data.load(f"folder:{root}", (8, 8, 1))
    assert loaded.num_classes == 2 and len(loaded) == 2
    (root / "loose.png").write_bytes(png)
    with pytest.raises(DataError, match="loose.png"):
        data.load(f"folder:{root}", (8, 8, 1))


def test_compact_loading_keeps_8bit_images_as_uint8(idx_dir, tmp_path):
    """The run holds its real images as uint8 when they are 8-bit (issue #24): a quarter of
    float32; float images off the 8-bit levels stay float32, unchanged."""
    from kd_keras.data.rows import ImageRows, compact

    grey = data.load("fashion_mnist:train[:50]", (28, 28, 1), data_dir=idx_dir, compact=True)
    floats = data.load("fashion_mnist:train[:50]", (28, 28, 1), data_dir=idx_dir)
    assert grey.images.dtype == np.uint8 and floats.images.dtype == np.float32
    np.testing.assert_array_equal(grey.images / np.float32(255.0), floats.images)
    assert compact(floats.images).dtype == np.uint8  # 8-bit levels: exactly representable
    off = floats.images + np.float32(0.001)
    assert compact(off) is off  # not 8-bit: kept as it is
    rows = ImageRows(grey.images).rows(np.array([3, 1]))
    np.testing.assert_array_equal(rows, floats.images[[3, 1]])
    np.save(tmp_path / "x.npy", grey.images)
    mapped = ImageRows.from_file(str(tmp_path / "x.npy"))
    np.testing.assert_array_equal(mapped.gather(tf.constant([4, 0])).numpy(), floats.images[[4, 0]])
