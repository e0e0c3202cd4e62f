"""Input checks shared by the functional layers: clear ember errors before the math runs."""
from __future__ import annotations

from ember._core.errors import DTypeError, user_frame
from ember._core.primitive import shape_error


def expect_last_dim(op: str, x, size: int, what: str):
    if x.ndim == 0 or x.shape[-1] != size:
        raise shape_error(op, f"expected the last dimension of the input to be {what}={size}",
                          x)


def expect_ndim(op: str, x, allowed: tuple, layout: str):
    """`allowed`: accepted numbers of dimensions; `layout` spells them, e.g. '(N, C, H, W)'."""
    if x.ndim not in allowed:
        raise shape_error(op, f"expected a {' or '.join(map(str, allowed))}-d input laid out "
                          f"as {layout}", x)


def expect_float(op: str, x):
    if x.dtype.kind != "f":
        raise DTypeError(f"{op}: expected a floating input, got {x.dtype.name} at "
                         f"{user_frame()}")
