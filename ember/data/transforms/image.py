"""Image transforms: ToTensor, Normalize, RandomCrop, RandomHorizontalFlip, Resize, Compose, Lambda.

Layout: `ToTensor` turns an HW or HWC array (how images come off disk) into a CHW float32
Tensor. Every other transform acts on the last two axes, (..., H, W), and accepts a NumPy array
or a CPU ember Tensor, returning the same kind it got. Apply `ToTensor` first for HWC images.

Random transforms draw from `ember.random.default_generator` (or the `generator` given), so
`ember.manual_seed(s)` reproduces them.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from ember import random as ember_random
from ember._core.errors import DTypeError, EmberError, ShapeError
from ember._core.tensor import Tensor


def _unwrap(x, name: str):
    """The NumPy array behind `x` and whether to wrap the result back into a Tensor."""
    if isinstance(x, Tensor):
        return x.numpy(), True
    if isinstance(x, np.ndarray):
        return x, False
    raise DTypeError(f"{name}: expected a NumPy array or an ember Tensor, got "
                     f"{type(x).__name__}")


def _wrap(array: np.ndarray, as_tensor: bool):
    return Tensor(np.ascontiguousarray(array)) if as_tensor else array


def _spatial(name: str, array: np.ndarray):
    if array.ndim < 2:
        raise ShapeError(f"{name}: expected an image laid out as (..., H, W), got shape "
                         f"{array.shape}")
    return array.shape[-2], array.shape[-1]


def _pair(value, name: str) -> tuple[int, int]:
    if isinstance(value, int):
        return value, value
    if isinstance(value, Sequence) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise EmberError(f"{name}: size must be an int or a pair (height, width), got {value!r}")


class Compose:
    """Apply transforms one after another.

    >>> import numpy as np
    >>> t = Compose([ToTensor(), Normalize(0.5, 0.5)])
    >>> t(np.full((2, 2), 255, dtype=np.uint8)).numpy()[0, 0, 0]
    np.float32(1.0)
    """

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, x):
        for transform in self.transforms:
            x = transform(x)
        return x

    def __repr__(self):
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


class Lambda:
    """Wrap a function as a transform.

    >>> Lambda(lambda x: x * 2)(3)
    6
    """

    def __init__(self, function: Callable):
        if not callable(function):
            raise EmberError(f"Lambda: expected a callable, got {type(function).__name__}")
        self.function = function

    def __call__(self, x):
        return self.function(x)

    def __repr__(self):
        return f"Lambda({getattr(self.function, '__name__', self.function)!r})"


class ToTensor:
    """HW or HWC array -> CHW float32 ember Tensor; uint8 is scaled to [0, 1].

    Other dtypes are converted to float32 without scaling (as torchvision does).

    >>> import numpy as np
    >>> x = ToTensor()(np.array([[0, 255]], dtype=np.uint8))
    >>> x.shape, x.numpy().tolist()
    ((1, 1, 2), [[[0.0, 1.0]]])
    """

    def __call__(self, image) -> Tensor:
        if isinstance(image, Tensor):
            raise DTypeError("ToTensor: the input is already a Tensor; ToTensor takes an HW or "
                             "HWC NumPy array (drop ToTensor from the pipeline)")
        image = np.asarray(image)
        if image.ndim == 2:
            image = image[None]
        elif image.ndim == 3:
            image = image.transpose(2, 0, 1)
        else:
            raise ShapeError(f"ToTensor: expected an HW or HWC image, got shape {image.shape}")
        if image.dtype == np.uint8:
            # Multiplying by the float32 reciprocal would differ from x / 255 in the last bit.
            data = image.astype(np.float32) / np.float32(255.0)
        else:
            data = image.astype(np.float32)
        return Tensor(np.ascontiguousarray(data))

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """(x - mean[c]) / std[c] per channel (axis -3), or with scalars over the whole image.

    >>> import numpy as np
    >>> Normalize([0.5, 0.0], [0.5, 2.0])(np.ones((2, 1, 1), np.float32)).ravel().tolist()
    [1.0, 0.5]
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        if self.mean.ndim > 1 or self.std.ndim > 1:
            raise ShapeError(f"Normalize: mean and std must be scalars or 1-d per-channel "
                             f"sequences, got shapes {self.mean.shape} and {self.std.shape}")
        if self.mean.ndim == self.std.ndim == 1 and self.mean.size != self.std.size:
            raise ShapeError(f"Normalize: got {self.mean.size} means but {self.std.size} stds")
        if np.any(self.std == 0):
            raise EmberError(f"Normalize: std must be nonzero, got {self.std.tolist()}")

    def __call__(self, image):
        array, as_tensor = _unwrap(image, "Normalize")
        if not np.issubdtype(array.dtype, np.floating):
            raise DTypeError(f"Normalize: expected a floating image (apply ToTensor first), "
                             f"got {array.dtype}")
        mean, std = self.mean, self.std
        if mean.ndim == 1 or std.ndim == 1:
            channels = max(mean.size, std.size)
            if array.ndim < 3 or array.shape[-3] != channels:
                raise ShapeError(f"Normalize: {channels} channel means/stds need an image laid "
                                 f"out as (..., {channels}, H, W), got shape {array.shape}")
            mean, std = mean.reshape(-1, 1, 1), std.reshape(-1, 1, 1)
        out = (array - mean.astype(array.dtype)) / std.astype(array.dtype)
        return _wrap(out, as_tensor)

    def __repr__(self):
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


def _padding(padding) -> tuple[int, int, int, int]:
    """(left, top, right, bottom), following torchvision's int / 2-tuple / 4-tuple forms."""
    if isinstance(padding, int):
        return padding, padding, padding, padding
    padding = tuple(int(p) for p in padding)
    if len(padding) == 2:
        return padding[0], padding[1], padding[0], padding[1]
    if len(padding) == 4:
        return padding
    raise EmberError(f"RandomCrop: padding must be an int, (left/right, top/bottom) or "
                     f"(left, top, right, bottom), got {padding!r}")


class RandomCrop:
    """Crop a random (h, w) window, after optional padding of the borders.

    `padding_mode` is 'constant' (with `fill`), 'edge', 'reflect' or 'symmetric'.

    >>> import numpy as np, ember
    >>> _ = ember.manual_seed(0)
    >>> RandomCrop(2, padding=1)(np.ones((1, 3, 3), np.float32)).shape
    (1, 2, 2)
    """

    _MODES = ("constant", "edge", "reflect", "symmetric")

    def __init__(self, size, padding=None, fill=0, padding_mode: str = "constant",
                 generator=None):
        self.size = _pair(size, "RandomCrop")
        self.padding = _padding(padding) if padding is not None else None
        if padding_mode not in self._MODES:
            raise EmberError(f"RandomCrop: padding_mode must be one of {self._MODES}, got "
                             f"{padding_mode!r}")
        self.fill = fill
        self.padding_mode = padding_mode
        self.generator = generator

    def __call__(self, image):
        array, as_tensor = _unwrap(image, "RandomCrop")
        _spatial("RandomCrop", array)
        if self.padding is not None:
            left, top, right, bottom = self.padding
            widths = [(0, 0)] * (array.ndim - 2) + [(top, bottom), (left, right)]
            extra = {"constant_values": self.fill} if self.padding_mode == "constant" else {}
            array = np.pad(array, widths, mode=self.padding_mode, **extra)
        height, width = array.shape[-2:]
        crop_h, crop_w = self.size
        if crop_h > height or crop_w > width:
            raise ShapeError(f"RandomCrop: crop size {self.size} is larger than the (padded) "
                             f"image {(height, width)}")
        generator = self.generator or ember_random.default_generator
        top = generator.integers(0, height - crop_h + 1).item()
        left = generator.integers(0, width - crop_w + 1).item()
        return _wrap(array[..., top:top + crop_h, left:left + crop_w].copy(), as_tensor)

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror the last axis with probability p.

    >>> import numpy as np
    >>> RandomHorizontalFlip(p=1.0)(np.array([[1, 2, 3]])).tolist()
    [[3, 2, 1]]
    """

    def __init__(self, p: float = 0.5, generator=None):
        if not 0.0 <= p <= 1.0:
            raise EmberError(f"RandomHorizontalFlip: p must lie in [0, 1], got {p}")
        self.p = p
        self.generator = generator

    def __call__(self, image):
        array, as_tensor = _unwrap(image, "RandomHorizontalFlip")
        _spatial("RandomHorizontalFlip", array)
        generator = self.generator or ember_random.default_generator
        # Always draw, so the random stream advances the same way whatever p is.
        if generator.random().item() < self.p:
            array = array[..., ::-1].copy()
        return _wrap(array, as_tensor)

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


def _linear_indices(in_size: int, out_size: int):
    """Source indices and weights for half-pixel linear resampling (align_corners=False)."""
    scale = in_size / out_size
    source = (np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5
    source = np.maximum(source, 0.0)  # PyTorch clamps negative source coordinates to 0
    low = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    weight = (source - low).astype(np.float32)
    return low, high, weight


class Resize:
    """Bilinear resize of the last two axes (half-pixel centres, PyTorch's align_corners=False).

    `size` is (height, width), or an int that the shorter side is matched to, keeping the
    aspect ratio. Integer images are rounded back to their dtype.

    >>> import numpy as np
    >>> Resize((1, 2))(np.array([[0.0, 1.0, 2.0, 3.0]], np.float32)).tolist()
    [[0.5, 2.5]]
    """

    def __init__(self, size):
        if not isinstance(size, int):
            size = _pair(size, "Resize")
        self.size = size

    def _target(self, height: int, width: int) -> tuple[int, int]:
        if not isinstance(self.size, int):
            return self.size
        if height <= width:
            return self.size, max(1, int(self.size * width / height))
        return max(1, int(self.size * height / width)), self.size

    def __call__(self, image):
        array, as_tensor = _unwrap(image, "Resize")
        height, width = _spatial("Resize", array)
        out_h, out_w = self._target(height, width)
        if out_h < 1 or out_w < 1:
            raise ShapeError(f"Resize: target size must be positive, got {(out_h, out_w)}")
        work = array.astype(np.float32) if array.dtype != np.float64 else array
        low, high, weight = _linear_indices(height, out_h)
        weight = weight.reshape(-1, 1).astype(work.dtype)
        work = work[..., low, :] * (1 - weight) + work[..., high, :] * weight
        low, high, weight = _linear_indices(width, out_w)
        weight = weight.astype(work.dtype)
        work = work[..., low] * (1 - weight) + work[..., high] * weight
        if np.issubdtype(array.dtype, np.integer):
            info = np.iinfo(array.dtype)
            work = np.clip(np.rint(work), info.min, info.max)
        return _wrap(work.astype(array.dtype, copy=False), as_tensor)

    def __repr__(self):
        return f"Resize(size={self.size})"
