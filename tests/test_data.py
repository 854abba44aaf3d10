"""Datasets and the numpy-level pipeline pieces (no backend needed)."""

import numpy as np
import pytest
from factories import write_mnist_npz

from harness.worker import data


def test_resize_matrix_rows_sum_to_one_and_keep_constants():
    m = data._resize_matrix(8, 20)
    assert m.shape == (20, 8)
    np.testing.assert_allclose(m.sum(axis=1), 1.0)
    np.testing.assert_allclose(m @ np.full(8, 7.0), 7.0)


def test_upscale_digits_is_mnist_like():
    img = np.zeros((1, 8, 8))
    img[0, :, 3:5] = 16  # a vertical bar, full intensity
    out = data.upscale_digits(img)
    assert out.shape == (1, 28, 28) and out.dtype == np.uint8
    assert out[0, :4].max() == 0 and out[0, 24:].max() == 0  # 4-pixel frame, as MNIST
    assert out[0, :, :4].max() == 0 and out[0, :, 24:].max() == 0
    assert out[0, 14, 14] == 255  # the bar's centre is full intensity
    assert out[0, 14, 6] == 0


def test_digits_split_is_fixed_and_balanced():
    ds = data.load_dataset("digits")
    assert ds.x_train.shape == (1347, 28, 28) and ds.x_test.shape == (450, 28, 28)
    assert np.bincount(ds.y_test).tolist() == [45] * 10
    again = data.load_dataset("digits")
    np.testing.assert_array_equal(ds.x_train, again.x_train)
    assert "load_digits" in ds.source and "upscaled" in ds.source


def test_synthetic_is_seeded_and_sized():
    a = data.load_dataset("synthetic", seed=3, train_samples=100, test_samples=20)
    b = data.load_dataset("synthetic", seed=3, train_samples=100, test_samples=20)
    c = data.load_dataset("synthetic", seed=4, train_samples=100, test_samples=20)
    assert a.x_train.shape == (100, 28, 28) and a.y_test.shape == (20,)
    assert a.x_train.dtype == np.uint8
    np.testing.assert_array_equal(a.x_train, b.x_train)
    assert not np.array_equal(a.x_train, c.x_train)
    assert a.source == "synthetic (seed 3)"


def test_mnist_from_local_npz(tmp_path):
    path = tmp_path / "mnist.npz"
    write_mnist_npz(path, 50, 10)
    ds = data.load_dataset("mnist", data_path=str(path), train_samples=40)
    assert ds.name == "mnist" and len(ds.x_train) == 40 and len(ds.x_test) == 10
    assert ds.source.startswith(f"file {path}") and "sha256" in ds.source


def test_mnist_env_variable_and_bad_files(tmp_path, monkeypatch):
    monkeypatch.setenv(data.MNIST_ENV, str(tmp_path / "nope.npz"))
    with pytest.raises(data.DataUnavailable, match="nope.npz does not exist"):
        data.load_dataset("mnist")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((2, 28, 28)))
    with pytest.raises(data.DataUnavailable, match=r"lacks array\(s\) y_train, x_test, y_test"):
        data.load_dataset("mnist", data_path=str(bad))
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    with pytest.raises(data.DataUnavailable, match="junk.npz is unreadable"):
        data.load_dataset("mnist", data_path=str(junk))


def test_preprocess_scales_and_reshapes():
    x = np.array([[[0, 255], [51, 102]]], dtype=np.uint8).repeat(14, 1).repeat(14, 2)
    out = data.preprocess(x)
    assert out.shape == (1, 28, 28, 1) and out.dtype == np.float32
    assert out.min() == 0.0 and out.max() == 1.0
    assert out[0, 20, 0, 0] == pytest.approx(0.2)


def test_numpy_feed_counts_steps():
    x = np.zeros((100, 28, 28), dtype=np.uint8)
    feed = data.make_feed("numpy", x, np.zeros(100), batch_size=32, shuffle=True, seed=0)
    assert feed.steps == 4 and feed.fit_kwargs == {"batch_size": 32, "shuffle": True}
    assert feed.x.shape == (100, 28, 28, 1)


def test_missing_pipeline_package_is_reported(monkeypatch):
    monkeypatch.setattr(data.importlib.util, "find_spec", lambda name: None)
    reason = data.pipeline_available("tf.data")
    assert (
        reason == "the tf.data pipeline needs the tensorflow package, which is not installed here"
    )
    with pytest.raises(data.PipelineUnsupported, match="needs the torch package"):
        data.make_feed(
            "torch", np.zeros((4, 28, 28), np.uint8), None, batch_size=2, shuffle=False, seed=0
        )
    assert data.pipeline_available("numpy") is None


@pytest.mark.backend  # where tensorflow is: test-tf
def test_tf_data_gets_the_scenario_thread_count():
    """threads = N holds for the tutorial's pipeline too, under any backend: tf.data gets a
    pool of its own of that size instead of TensorFlow's default one (a thread per core)."""
    pytest.importorskip("tensorflow", reason="tf.data needs tensorflow (tox's test-tf holds it)")
    x, y = np.zeros((8, 28, 28), np.uint8), np.zeros(8, np.int64)
    given = data.make_feed("tf.data", x, y, batch_size=4, shuffle=True, seed=0, threads=2)
    assert given.x.options().threading.private_threadpool_size == 2
    default = data.make_feed("tf.data", x, y, batch_size=4, shuffle=True, seed=0)
    assert data.tf_data_threads(given.x) == 2 and data.tf_data_threads(default.x) is None
    assert [b[0].shape for b in given.x] == [(4, 28, 28, 1)] * 2
