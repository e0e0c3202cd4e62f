"""Matrix functions and decompositions: inv, solve, det, slogdet, cholesky, qr, svd, eigh.

Every function works on stacks of matrices (`(..., M, N)`). float16/bfloat16 have no LAPACK
kernels, so those compute in float32 and cast back. The backward rules are the standard
ones (references at each rule), written in ember ops so they can be differentiated again.
Shape checks happen in the public functions: these ops are not dispatch-bound, and LAPACK's
own messages ("Last 2 dimensions of the array must be square") name no operation or line.
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ember._core import dtypes
from ember._core.errors import EmberError, user_frame
from ember._core.primitive import AbstractValue, Primitive, apply, shape_error
from ember._core.shapes import broadcast_shapes
from ember._core.tensor import Tensor
from ember.ops import movement
from ember.ops._util import binary_operands, unary_float
from ember.ops.creation import tril
from ember.ops.elementwise import where
from ember.ops.linalg import _swap_last, matmul
from ember.ops.reduce import max as reduce_max
from ember.ops.reduce import sum as reduce_sum

__all__ = ["LinAlgError", "cholesky", "det", "eigh", "eigvalsh", "inv", "matrix_power",
           "matrix_rank", "pinv", "qr", "slogdet", "solve", "svd", "svdvals"]

SlogdetResult = namedtuple("SlogdetResult", ["sign", "logabsdet"])
QRResult = namedtuple("QRResult", ["Q", "R"])
SVDResult = namedtuple("SVDResult", ["U", "S", "Vh"])
EighResult = namedtuple("EighResult", ["eigenvalues", "eigenvectors"])


class LinAlgError(EmberError, ValueError):
    """A matrix function failed numerically: singular matrix, not positive definite, ..."""


def _lapack(op: str, hint: str, function, *arrays, **kwargs):
    """Run a LAPACK routine, in float32 for half-precision inputs, as an ember error on failure."""
    dtype = arrays[0].dtype
    if dtype.itemsize < 4:
        arrays = tuple(array.astype("float32") for array in arrays)
    try:
        result = function(*arrays, **kwargs)
    except np.linalg.LinAlgError as error:  # CuPy raises NumPy's class too
        advice = f"; {hint}" if hint else ""
        raise LinAlgError(f"{op}: {error} at {user_frame()}{advice}") from None
    if isinstance(result, tuple):
        return tuple(part.astype(dtype, copy=False) for part in result)
    return result.astype(dtype, copy=False)


_SINGULAR = "the matrix is singular: check its rank, or use linalg.pinv"


def _identity(like: Tensor, size: int) -> Tensor:
    return Tensor(like._device.xp.eye(size, dtype=like._data.dtype), like._device)


def _scale_columns(x: Tensor, factors: Tensor) -> Tensor:
    """x @ diag(factors) without forming the diagonal matrix."""
    return x * movement.expand_dims(factors, -2)


def _safe_reciprocal_gaps(values: Tensor) -> Tensor:
    """F[i, j] = 1 / (values[j] - values[i]) off the diagonal, 0 where the gap is 0.

    Zero gaps (the diagonal, and repeated values) get 0 rather than inf, so losses that do not
    depend on the basis of a degenerate subspace still get finite gradients; both `where`
    branches stay finite so the second derivative has no 0 * inf either.
    """
    gaps = movement.expand_dims(values, -2) - movement.expand_dims(values, -1)
    zero = gaps == 0
    return where(zero, 0.0, 1.0 / where(zero, 1.0, gaps))


class Inv(Primitive):
    def infer(self, x):
        return AbstractValue(x.shape, x.dtype, x.device)

    def forward(self, xp, x):
        return _lapack("inv", _SINGULAR, xp.linalg.inv, x)

    def vjp(self, ctx, gy):
        inverse_t = _swap_last(ctx.out)  # d(A^-1) = -A^-1 dA A^-1
        return (-matmul(matmul(inverse_t, gy), inverse_t),)


class Solve(Primitive):
    """X with A X = B for A (..., M, M) and B (..., M, K); batch axes broadcast."""

    def infer(self, a, b):
        batch = broadcast_shapes(a.shape[:-2], b.shape[:-2], op="solve")
        return AbstractValue(batch + b.shape[-2:], a.dtype, a.device)

    def forward(self, xp, a, b):
        return _lapack("solve", _SINGULAR, xp.linalg.solve, a, b)

    def vjp(self, ctx, gy):
        a = ctx.inputs[0]
        gb = apply(SOLVE, _swap_last(a), gy)  # gB = A^-T gX, gA = -gB X^T
        ga = -matmul(gb, _swap_last(ctx.out)) if ctx.node.edges[0] is not None else None
        return ga, gb


class Det(Primitive):
    def infer(self, x):
        return AbstractValue(x.shape[:-2], x.dtype, x.device)

    def forward(self, xp, x):
        return _lapack("det", "", xp.linalg.det, x)

    def vjp(self, ctx, gy):
        # d det(A) = det(A) tr(A^-1 dA): gA = g det(A) A^-T (singular A is not supported).
        scale = movement.reshape(gy * ctx.out, gy.shape + (1, 1))
        return (scale * _swap_last(inv(ctx.inputs[0])),)


class Slogdet(Primitive):
    def infer(self, x):
        value = AbstractValue(x.shape[:-2], x.dtype, x.device)
        return value, value

    def forward(self, xp, x):
        return _lapack("slogdet", "", xp.linalg.slogdet, x)

    def vjp(self, ctx, gsign, glogabsdet):
        scale = movement.reshape(glogabsdet, glogabsdet.shape + (1, 1))
        return (scale * _swap_last(inv(ctx.inputs[0])),)


class Cholesky(Primitive):
    """Lower-triangular L with A = L L^T (only the lower triangle of A is read)."""

    def infer(self, x):
        return AbstractValue(x.shape, x.dtype, x.device)

    def forward(self, xp, x):
        return _lapack("cholesky", "the matrix is not symmetric positive definite",
                       xp.linalg.cholesky, x)

    def vjp(self, ctx, gy):
        # Murray (2016), as in PyTorch: gA = L^-T Phi L^-1 with Phi the symmetric matrix built
        # from tril(L^T gL), its diagonal halved.
        lower = ctx.out
        phi = tril(matmul(_swap_last(lower), gy))
        phi = (phi + _swap_last(tril(phi, k=-1))) * 0.5
        lower_inv = inv(lower)
        return (matmul(matmul(_swap_last(lower_inv), phi), lower_inv),)


class Qr(Primitive):
    def infer(self, x, mode):
        m, n = x.shape[-2:]
        k = min(m, n) if mode == "reduced" else m
        return (AbstractValue(x.shape[:-2] + (m, k), x.dtype, x.device),
                AbstractValue(x.shape[:-2] + (k, n), x.dtype, x.device))

    def forward(self, xp, x, mode):
        return _lapack("qr", "", xp.linalg.qr, x, mode=mode)

    def vjp(self, ctx, gq, gr):
        # Liao et al. (2019), for m >= n: gA = (gQ + Q copyltu(M)) R^-T, M = R gR^T - gQ^T Q,
        # copyltu(M) the symmetric matrix with M's lower triangle.
        q, r = ctx.output(0), ctx.output(1)
        m, n = ctx.inputs[0].shape[-2:]
        if m < n or (m > n and ctx.params["mode"] == "complete"):
            raise EmberError(f"qr: the gradient is implemented for mode='reduced' with m >= n "
                             f"only, got a {m}x{n} matrix in mode={ctx.params['mode']!r}")
        product = matmul(r, _swap_last(gr)) - matmul(_swap_last(gq), q)
        product = tril(product) + _swap_last(tril(product, k=-1))
        combined = gq + matmul(q, product)
        return (_swap_last(apply(SOLVE, r, _swap_last(combined))),)


class Svd(Primitive):
    """SVD: U (..., M, K), S (..., K) descending, Vh (..., K, N); K = min(M, N) for the thin
    SVD, U and Vh square with `full_matrices`."""

    def infer(self, x, full_matrices):
        m, n = x.shape[-2:]
        k = min(m, n)
        batch = x.shape[:-2]
        return (AbstractValue(batch + (m, m if full_matrices else k), x.dtype, x.device),
                AbstractValue(batch + (k,), x.dtype, x.device),
                AbstractValue(batch + (n if full_matrices else k, n), x.dtype, x.device))

    def forward(self, xp, x, full_matrices):
        return _lapack("svd", "", xp.linalg.svd, x, full_matrices=full_matrices)

    def vjp(self, ctx, gu, gs, gvh):
        # Townsend (2016), "Differentiating the singular value decomposition". Valid for
        # distinct nonzero singular values and losses independent of the singular vectors'
        # signs (the SVD's gauge).
        u, s, vh = ctx.output(0), ctx.output(1), ctx.output(2)
        v, gv = _swap_last(vh), _swap_last(gvh)
        m, n = ctx.inputs[0].shape[-2:]
        if ctx.params["full_matrices"] and m != n:
            raise EmberError("svd: the gradient needs full_matrices=False for non-square "
                             "matrices (the extra singular vectors are not unique)")
        k = s.shape[-1]
        gaps = _safe_reciprocal_gaps(s * s)  # 1 / (s_j^2 - s_i^2)
        ut_gu = matmul(_swap_last(u), gu)
        vt_gv = matmul(_swap_last(v), gv)
        j = gaps * (ut_gu - _swap_last(ut_gu))
        kk = gaps * (vt_gv - _swap_last(vt_gv))
        core = (_scale_columns(j, s) + movement.expand_dims(s, -1) * kk
                + _identity(s, k) * movement.expand_dims(gs, -2))
        ga = matmul(matmul(u, core), vh)
        if m > k:  # (I - U U^T) gU S^-1 V^T
            ga = ga + matmul(_scale_columns(gu - matmul(u, ut_gu), 1.0 / s), vh)
        if n > k:  # U S^-1 gV^T (I - V V^T)
            ga = ga + matmul(u, _swap_last(_scale_columns(gv - matmul(v, vt_gv), 1.0 / s)))
        return (ga,)


class Svdvals(Primitive):
    def infer(self, x):
        return AbstractValue(x.shape[:-2] + (min(x.shape[-2:]),), x.dtype, x.device)

    def forward(self, xp, x):
        return _lapack("svdvals", "", xp.linalg.svd, x, compute_uv=False)

    def vjp(self, ctx, gy):
        u, _, vh = svd(ctx.inputs[0])  # d s_i = u_i^T dA v_i
        return (matmul(_scale_columns(u, gy), vh),)


class Eigh(Primitive):
    """Eigenvalues (ascending) and eigenvectors of symmetric matrices (lower triangle read)."""

    def infer(self, x):
        return (AbstractValue(x.shape[:-1], x.dtype, x.device),
                AbstractValue(x.shape, x.dtype, x.device))

    def forward(self, xp, x):
        return _lapack("eigh", "", xp.linalg.eigh, x)

    def vjp(self, ctx, gw, gv):
        # gA = V (diag(gw) + F o skew(V^T gV)) V^T, F_ij = 1 / (w_j - w_i): symmetric, as in
        # PyTorch's Hermitian case.
        w, v = ctx.output(0), ctx.output(1)
        vt_gv = matmul(_swap_last(v), gv)
        core = (_safe_reciprocal_gaps(w) * (vt_gv - _swap_last(vt_gv)) * 0.5
                + _identity(w, w.shape[-1]) * movement.expand_dims(gw, -2))
        return (matmul(matmul(v, core), _swap_last(v)),)


class Eigvalsh(Primitive):
    def infer(self, x):
        return AbstractValue(x.shape[:-1], x.dtype, x.device)

    def forward(self, xp, x):
        return _lapack("eigvalsh", "", xp.linalg.eigvalsh, x)

    def vjp(self, ctx, gy):
        _, v = eigh(ctx.inputs[0])  # d w_i = v_i^T dA v_i
        return (matmul(_scale_columns(v, gy), _swap_last(v)),)


INV, SOLVE, DET, SLOGDET, CHOLESKY = Inv(), Solve(), Det(), Slogdet(), Cholesky()
QR, SVD, SVDVALS, EIGH, EIGVALSH = Qr(), Svd(), Svdvals(), Eigh(), Eigvalsh()


# ---- public functions -------------------------------------------------------------------------
def _matrices(x, op: str, square: bool = True) -> Tensor:
    """x as a floating stack of (square) matrices, or a ShapeError naming op and line."""
    x = unary_float(x)
    if x.ndim < 2:
        raise shape_error(op, f"expects a matrix or a stack of matrices (..., M, N), got "
                          f"shape {x.shape}", x)
    if square and x.shape[-1] != x.shape[-2]:
        raise shape_error(op, f"expects square matrices in the last two axes, got shape "
                          f"{x.shape}", x)
    return x


def inv(x, /) -> Tensor:
    """Inverse of each square matrix.

    >>> import ember
    >>> from ember import linalg
    >>> linalg.inv(ember.tensor([[2.0, 0.0], [0.0, 4.0]]))
    tensor([[0.5 , 0.  ],
            [0.  , 0.25]])
    """
    return apply(INV, _matrices(x, "inv"))


def solve(x1, x2, /) -> Tensor:
    """X with x1 @ X = x2; a 1-d x2 is one right-hand side (Array API semantics).

    >>> import ember
    >>> from ember import linalg
    >>> linalg.solve(ember.tensor([[2.0, 0.0], [0.0, 4.0]]), ember.tensor([1.0, 1.0]))
    tensor([0.5 , 0.25])
    """
    a, b = binary_operands(unary_float(x1), unary_float(x2))
    a = _matrices(a, "solve")
    rhs = b
    vector = b.ndim == 1
    if vector:
        b = movement.reshape(b, (-1, 1))
    if b.ndim < 2 or b.shape[-2] != a.shape[-1]:
        raise shape_error("solve", f"x2 does not fit x1: expected x2 of shape ({a.shape[-1]},) "
                          f"or (..., {a.shape[-1]}, K)", a, rhs)
    broadcast_shapes(a.shape[:-2], b.shape[:-2], op="solve")
    out = apply(SOLVE, a, b)
    return movement.squeeze(out, -1) if vector else out


def det(x, /) -> Tensor:
    """Determinant of each square matrix."""
    return apply(DET, _matrices(x, "det"))


def slogdet(x, /) -> SlogdetResult:
    """(sign, log|det|) of each square matrix: the determinant without overflow."""
    return SlogdetResult(*apply(SLOGDET, _matrices(x, "slogdet")))


def cholesky(x, /, *, upper: bool = False) -> Tensor:
    """Cholesky factor of symmetric positive-definite matrices: L with x = L @ L.mT (or the
    upper factor U = L.mT with `upper=True`). Only the lower triangle of x is read.

    >>> import ember
    >>> from ember import linalg
    >>> linalg.cholesky(ember.tensor([[4.0, 2.0], [2.0, 2.0]]))
    tensor([[2., 0.],
            [1., 1.]])
    """
    lower = apply(CHOLESKY, _matrices(x, "cholesky"))
    return _swap_last(lower) if upper else lower


def qr(x, /, *, mode: str = "reduced") -> QRResult:
    """QR decomposition x = Q @ R; mode 'reduced' (K = min(M, N)) or 'complete'.

    Gradients are implemented for M >= N."""
    if mode not in ("reduced", "complete"):
        raise EmberError(f"qr: mode must be 'reduced' or 'complete', got {mode!r}")
    return QRResult(*apply(QR, _matrices(x, "qr", square=False), mode=mode))


def svd(x, /, *, full_matrices: bool = False) -> SVDResult:
    """SVD x = U @ diag(S) @ Vh with S descending; thin (K = min(M, N)) by default, as the
    gradient needs (the Array API's default is full_matrices=True).

    Gradients assume distinct singular values and a loss that does not depend on the signs
    of the singular vectors (e.g. functions of S, of U @ diag(S) @ Vh, or of U @ U.mT).
    """
    return SVDResult(*apply(SVD, _matrices(x, "svd", square=False),
                            full_matrices=bool(full_matrices)))


def svdvals(x, /) -> Tensor:
    """Singular values of each matrix, descending."""
    return apply(SVDVALS, _matrices(x, "svdvals", square=False))


def eigh(x, /) -> EighResult:
    """Eigenvalues (ascending) and eigenvectors of symmetric matrices."""
    return EighResult(*apply(EIGH, _matrices(x, "eigh")))


def eigvalsh(x, /) -> Tensor:
    """Eigenvalues (ascending) of symmetric matrices."""
    return apply(EIGVALSH, _matrices(x, "eigvalsh"))


def _default_rtol(x: Tensor) -> float:
    return max(x.shape[-2:]) * dtypes.finfo(x.dtype).eps


def pinv(x, /, *, rtol=None) -> Tensor:
    """Moore-Penrose pseudo-inverse: singular values below rtol * max(S) count as zero."""
    x = _matrices(x, "pinv", square=False)
    u, s, vh = svd(x)
    rtol = _default_rtol(x) if rtol is None else rtol
    keep = s > reduce_max(s, axis=-1, keepdims=True) * rtol
    s_inv = where(keep, 1.0 / where(keep, s, 1.0), 0.0)
    return matmul(_scale_columns(_swap_last(vh), s_inv), _swap_last(u))


def matrix_rank(x, /, *, rtol=None) -> Tensor:
    """Number of singular values above rtol * max(S) (int64)."""
    x = _matrices(x, "matrix_rank", square=False)
    s = svdvals(x)
    rtol = _default_rtol(x) if rtol is None else rtol
    return reduce_sum(s > reduce_max(s, axis=-1, keepdims=True) * rtol, axis=-1)


def matrix_power(x, n: int, /) -> Tensor:
    """x multiplied by itself n times (n < 0 uses the inverse; n == 0 gives identities)."""
    x = _matrices(x, "matrix_power")
    if n < 0:
        x, n = inv(x), -n
    result = None
    power = x
    while n:  # square-and-multiply: O(log n) products
        if n & 1:
            result = power if result is None else matmul(result, power)
        n >>= 1
        if n:
            power = matmul(power, power)
    if result is None:
        return movement.broadcast_to(_identity(x, x.shape[-1]), x.shape)
    return result
