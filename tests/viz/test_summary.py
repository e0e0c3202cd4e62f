"""SummaryWriter's event files, read back with TensorBoard's own reader (EventAccumulator)."""
from __future__ import annotations

import io
import os

import numpy as np
import pytest

pytest.importorskip("tensorboard")
image_module = pytest.importorskip("matplotlib.image")

from tensorboard.backend.event_processing.event_accumulator import (  # noqa: E402
    EventAccumulator,
)

import ember  # noqa: E402
from ember._core.errors import EmberError  # noqa: E402
from ember.viz import SummaryWriter  # noqa: E402
from ember.viz.summary import encode_png  # noqa: E402

_EVERYTHING = {kind: 0 for kind in ("scalars", "histograms", "images", "tensors",
                                    "compressedHistograms", "audio")}


def read(folder) -> EventAccumulator:
    return EventAccumulator(os.fspath(folder), size_guidance=_EVERYTHING).Reload()


def decode(encoded: bytes) -> np.ndarray:
    return image_module.imread(io.BytesIO(encoded), format="png")


def test_scalars_keep_values_steps_and_wall_times(tmp_path):
    values = [0.9, 0.5, 0.25, 0.125]
    with SummaryWriter(tmp_path) as writer:
        for step, value in enumerate(values):
            writer.add_scalar("loss", value, step * 10, walltime=1000.0 + step)
        writer.add_scalar("accuracy", ember.tensor(0.75), 3)  # a one-element Tensor
    events = read(tmp_path).Scalars("loss")
    assert [event.step for event in events] == [0, 10, 20, 30]
    np.testing.assert_allclose([event.value for event in events], values, rtol=1e-7)
    assert [event.wall_time for event in events] == [1000.0, 1001.0, 1002.0, 1003.0]
    assert read(tmp_path).Scalars("accuracy")[0].value == 0.75


def test_add_scalars_overlays_one_run_per_key(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        for step in range(3):
            writer.add_scalars("loss", {"train": 1.0 / (step + 1), "val": 2.0 / (step + 1)}, step)
    for key, scale in (("train", 1.0), ("val", 2.0)):
        events = read(tmp_path / f"loss_{key}").Scalars("loss")
        np.testing.assert_allclose([e.value for e in events], [scale, scale / 2, scale / 3],
                                   rtol=1e-6)


@pytest.mark.parametrize("bins", ["tensorflow", 7, "auto"])
def test_histograms_count_every_value(tmp_path, bins):
    values = np.random.default_rng(0).normal(size=(50, 20))
    with SummaryWriter(tmp_path) as writer:
        writer.add_histogram("weights", values, 5, bins=bins)
        writer.add_histogram("weights", ember.asarray(values + 1), 6, bins=bins)
    events = read(tmp_path).Histograms("weights")
    assert [event.step for event in events] == [5, 6]
    for event, shift in zip(events, (0, 1)):
        histogram = event.histogram_value
        assert histogram.num == values.size and sum(histogram.bucket) == values.size
        assert histogram.min == pytest.approx(values.min() + shift)
        assert histogram.max == pytest.approx(values.max() + shift)
        assert histogram.sum == pytest.approx(values.sum() + shift * values.size, rel=1e-6)
        # Buckets: right edges increase; each count matches the values in its interval.
        limits = np.array(histogram.bucket_limit)
        assert np.all(np.diff(limits) > 0) and limits[-1] >= histogram.max
        lefts = np.concatenate([[-np.inf], limits[:-1]])
        shifted = values.reshape(-1).astype(np.float32).astype(np.float64) + shift
        recount = [np.sum((shifted > left) & (shifted <= right))
                   for left, right in zip(lefts, limits)]
        assert sum(recount) == values.size


def test_histogram_rejects_nan_and_empty(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(EmberError, match="NaN or Inf"):
            writer.add_histogram("w", np.array([1.0, np.nan]))
        with pytest.raises(EmberError, match="no values"):
            writer.add_histogram("w", np.zeros(0))


@pytest.mark.parametrize("dataformats, shape", [("CHW", (3, 7, 5)), ("HWC", (7, 5, 4)),
                                                ("HW", (7, 5)), ("CHW", (1, 7, 5))])
def test_images_decode_to_the_logged_pixels(tmp_path, dataformats, shape):
    image = np.random.default_rng(1).random(shape)
    with SummaryWriter(tmp_path) as writer:
        writer.add_image("picture", image, 2, dataformats=dataformats)
    event = read(tmp_path).Images("picture")[0]
    assert (event.step, event.width, event.height) == (2, 5, 7)
    pixels = decode(event.encoded_image_string)
    expected = np.round(image * 255) / 255
    if dataformats == "CHW":
        expected = np.transpose(expected, (1, 2, 0))
    if expected.ndim == 3 and expected.shape[2] == 1:
        expected = expected[..., 0]
    np.testing.assert_allclose(pixels, expected, atol=1e-6)


def test_uint8_image_is_stored_exactly(tmp_path):
    image = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    with SummaryWriter(tmp_path) as writer:
        writer.add_image("exact", image, dataformats="HWC")
    pixels = decode(read(tmp_path).Images("exact")[0].encoded_image_string)
    np.testing.assert_array_equal(np.round(pixels * 255).astype(np.uint8), image)


def test_images_are_tiled_into_a_grid(tmp_path):
    batch = np.zeros((5, 3, 4, 6))
    for index in range(5):
        batch[index] = index / 4
    with SummaryWriter(tmp_path) as writer:
        writer.add_images("batch", ember.asarray(batch), 1)
    event = read(tmp_path).Images("batch")[0]
    assert (event.width, event.height) == (3 * 6, 2 * 4)  # 3 columns, 2 rows
    pixels = decode(event.encoded_image_string)
    for index in range(5):
        row, column = divmod(index, 3)
        cell = pixels[row * 4:(row + 1) * 4, column * 6:(column + 1) * 6]
        np.testing.assert_allclose(cell, np.round(index / 4 * 255) / 255, atol=1e-6)


@pytest.mark.parametrize("image, dataformats, message", [
    (np.zeros((5, 7, 5)), "CHW", "1 to 4 channels"),
    (np.zeros((7, 5)), "CHW", "does not match"),
    (np.zeros((3, 7, 5), np.int32), "CHW", "float values"),
])
def test_bad_images_raise(tmp_path, image, dataformats, message):
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(EmberError, match=message):
            writer.add_image("bad", image, dataformats=dataformats)


def test_png_encoder_round_trips_every_channel_count():
    rng = np.random.default_rng(2)
    for channels in (1, 2, 3, 4):
        image = rng.integers(0, 256, size=(9, 11, channels), dtype=np.uint8)
        pixels = decode(encode_png(image))
        pixels = pixels[..., None] if pixels.ndim == 2 else pixels
        if channels == 2:  # gray+alpha decodes as RGBA with equal color channels
            np.testing.assert_array_equal(pixels[..., 0], pixels[..., 2])
            pixels = pixels[..., [0, 3]]
        np.testing.assert_array_equal(np.round(pixels * 255).astype(np.uint8), image)


def test_text(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        writer.add_text("notes", "first *run*", 0)
        writer.add_text("notes", "second run", 4)
    events = read(tmp_path).Tensors("notes")
    assert [event.step for event in events] == [0, 4]
    assert [event.tensor_proto.string_val[0].decode() for event in events] == \
        ["first *run*", "second run"]


def test_hparams_write_a_trial_run(tmp_path):
    from tensorboard.plugins.hparams import plugin_data_pb2

    with SummaryWriter(tmp_path) as writer:
        writer.add_hparams({"lr": 0.01, "optimizer": "adam", "layers": 3, "tuple": (1, 2)},
                           {"accuracy": 0.9}, run_name="trial-1")
    trial = read(tmp_path / "trial-1")
    assert trial.Scalars("accuracy")[0].value == pytest.approx(0.9)
    start = trial.Tensors("_hparams_/session_start_info")[0]
    assert start  # the hparams plugin's tag is there; decode its content
    metadata = trial.SummaryMetadata("_hparams_/session_start_info")
    data = plugin_data_pb2.HParamsPluginData.FromString(metadata.plugin_data.content)
    hparams = data.session_start_info.hparams
    assert hparams["lr"].number_value == 0.01 and hparams["optimizer"].string_value == "adam"
    assert hparams["tuple"].string_value == "(1, 2)"


def test_graph_has_one_node_per_input_parameter_op_and_output(tmp_path):
    model = ember.nn.Sequential(ember.nn.Linear(4, 3), ember.nn.Tanh(), ember.nn.Linear(3, 2))
    with SummaryWriter(tmp_path) as writer:
        writer.add_graph(model, ember.ones((5, 4)))
    graph = read(tmp_path).Graph()
    names = [node.name for node in graph.node]
    assert names == ["input_0", "0/weight", "0/bias", "0/dense_3", "1/tanh_4", "2/weight",
                     "2/bias", "2/dense_7", "output_0"]
    dense = graph.node[names.index("2/dense_7")]
    assert list(dense.input) == ["1/tanh_4", "2/weight", "2/bias"]
    assert [dim.size for dim in dense.attr["_output_shapes"].list.shape[0].dim] == [5, 2]


def test_flush_makes_events_readable_before_close(tmp_path):
    writer = SummaryWriter(tmp_path, flush_secs=3600)
    try:
        writer.add_scalar("loss", 1.5, 0)
        writer.flush()
        assert read(tmp_path).Scalars("loss")[0].value == 1.5
    finally:
        writer.close()


def test_scalar_needs_one_number(tmp_path):
    with SummaryWriter(tmp_path) as writer:
        with pytest.raises(EmberError, match="one number"):
            writer.add_scalar("loss", np.ones(3))
