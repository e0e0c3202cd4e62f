"""Shape arithmetic shared by the shape rules (`infer`) of many primitives."""
from __future__ import annotations

from ember._core.errors import ShapeError, user_frame


def broadcast_shapes(*shapes, op: str = "broadcast") -> tuple:
    """NumPy/Array API broadcasting of shapes; raises ShapeError naming the op."""
    ndim = max((len(s) for s in shapes), default=0)
    result = []
    for position in range(-ndim, 0):
        size = 1
        for shape in shapes:
            if len(shape) < -position:
                continue
            dim = shape[position]
            if dim == 1:
                continue
            if size != 1 and dim != size:
                listed = " and ".join(str(tuple(s)) for s in shapes)
                raise ShapeError(f"{op}: shapes {listed} cannot be broadcast together "
                                 f"(dimension {position} is {size} vs {dim}) at {user_frame()}")
            size = dim
        result.append(size)
    return tuple(result)


def normalize_axis(axis: int, ndim: int, op: str = "op") -> int:
    """Turn a possibly negative axis into 0..ndim-1, with a clear error when out of range."""
    if not -ndim <= axis < max(ndim, 1) and not (ndim == 0 and axis in (0, -1)):
        raise ShapeError(f"{op}: axis {axis} is out of range for a {ndim}-d tensor "
                         f"at {user_frame()}")
    return axis % ndim if ndim else 0


def normalize_axes(axis, ndim: int, op: str = "op") -> tuple:
    """None -> all axes; int or sequence -> sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, int):
        axis = (axis,)
    axes = tuple(sorted(normalize_axis(a, ndim, op) for a in axis))
    if len(set(axes)) != len(axes):
        raise ShapeError(f"{op}: repeated axis in {axis} at {user_frame()}")
    return axes


def reduced_shape(shape: tuple, axes: tuple, keepdims: bool) -> tuple:
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)
