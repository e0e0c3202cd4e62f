"""`SummaryWriter`: scalars, histograms, images, text, hparams and graphs for TensorBoard.

Event files are written with the `tensorboard` package's own protobufs
(`tensorboard.compat.proto`) and its `EventFileWriter` (the TFRecord framing with masked
CRC32C, on a background thread that `flush()` waits for). Why this and not tensorboardX:
`tensorboard` is the one dependency the viewer needs anyway, its writer needs no TensorFlow
(PyTorch's `torch.utils.tensorboard` uses the same class), and the files are by construction
what TensorBoard's own reader expects. tensorboardX would be a second package carrying a copy
of the same protobufs.

Images are encoded as PNG by the small encoder below (zlib + CRC chunks, 8-bit gray, gray +
alpha, RGB or RGBA), so writing an image needs neither Pillow nor matplotlib.

`add_graph` records the computation graph by running the model once (`ember.viz.graph.record`:
one node per primitive application, module paths as name scopes); the compiler's IR does not
exist yet, and when it lands `record` should read it instead.
"""
from __future__ import annotations

import io
import math
import os
import socket
import struct
import time
import zlib
from datetime import datetime

import numpy as np
from tensorboard.compat.proto import (
    attr_value_pb2,
    event_pb2,
    graph_pb2,
    node_def_pb2,
    summary_pb2,
    tensor_pb2,
    tensor_shape_pb2,
    versions_pb2,
)
from tensorboard.plugins.hparams import summary_v2 as hparams_summary
from tensorboard.plugins.text import plugin_data_pb2 as text_plugin_data
from tensorboard.summary.writer.event_file_writer import EventFileWriter

from ember._core.errors import EmberError
from ember._core.tensor import Tensor
from ember.viz.graph import record


def _tensorflow_bucket_edges() -> np.ndarray:
    """TensorFlow's default histogram buckets: +-1e-12 growing by 10% to 1e20, and 0; the
    outermost edges are +-DBL_MAX so every finite value lands in a bucket."""
    positive = 1e-12 * 1.1 ** np.arange(math.ceil(math.log(1e32) / math.log(1.1)))
    big = np.finfo(np.float64).max
    return np.concatenate([[-big], -positive[::-1], [0.0], positive, [big]])


_TENSORFLOW_EDGES = _tensorflow_bucket_edges()
_PNG_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> gray, gray+alpha, RGB, RGBA


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image of shape (height, width, channels), channels 1 to 4.

    >>> encode_png(np.zeros((2, 3, 1), np.uint8))[:8]
    b'\\x89PNG\\r\\n\\x1a\\n'
    """
    height, width, channels = image.shape
    # Filter type 0 ("None") before every row; zlib does the compressing.
    rows = np.concatenate([np.zeros((height, 1), np.uint8),
                           np.ascontiguousarray(image).reshape(height, width * channels)], 1)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOR_TYPES[channels], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def _numpy(value) -> np.ndarray:
    if isinstance(value, Tensor):
        return value.cpu().numpy()
    return np.asarray(value)


def _image_hwc(tag: str, image, dataformats: str) -> np.ndarray:
    """A (height, width, channels) uint8 array from CHW/HWC/HW data, float in [0, 1] or
    uint8."""
    array = _numpy(image)
    if sorted(dataformats) not in (sorted("CHW"), sorted("HW")) or array.ndim != len(dataformats):
        raise EmberError(f"add_image({tag!r}): an image of shape {array.shape} does not match "
                         f"dataformats={dataformats!r}; expected 'CHW', 'HWC' or 'HW' with "
                         f"as many axes as the image has")
    if "C" not in dataformats:
        array, dataformats = array[..., None], dataformats + "C"
    array = np.transpose(array, [dataformats.index(axis) for axis in "HWC"])
    if array.shape[2] not in _PNG_COLOR_TYPES:
        raise EmberError(f"add_image({tag!r}): expected 1 to 4 channels (gray, gray+alpha, RGB, "
                         f"RGBA), got {array.shape[2]} (image shape {array.shape}, HWC)")
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind not in "fb":
        raise EmberError(f"add_image({tag!r}): expected float values in [0, 1] or uint8, got "
                         f"dtype {array.dtype}")
    # Values outside [0, 1] are clipped, as PIL and matplotlib do when saving.
    return np.round(np.clip(array.astype(np.float64), 0.0, 1.0) * 255).astype(np.uint8)


def _tile(images: list) -> np.ndarray:
    """Images of one shape in a near-square grid, row by row, unused cells black."""
    count = len(images)
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    height, width, channels = images[0].shape
    grid = np.zeros((rows * height, columns * width, channels), np.uint8)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        grid[row * height:(row + 1) * height, column * width:(column + 1) * width] = image
    return grid


def _histogram(tag: str, values, bins) -> summary_pb2.HistogramProto:
    values = _numpy(values).astype(np.float64).reshape(-1)
    if values.size == 0:
        raise EmberError(f"add_histogram({tag!r}): no values")
    if not np.isfinite(values).all():
        raise EmberError(f"add_histogram({tag!r}): the values hold NaN or Inf; a histogram "
                         f"needs finite values")
    edges = _TENSORFLOW_EDGES if isinstance(bins, str) and bins == "tensorflow" else bins
    counts, edges = np.histogram(values, bins=edges)
    # Keep the buckets from the first to the last non-empty one: TensorBoard takes `min` as
    # the left edge of the first bucket and `max` as the right edge of the last.
    filled = np.nonzero(counts)[0]
    first, last = int(filled[0]), int(filled[-1])
    return summary_pb2.HistogramProto(
        min=float(values.min()), max=float(values.max()), num=float(values.size),
        sum=float(values.sum()), sum_squares=float(values @ values),
        bucket_limit=edges[first + 1:last + 2].tolist(),
        bucket=counts[first:last + 1].astype(np.float64).tolist())


def _image_summary(image: np.ndarray) -> summary_pb2.Summary.Image:
    height, width, channels = image.shape
    return summary_pb2.Summary.Image(height=height, width=width, colorspace=channels,
                                     encoded_image_string=encode_png(image))


def _shape_proto(shape) -> tensor_shape_pb2.TensorShapeProto:
    return tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=size) for size in shape])


def _graph_def(graph) -> graph_pb2.GraphDef:
    """A GraphDef of a recorded `ember.viz.graph.Graph`: module paths become name scopes
    ('encoder.layers.0' -> 'encoder/layers/0/dense_12'), so TensorBoard folds each module."""
    names = {}
    nodes = []
    for node in graph.nodes:
        if node.kind in ("parameter", "buffer"):
            name = node.label.replace(".", "/")
        elif node.kind in ("input", "output"):
            name = node.label.replace(" ", "_")
        else:
            scope = node.scope.replace(".", "/")
            label = "constant" if node.kind == "constant" else node.label
            name = (scope + "/" if scope else "") + f"{label}_{node.id[1:]}"
        names[node.id] = name
        attributes = {
            "_output_shapes": attr_value_pb2.AttrValue(list=attr_value_pb2.AttrValue.ListValue(
                shape=[_shape_proto(shape) for shape in node.shapes])),
            "dtype": attr_value_pb2.AttrValue(s=", ".join(node.dtypes).encode()),
        }
        operation = {"input": "Placeholder", "output": "Identity", "parameter": "Parameter",
                     "buffer": "Buffer", "constant": "Const"}.get(node.kind, node.label)
        nodes.append(node_def_pb2.NodeDef(name=name, op=operation, attr=attributes,
                                          input=[names[source] for source, _ in node.inputs]))
    return graph_pb2.GraphDef(node=nodes, versions=versions_pb2.VersionDef(producer=22))


class SummaryWriter:
    """Writes TensorBoard event files into `log_dir` (default `runs/<date>_<host>`).

    Steps default to 0 and wall times to now. Events are queued and written by a background
    thread at least every `flush_secs`; `flush()` waits until all are on disk, `close()`
    (or leaving a `with` block) flushes and closes.

    >>> import tempfile
    >>> with SummaryWriter(tempfile.mkdtemp()) as writer:
    ...     for step in range(3):
    ...         writer.add_scalar('loss', 1.0 / (step + 1), step)
    """

    def __init__(self, log_dir=None, flush_secs: float = 120, max_queue: int = 10,
                 filename_suffix: str = ""):
        if log_dir is None:
            log_dir = os.path.join("runs", f"{datetime.now():%b%d_%H-%M-%S}_"
                                           f"{socket.gethostname()}")
        self.log_dir = os.fspath(log_dir)
        self.flush_secs, self.max_queue = flush_secs, max_queue
        self.filename_suffix = filename_suffix
        self._file = EventFileWriter(self.log_dir, max_queue, flush_secs, filename_suffix)
        self._children: dict[str, SummaryWriter] = {}  # add_scalars' runs, by folder

    # ---- plumbing ------------------------------------------------------------------------
    def _write(self, values, global_step, walltime):
        self._file.add_event(event_pb2.Event(
            wall_time=time.time() if walltime is None else walltime,
            step=int(global_step or 0), summary=summary_pb2.Summary(value=values)))

    def _child(self, folder: str) -> SummaryWriter:
        if folder not in self._children:
            self._children[folder] = SummaryWriter(folder, self.flush_secs, self.max_queue,
                                                   self.filename_suffix)
        return self._children[folder]

    def flush(self):
        """Write everything queued so far to disk."""
        self._file.flush()
        for child in self._children.values():
            child.flush()

    def close(self):
        """Flush and close the event files; the writer cannot be used afterwards."""
        self._file.close()
        for child in self._children.values():
            child.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    # ---- summaries -----------------------------------------------------------------------
    def add_scalar(self, tag: str, scalar_value, global_step: int | None = None,
                   walltime: float | None = None):
        """One number (a Python/NumPy scalar or a one-element Tensor) under `tag`."""
        array = _numpy(scalar_value)
        if array.size != 1:
            raise EmberError(f"add_scalar({tag!r}): expected one number, got an array of "
                             f"shape {array.shape}; use add_histogram for many values")
        value = summary_pb2.Summary.Value(tag=tag, simple_value=float(array.reshape(())))
        self._write([value], global_step, walltime)

    def add_scalars(self, main_tag: str, tag_scalar_dict: dict,
                    global_step: int | None = None, walltime: float | None = None):
        """Several curves in one chart: each key goes to its own run `<log_dir>/<main_tag>_<key>`
        under the tag `main_tag` (how TensorBoard overlays runs, as PyTorch does)."""
        for key, value in tag_scalar_dict.items():
            folder = os.path.join(self.log_dir, f"{main_tag}_{key}".replace("/", "_"))
            self._child(folder).add_scalar(main_tag, value, global_step, walltime)

    def add_histogram(self, tag: str, values, global_step: int | None = None,
                      bins="tensorflow", walltime: float | None = None):
        """Distribution of `values` (any shape, finite). `bins`: 'tensorflow' (TensorFlow's
        exponential buckets), a number of equal-width buckets, or a NumPy bins rule ('auto',
        'fd', ...)."""
        histogram = _histogram(tag, values, bins)
        self._write([summary_pb2.Summary.Value(tag=tag, histo=histogram)], global_step, walltime)

    def add_image(self, tag: str, img_tensor, global_step: int | None = None,
                  walltime: float | None = None, dataformats: str = "CHW"):
        """One image, float in [0, 1] or uint8, laid out as `dataformats` ('CHW', 'HWC',
        'HW'), with 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels; stored as PNG."""
        image = _image_summary(_image_hwc(tag, img_tensor, dataformats))
        self._write([summary_pb2.Summary.Value(tag=tag, image=image)], global_step, walltime)

    def add_images(self, tag: str, img_tensor, global_step: int | None = None,
                   walltime: float | None = None, dataformats: str = "NCHW"):
        """A batch of images ('NCHW', 'NHWC' or 'NHW'), tiled into one near-square grid."""
        if not dataformats.startswith("N"):
            raise EmberError(f"add_images({tag!r}): dataformats must start with 'N' (the batch "
                             f"axis), got {dataformats!r}")
        batch = _numpy(img_tensor)
        if batch.ndim == 0 or len(batch) == 0:
            raise EmberError(f"add_images({tag!r}): expected a non-empty batch, got shape "
                             f"{batch.shape}")
        images = [_image_hwc(tag, image, dataformats[1:]) for image in batch]
        image = _image_summary(_tile(images))
        self._write([summary_pb2.Summary.Value(tag=tag, image=image)], global_step, walltime)

    def add_figure(self, tag: str, figure, global_step: int | None = None,
                   walltime: float | None = None, close: bool = True):
        """A matplotlib Figure, rendered to PNG (and closed unless `close=False`)."""
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        if close:
            import matplotlib.pyplot as plt

            plt.close(figure)
        encoded = buffer.getvalue()
        width, height = struct.unpack(">II", encoded[16:24])  # from the IHDR chunk
        image = summary_pb2.Summary.Image(height=height, width=width, colorspace=4,
                                          encoded_image_string=encoded)
        self._write([summary_pb2.Summary.Value(tag=tag, image=image)], global_step, walltime)

    def add_text(self, tag: str, text_string: str, global_step: int | None = None,
                 walltime: float | None = None):
        """Text (TensorBoard renders it as Markdown) under the text plugin."""
        metadata = summary_pb2.SummaryMetadata(plugin_data=summary_pb2.SummaryMetadata.PluginData(
            plugin_name="text",
            content=text_plugin_data.TextPluginData(version=0).SerializeToString()))
        tensor = tensor_pb2.TensorProto(dtype="DT_STRING", tensor_shape=_shape_proto(()),
                                        string_val=[str(text_string).encode("utf-8")])
        value = summary_pb2.Summary.Value(tag=tag, metadata=metadata, tensor=tensor)
        self._write([value], global_step, walltime)

    def add_hparams(self, hparam_dict: dict, metric_dict: dict, run_name: str | None = None,
                    global_step: int | None = None):
        """One trial for TensorBoard's HParams dashboard: the hyperparameters (bool, int,
        float or str; anything else is stored as its str) and final metrics, written to a
        new run `<log_dir>/<run_name or timestamp>` with each metric as a scalar there."""
        hparams = {key: value if isinstance(value, (bool, int, float, str)) else str(value)
                   for key, value in hparam_dict.items()}
        config = hparams_summary.hparams_config_pb(
            [hparams_summary.HParam(key) for key in hparams],
            [hparams_summary.Metric(key) for key in metric_dict])
        trial = hparams_summary.hparams_pb(hparams, trial_id=run_name)
        run = self._child(os.path.join(self.log_dir, run_name or f"{time.time():.6f}"))
        run._write(list(config.value) + list(trial.value), 0, None)
        for key, value in metric_dict.items():
            run.add_scalar(key, value, global_step)

    def add_graph(self, model, input_to_model, training: bool = False):
        """The computation graph of one run of `model(*input_to_model)` for the Graphs
        dashboard: one node per primitive application, parameter and input, grouped by
        module path (see `ember.viz.graph.record`; from the compiler's IR once it exists)."""
        graph = _graph_def(record(model, input_to_model, training))
        self._file.add_event(event_pb2.Event(wall_time=time.time(),
                                             graph_def=graph.SerializeToString()))
