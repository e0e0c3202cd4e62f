"""Products of tensors: matmul, tensordot, vecdot, outer/inner, cross, diagonal and trace.

`matmul` is the hottest op in most models, so its eager path does no shape checking of its
own: NumPy/CuPy validate the operands, and only when they refuse does `Matmul.infer` run to
explain the failure as an ember ShapeError (see `apply`). Everything else here is built from
`matmul`, `einsum` (ember/ops/einsum.py) and movement/reduce ops, so gradients of any order
come for free. Decompositions live in ember/ops/decomp.py, norms in ember/ops/norm.py.
"""
from __future__ import annotations

import math

import numpy as np

from ember._core import dtypes
from ember._core.errors import ShapeError, user_frame
from ember._core.primitive import AbstractValue, Primitive, apply, shape_error
from ember._core.tensor import Tensor
from ember.ops import movement
from ember.ops._util import as_tensor, aval_of, binary_operands
from ember.ops.einsum import einsum
from ember.ops.reduce import sum as reduce_sum

__all__ = ["cross", "diagonal", "einsum", "inner", "matmul", "matrix_transpose", "outer",
           "tensordot", "trace", "vecdot"]

matrix_transpose = movement.matrix_transpose


def _tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else as_tensor(x)


def _needs(ctx, index: int) -> bool:
    return ctx.node.edges[index] is not None


def _swap_last(x: Tensor) -> Tensor:
    """Matrix transpose without the public function's checks (a view on the backends)."""
    axes = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return apply(movement.PERMUTE_DIMS, x, axes=axes)


def _matmul_error(a, b, reason: str) -> ShapeError:
    return ShapeError(f"matmul: shapes {tuple(a.shape)} and {tuple(b.shape)} do not fit: "
                      f"{reason} at {user_frame()}")


def _blas_ready(x):
    """NumPy hands a matrix to BLAS only when one of its two last axes has unit stride;
    otherwise (e.g. a strided slice of a packed projection) it falls back to a loop that is
    an order of magnitude slower, so such operands are copied first."""
    if x.ndim < 2:
        return x
    item = x.itemsize
    if x.strides[-1] == item or x.strides[-2] == item:
        return x
    return np.ascontiguousarray(x)


def numpy_matmul(a, b):
    """np.matmul, with a stack of C-contiguous matrices times one matrix done as one GEMM:
    NumPy runs one BLAS call per matrix of the stack (6.9 ms against 5.8 ms for
    (16, 128, 256) @ (256, 1024) float32 on 2 threads)."""
    a, b = _blas_ready(a), _blas_ready(b)
    if a.ndim > 2 and b.ndim == 2 and a.flags.c_contiguous:
        return np.matmul(a.reshape(-1, a.shape[-1]), b).reshape(a.shape[:-1] + b.shape[-1:])
    return np.matmul(a, b)


class Matmul(Primitive):
    """Array API matmul: 1-d operands are promoted to a row / column and the added axis
    removed again; batch axes broadcast."""

    def infer(self, x1, x2):
        a, b = aval_of(x1), aval_of(x2)
        if a.ndim == 0 or b.ndim == 0:
            raise _matmul_error(a, b, "operands must have at least 1 dimension; use multiply "
                                "(*) for scalars")
        inner_a = a.shape[-1]
        inner_b = b.shape[-2] if b.ndim > 1 else b.shape[0]
        if inner_a != inner_b:
            where_b = "second-to-last" if b.ndim > 1 else "only"
            raise _matmul_error(a, b, f"the last axis of x1 has size {inner_a} but the "
                                f"{where_b} axis of x2 has size {inner_b}; they must be equal")
        batch_a, batch_b = a.shape[:-2], b.shape[:-2]
        batch = []
        for position in range(-max(len(batch_a), len(batch_b)), 0):
            da = batch_a[position] if len(batch_a) >= -position else 1
            db = batch_b[position] if len(batch_b) >= -position else 1
            if da != db and 1 not in (da, db):
                raise _matmul_error(a, b, f"batch axes cannot be broadcast together ({da} vs "
                                    f"{db} at axis {position - 2})")
            batch.append(db if da == 1 else da)
        rows = (a.shape[-2],) if a.ndim > 1 else ()
        cols = (b.shape[-1],) if b.ndim > 1 else ()
        return AbstractValue(tuple(batch) + rows + cols,
                             dtypes.promote_types(a.dtype, b.dtype), a.device)

    def forward(self, xp, x1, x2):
        out = numpy_matmul(x1, x2) if xp is np else xp.matmul(x1, x2)
        if out.dtype != x1.dtype:  # NumPy computes bfloat16 products in float32
            out = out.astype(x1.dtype)
        return out

    def vjp(self, ctx, gy):
        x1, x2 = ctx.inputs
        # Work on matrices: a 1-d x1 is a (1, k) row, a 1-d x2 a (k, 1) column.
        a = x1 if x1.ndim > 1 else movement.reshape(x1, (1, -1))
        b = x2 if x2.ndim > 1 else movement.reshape(x2, (-1, 1))
        if x1.ndim == 1 and x2.ndim == 1:
            gy = movement.reshape(gy, (1, 1))
        elif x1.ndim == 1:
            gy = movement.expand_dims(gy, -2)
        elif x2.ndim == 1:
            gy = movement.expand_dims(gy, -1)
        gx1 = gx2 = None
        if _needs(ctx, 0):
            gx1 = matmul(gy, _swap_last(b))  # broadcast batch axes are summed by the engine
            if x1.ndim == 1:
                gx1 = movement.squeeze(gx1, -2)
        if _needs(ctx, 1):
            gx2 = matmul(_swap_last(a), gy)
            if x2.ndim == 1:
                gx2 = movement.squeeze(gx2, -1)
        return gx1, gx2


class Diagonal(Primitive):
    """Diagonal `offset` of the last two axes, as a new last axis."""

    def infer(self, x, offset):
        rows, cols = x.shape[-2:]
        length = max(0, min(rows, cols - offset) if offset >= 0 else min(rows + offset, cols))
        return AbstractValue(x.shape[:-2] + (length,), x.dtype, x.device)

    def forward(self, xp, x, offset):
        return xp.diagonal(x, offset, -2, -1).copy()  # NumPy's is a read-only view

    def vjp(self, ctx, gy):
        rows, cols = ctx.inputs[0].shape[-2:]
        return (apply(DIAG_EMBED, gy, offset=ctx.params["offset"], rows=rows, cols=cols),)


class DiagEmbed(Primitive):
    """A (rows, cols) matrix of zeros holding x's last axis on diagonal `offset`."""

    def infer(self, x, offset, rows, cols):
        return AbstractValue(x.shape[:-1] + (rows, cols), x.dtype, x.device)

    def forward(self, xp, x, offset, rows, cols):
        out = xp.zeros(x.shape[:-1] + (rows, cols), x.dtype)
        index = xp.arange(x.shape[-1])
        out[..., index + max(-offset, 0), index + max(offset, 0)] = x
        return out

    def vjp(self, ctx, gy):
        return (apply(DIAGONAL, gy, offset=ctx.params["offset"]),)


MATMUL, DIAGONAL, DIAG_EMBED = Matmul(), Diagonal(), DiagEmbed()


# ---- public functions -------------------------------------------------------------------------
def matmul(x1, x2, /) -> Tensor:
    """Matrix product with Array API semantics (1-d promotion, broadcast batch axes).

    >>> import ember
    >>> from ember import linalg
    >>> linalg.matmul(ember.ones((2, 3)), ember.ones((3, 4))).shape
    (2, 4)
    >>> (ember.ones((5, 2, 3)) @ ember.ones(3)).shape
    (5, 2)
    """
    if type(x1) is not Tensor or type(x2) is not Tensor or x1._data.dtype != x2._data.dtype:
        x1, x2 = binary_operands(x1, x2)
    return apply(MATMUL, x1, x2)


def _axis_list(axes, ndim: int, op: str) -> list:
    axes = [axes] if isinstance(axes, int) else list(axes)
    for axis in axes:
        if not -ndim <= axis < ndim:
            raise shape_error(op, f"axis {axis} is out of range for a {ndim}-d operand")
    return [axis % ndim for axis in axes]


def tensordot(x1, x2, /, *, axes=2) -> Tensor:
    """Sum products over `axes` (an int: the last n of x1 with the first n of x2; or a pair
    of axis sequences).

    >>> import ember
    >>> from ember import linalg
    >>> linalg.tensordot(ember.ones((2, 3, 4)), ember.ones((3, 4, 5))).shape
    (2, 5)
    >>> linalg.tensordot(ember.ones((2, 3)), ember.ones((4, 3)), axes=([1], [1])).shape
    (2, 4)
    """
    x1, x2 = binary_operands(_tensor(x1), _tensor(x2))
    if isinstance(axes, int):
        if axes < 0 or axes > min(x1.ndim, x2.ndim):
            raise shape_error("tensordot", f"axes={axes} must be in 0..{min(x1.ndim, x2.ndim)}",
                              x1, x2)
        axes1, axes2 = list(range(x1.ndim - axes, x1.ndim)), list(range(axes))
    else:
        axes1 = _axis_list(axes[0], x1.ndim, "tensordot")
        axes2 = _axis_list(axes[1], x2.ndim, "tensordot")
    sizes1 = [x1.shape[a] for a in axes1]
    sizes2 = [x2.shape[a] for a in axes2]
    if sizes1 != sizes2:
        raise shape_error("tensordot", f"contracted axes {axes1} of {x1.shape} and {axes2} "
                          f"of {x2.shape} have sizes {sizes1} vs {sizes2}", x1, x2)
    # Like NumPy: move the contracted axes together, flatten to matrices, one GEMM.
    free1 = [a for a in range(x1.ndim) if a not in axes1]
    free2 = [a for a in range(x2.ndim) if a not in axes2]
    shape1 = tuple(x1.shape[a] for a in free1)
    shape2 = tuple(x2.shape[a] for a in free2)
    inner_size = math.prod(sizes1)
    a = movement.reshape(movement.permute_dims(x1, free1 + axes1),
                         (math.prod(shape1), inner_size))
    b = movement.reshape(movement.permute_dims(x2, axes2 + free2),
                         (inner_size, math.prod(shape2)))
    return movement.reshape(matmul(a, b), shape1 + shape2)


def vecdot(x1, x2, /, *, axis: int = -1) -> Tensor:
    """Dot products of vectors along `axis`, broadcasting the other axes.

    >>> import ember
    >>> from ember import linalg
    >>> linalg.vecdot(ember.ones((4, 3)), ember.ones(3))
    tensor([3., 3., 3., 3.])
    """
    x1, x2 = binary_operands(_tensor(x1), _tensor(x2))
    ndim = min(x1.ndim, x2.ndim)
    if ndim == 0 or not -ndim <= axis < ndim:
        raise shape_error("vecdot", f"axis {axis} is out of range for shapes {x1.shape} "
                          f"and {x2.shape}", x1, x2)
    if axis >= 0:  # count from the end, as the Array API does
        axis -= max(x1.ndim, x2.ndim)
    if x1.shape[axis] != x2.shape[axis]:
        raise shape_error("vecdot", f"axis {axis} has size {x1.shape[axis]} in {x1.shape} "
                          f"but {x2.shape[axis]} in {x2.shape}", x1, x2)
    product = x1 * x2
    return reduce_sum(product, axis=axis, dtype=product.dtype)


def outer(x1, x2, /) -> Tensor:
    """Outer product of two vectors: out[i, j] = x1[i] * x2[j].

    >>> import ember
    >>> from ember import linalg
    >>> linalg.outer(ember.tensor([1, 2]), ember.tensor([1, 10, 100]))
    tensor([[  1,  10, 100],
            [  2,  20, 200]])
    """
    x1, x2 = _tensor(x1), _tensor(x2)
    if x1.ndim != 1 or x2.ndim != 1:
        raise shape_error("outer", f"expects two 1-d tensors, got shapes {x1.shape} and "
                          f"{x2.shape}", x1, x2)
    return movement.reshape(x1, (-1, 1)) * movement.reshape(x2, (1, -1))


def inner(x1, x2, /) -> Tensor:
    """Sum of products over the last axes: out.shape == x1.shape[:-1] + x2.shape[:-1]."""
    x1, x2 = _tensor(x1), _tensor(x2)
    if x1.ndim == 0 or x2.ndim == 0:
        return x1 * x2
    return tensordot(x1, x2, axes=([-1], [-1]))


def cross(x1, x2, /, *, axis: int = -1) -> Tensor:
    """Cross product of 3-vectors along `axis` (other axes broadcast).

    >>> import ember
    >>> from ember import linalg
    >>> linalg.cross(ember.tensor([1.0, 0, 0]), ember.tensor([0.0, 1, 0]))
    tensor([0., 0., 1.])
    """
    x1, x2 = binary_operands(_tensor(x1), _tensor(x2))
    if min(x1.ndim, x2.ndim) == 0 or x1.shape[axis] != 3 or x2.shape[axis] != 3:
        raise shape_error("cross", f"axis {axis} must have size 3 in both shapes {x1.shape} "
                          f"and {x2.shape}", x1, x2)
    if axis >= 0:
        axis -= max(x1.ndim, x2.ndim)
    # (a x b)_i = a_{i+1} b_{i+2} - a_{i+2} b_{i+1}, indices mod 3: two rolls per operand.
    return (movement.roll(x1, -1, axis=axis) * movement.roll(x2, -2, axis=axis)
            - movement.roll(x1, -2, axis=axis) * movement.roll(x2, -1, axis=axis))


def diagonal(x, /, *, offset: int = 0) -> Tensor:
    """Diagonal `offset` of the last two axes (Array API `linalg.diagonal`).

    >>> import ember
    >>> from ember import linalg
    >>> linalg.diagonal(ember.reshape(ember.arange(9), (3, 3)), offset=1)
    tensor([1, 5])
    """
    x = _tensor(x)
    if x.ndim < 2:
        raise shape_error("diagonal", "needs at least 2 dimensions", x)
    return apply(DIAGONAL, x, offset=int(offset))


def trace(x, /, *, offset: int = 0, dtype=None) -> Tensor:
    """Sum of diagonal `offset` of the last two axes (Array API `linalg.trace`).

    >>> import ember
    >>> from ember import linalg
    >>> linalg.trace(ember.eye(3))
    tensor(3.)
    """
    return reduce_sum(diagonal(x, offset=offset), axis=-1, dtype=dtype)


# ---- Tensor methods ---------------------------------------------------------------------------
def _two_d(op):
    def method(self, other):
        other = _tensor(other)
        if self.ndim != 2 or other.ndim != 2:
            raise shape_error(op, f"expects two 2-d tensors, got shapes {self.shape} and "
                              f"{other.shape}; use matmul for other ranks", self, other)
        return matmul(self, other)

    method.__name__ = op
    return method


def _dot(self, other):
    other = _tensor(other)
    if self.ndim != 1 or other.ndim != 1:
        raise shape_error("dot", f"expects two 1-d tensors, got shapes {self.shape} and "
                          f"{other.shape}; use matmul or tensordot", self, other)
    return matmul(self, other)


def _diagonal_method(self, offset=0, axis1=0, axis2=1, *, dim1=None, dim2=None):
    """NumPy/PyTorch spelling: the diagonal of axes (axis1, axis2), default the first two."""
    axis1 = dim1 if dim1 is not None else axis1
    axis2 = dim2 if dim2 is not None else axis2
    return diagonal(movement.moveaxis(self, (axis1, axis2), (-2, -1)), offset=offset)


def _trace_method(self, offset=0, axis1=0, axis2=1, dtype=None):
    return reduce_sum(_diagonal_method(self, offset, axis1, axis2), axis=-1, dtype=dtype)


def bind_methods(tensor_class):
    """Operators and methods: @, matmul, mm, bmm, dot, outer, inner, diagonal, trace, and the
    decompositions/norms (det, inverse, norm, ...)."""
    from ember.ops import decomp, norm

    tensor_class.__matmul__ = matmul
    tensor_class.__rmatmul__ = lambda self, other: matmul(other, self)
    tensor_class.matmul = matmul
    tensor_class.mm = _two_d("mm")
    tensor_class.bmm = matmul
    tensor_class.dot = _dot
    tensor_class.outer = outer
    tensor_class.inner = inner
    tensor_class.diagonal = _diagonal_method
    tensor_class.trace = _trace_method
    tensor_class.det = decomp.det
    tensor_class.slogdet = decomp.slogdet
    tensor_class.inverse = decomp.inv
    tensor_class.cholesky = decomp.cholesky
    tensor_class.qr = decomp.qr
    tensor_class.svd = decomp.svd
    tensor_class.pinverse = decomp.pinv
    tensor_class.norm = norm.norm_method
    return tensor_class
