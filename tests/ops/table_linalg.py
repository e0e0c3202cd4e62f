"""Op-table rows for products, einsum, decompositions and norms (ember/ops/linalg.py,
einsum.py, decomp.py, norm.py)."""
from __future__ import annotations

from functools import partial

import numpy as np

import ember
from ember import linalg
from tests.ops.optable import OpSpec

FLOATS = ("float32", "float64")
SQUARE = [((3, 3),), ((2, 3, 3),)]


# ---- input generators -------------------------------------------------------------------------
def _uniform(rng, shape, dtype):
    return rng.uniform(-1.0, 1.0, size=shape).astype(dtype)


def _well_conditioned(rng, shapes, dtype):
    """Square matrices dominated by their diagonal (invertible, moderate condition number);
    other inputs uniform."""
    out = []
    for shape in shapes:
        array = rng.uniform(-1.0, 1.0, size=shape)
        if len(shape) >= 2 and shape[-1] == shape[-2]:
            array = array + 2.0 * np.eye(shape[-1]) * rng.choice([-1, 1], size=shape[-1])
        out.append(array.astype(dtype))
    return out


def _spd(rng, shapes, dtype):
    out = []
    for shape in shapes:
        b = rng.uniform(-1.0, 1.0, size=shape)
        out.append((b @ np.swapaxes(b, -1, -2) + shape[-1] * np.eye(shape[-1])).astype(dtype))
    return out


def _orthonormal(rng, batch, m, k):
    q, _ = np.linalg.qr(rng.standard_normal(batch + (m, k)))
    return q


def _distinct_singular(rng, shapes, dtype):
    """Matrices with well-separated singular values 3, 2.2, 1.4, ... (stable SVD gradients)."""
    out = []
    for shape in shapes:
        batch, (m, n) = shape[:-2], shape[-2:]
        k = min(m, n)
        s = 3.0 - 0.8 * np.arange(k)
        u, v = _orthonormal(rng, batch, m, k), _orthonormal(rng, batch, n, k)
        out.append(((u * s) @ np.swapaxes(v, -1, -2)).astype(dtype))
    return out


def _symmetric_distinct(rng, shapes, dtype):
    """Symmetric matrices with well-separated eigenvalues -2, -0.8, 0.4, ..."""
    out = []
    for shape in shapes:
        n = shape[-1]
        v = _orthonormal(rng, shape[:-2], n, n)
        w = -2.0 + 1.2 * np.arange(n)
        out.append(((v * w) @ np.swapaxes(v, -1, -2)).astype(dtype))
    return out


def _away_from_zero(rng, shapes, dtype):
    """Entries with |x| in [0.3, 1.5] and distinct magnitudes (no kinks, no ties)."""
    out = []
    for shape in shapes:
        size = int(np.prod(shape))
        magnitude = 0.3 + 1.2 * (rng.permutation(size) + 0.5) / size
        out.append((magnitude * rng.choice([-1, 1], size=size)).reshape(shape).astype(dtype))
    return out


# ---- helpers used by the rows -----------------------------------------------------------------
def _sym(a):
    return (a + ember.matrix_transpose(a)) * 0.5


def _weights(k, like):
    return ember.asarray(np.arange(1.0, k + 1.0), dtype=like.dtype)


def _svd_invariants(a):
    """Sign-invariant functions of the singular vectors: U diag(w) Vh and U diag(w) U^T."""
    u, s, vh = linalg.svd(a)
    w = _weights(s.shape[-1], a)
    return (u * w) @ vh, (u * w) @ ember.matrix_transpose(u), s


def _svd_invariants_ref(a):
    u, s, vh = np.linalg.svd(a, full_matrices=False)
    w = np.arange(1.0, s.shape[-1] + 1.0).astype(a.dtype)
    return (u * w) @ vh, (u * w) @ np.swapaxes(u, -1, -2), s


def _eigh_invariants(a):
    w, v = linalg.eigh(_sym(a))
    c = _weights(w.shape[-1], a)
    return w, (v * c) @ ember.matrix_transpose(v)


def _eigh_invariants_ref(a):
    w, v = np.linalg.eigh(a)
    c = np.arange(1.0, w.shape[-1] + 1.0).astype(a.dtype)
    return w, (v * c) @ np.swapaxes(v, -1, -2)


def _matmul_rows():
    shapes = [((3, 4), (4, 5)), ((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)),
              ((2, 3, 4), (4, 5)), ((2, 1, 3, 4), (5, 4, 2)), ((3,), (2, 3, 4))]
    return [
        OpSpec("matmul", ember.linalg.matmul, np.matmul, shapes,
               dtypes=(*FLOATS, "int64"), double=True),
        OpSpec("matmul_operator", lambda a, b: a @ b, np.matmul, shapes[:2], double=True),
    ]


def _einsum_rows():
    cases = [
        ("ij,jk->ik", ((3, 4), (4, 5))), ("ij,jk", ((3, 4), (4, 5))),
        ("bij,bjk->bik", ((2, 3, 4), (2, 4, 2))), ("ii->i", ((3, 3),)), ("ii", ((3, 3),)),
        ("iij->j", ((3, 3, 2),)), ("ij->", ((3, 4),)), ("ij->j", ((3, 4),)),
        ("i,i", ((4,), (4,))), ("i,j->ij", ((3,), (4,))), ("abc->cba", ((2, 3, 4),)),
        ("ij,jk,kl->il", ((2, 3), (3, 4), (4, 2))), ("...ij,...jk", ((2, 1, 3, 4), (5, 4, 2))),
        ("ij,ij->ij", ((1, 3), (2, 3))), ("...i,i->...", ((2, 3, 4), (4,))),
        ("bi,bi->b", ((3, 4), (3, 4))),
    ]
    return [OpSpec(f"einsum[{subscripts}]",
                   (lambda s: lambda *xs: ember.linalg.einsum(s, *xs))(subscripts),
                   (lambda s: lambda *xs: np.einsum(s, *xs))(subscripts), [shapes],
                   double=True) for subscripts, shapes in cases]


def _vector_norm_rows():
    rows = []
    for ord in (2, 1, np.inf, -np.inf, 3, 0.5, 0):
        for axis, keepdims in ((None, False), (-1, False), ((0, 2), True)):
            shapes = [((5,),), ((2, 3, 4),)] if axis is None else [((2, 3, 4),)]
            rows.append(OpSpec(
                f"vector_norm[ord={ord},axis={axis}]",
                (lambda o, a, k: lambda x: linalg.vector_norm(x, ord=o, axis=a,
                                                              keepdims=k))(ord, axis, keepdims),
                (lambda o, a, k: lambda x: _np_vector_norm(x, o, a, k))(ord, axis, keepdims),
                shapes, make=_away_from_zero, grad=() if ord == 0 else None,
                double=ord in (2, 3)))
    return rows


def _np_vector_norm(x, ord, axis, keepdims):
    # NumPy's norm reads a 2-tuple axis as a matrix norm: flatten the axes into one first.
    axes = tuple(range(x.ndim)) if axis is None else (axis,) if isinstance(axis, int) else axis
    axes = tuple(a % x.ndim for a in axes)
    kept = [i for i in range(x.ndim) if i not in axes]
    flat = np.transpose(x, kept + list(axes)).reshape([x.shape[i] for i in kept] + [-1])
    out = np.asarray(np.linalg.norm(flat, ord=ord, axis=-1))
    if keepdims:
        out = out.reshape([1 if i in axes else size for i, size in enumerate(x.shape)])
    return out.astype(x.dtype)


def _matrix_norm_rows():
    rows = []
    for ord in ("fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf):
        singular = ord in ("nuc", 2, -2)
        rows.append(OpSpec(
            f"matrix_norm[ord={ord}]",
            (lambda o: lambda x: linalg.matrix_norm(x, ord=o))(ord),
            (lambda o: lambda x: np.linalg.norm(x, ord=o, axis=(-2, -1)).astype(x.dtype))(ord),
            [((3, 4),), ((2, 4, 3),)], make=_distinct_singular if singular else _away_from_zero,
            double=ord in ("fro", "nuc")))
    rows += [
        OpSpec("norm[default]", linalg.norm, lambda x: np.asarray(np.linalg.norm(x), x.dtype),
               [((3, 4),), ((2, 3, 4),)], double=True),
        OpSpec("norm[ord=2,2d]", lambda x: linalg.norm(x, ord=2),
               lambda x: np.linalg.norm(x, ord=2).astype(x.dtype), [((3, 4),)],
               make=_distinct_singular),
        OpSpec("norm[axis=1]", lambda x: linalg.norm(x, axis=1, ord=3),
               lambda x: np.linalg.norm(x, axis=1, ord=3).astype(x.dtype), [((2, 3, 4),)],
               make=_away_from_zero),
        OpSpec("norm[axes,keepdims]", lambda x: linalg.norm(x, axis=(0, 2), keepdims=True),
               lambda x: np.linalg.norm(x, axis=(0, 2), keepdims=True), [((2, 3, 4),)]),
    ]
    return rows


def _power(function, a, n):
    return function(a, n)


def _slogdet_ref(a):
    sign, logabsdet = np.linalg.slogdet(a)
    return sign, logabsdet


ROWS = [
    *_matmul_rows(),
    OpSpec("tensordot", lambda a, b: linalg.tensordot(a, b), lambda a, b: np.tensordot(a, b),
           [((2, 3, 4), (3, 4, 5)), ((3, 4), (3, 4))], double=True),
    OpSpec("tensordot[axes=1]", lambda a, b: linalg.tensordot(a, b, axes=1),
           lambda a, b: np.tensordot(a, b, axes=1), [((3, 4), (4, 5))], double=True),
    OpSpec("tensordot[pairs]", lambda a, b: linalg.tensordot(a, b, axes=([0, 2], [2, 1])),
           lambda a, b: np.tensordot(a, b, axes=([0, 2], [2, 1])), [((2, 3, 4), (5, 4, 2))],
           double=True),
    OpSpec("vecdot", linalg.vecdot, lambda a, b: np.sum(a * b, axis=-1),
           [((4, 3), (3,)), ((2, 1, 3), (4, 3))], double=True),
    OpSpec("vecdot[axis=0]", lambda a, b: linalg.vecdot(a, b, axis=0),
           lambda a, b: np.sum(a * b, axis=0), [((3, 4), (3, 4))]),
    OpSpec("outer", linalg.outer, np.outer, [((3,), (4,))], double=True),
    OpSpec("inner", linalg.inner, np.inner, [((2, 3), (4, 3)), ((3,), (3,))], double=True),
    OpSpec("cross", linalg.cross, np.cross, [((3,), (3,)), ((4, 3), (3,))], double=True),
    *_einsum_rows(),
    *[OpSpec(f"diagonal[offset={k}]", partial(linalg.diagonal, offset=k),
             partial(np.diagonal, offset=k, axis1=-2, axis2=-1), [((3, 4),), ((2, 4, 3),)],
             dtypes=(*FLOATS, "int64"), double=True) for k in (0, 1, -2)],
    *[OpSpec(f"trace[offset={k}]", partial(linalg.trace, offset=k),
             partial(np.trace, offset=k, axis1=-2, axis2=-1), [((3, 4),), ((2, 4, 3),)],
             double=True) for k in (0, 1)],
    OpSpec("inv", linalg.inv, np.linalg.inv, SQUARE, make=_well_conditioned, double=True),
    OpSpec("solve", linalg.solve, np.linalg.solve,
           [((3, 3), (3,)), ((3, 3), (3, 2)), ((2, 3, 3), (3, 2)), ((3, 3), (2, 3, 1)),
            ((2, 3, 3), (3,))], make=_well_conditioned, double=True),
    OpSpec("det", linalg.det, np.linalg.det, SQUARE, make=_well_conditioned, double=True),
    OpSpec("slogdet", linalg.slogdet, _slogdet_ref, SQUARE, make=_well_conditioned,
           double=True),
    OpSpec("cholesky", lambda a: linalg.cholesky(_sym(a)), np.linalg.cholesky, SQUARE,
           make=_spd, double=True),
    OpSpec("cholesky[upper]", lambda a: linalg.cholesky(_sym(a), upper=True),
           lambda a: np.swapaxes(np.linalg.cholesky(a), -1, -2), [((3, 3),)], make=_spd),
    OpSpec("qr", linalg.qr, np.linalg.qr, [((4, 3),), ((3, 3),), ((2, 4, 3),)],
           make=_distinct_singular, double=True),
    OpSpec("svd", _svd_invariants, _svd_invariants_ref, [((4, 3),), ((3, 4),), ((2, 3, 3),)],
           make=_distinct_singular, double=True),
    OpSpec("svdvals", linalg.svdvals, lambda a: np.linalg.svd(a, compute_uv=False),
           [((4, 3),), ((2, 3, 4),)], make=_distinct_singular, double=True),
    OpSpec("eigh", _eigh_invariants, _eigh_invariants_ref, SQUARE, make=_symmetric_distinct,
           double=True),
    OpSpec("eigvalsh", lambda a: linalg.eigvalsh(_sym(a)), np.linalg.eigvalsh, SQUARE,
           make=_symmetric_distinct, double=True),
    OpSpec("pinv", linalg.pinv, np.linalg.pinv, [((4, 3),), ((3, 4),)],
           make=_distinct_singular),
    *[OpSpec(f"matrix_power[{n}]", partial(_power, linalg.matrix_power, n=n),
             partial(_power, np.linalg.matrix_power, n=n), SQUARE, make=_well_conditioned,
             grad=() if n == 0 else None, double=True) for n in (0, 1, 3, -2)],
    OpSpec("matrix_rank", linalg.matrix_rank, np.linalg.matrix_rank, [((4, 3),)],
           make=_distinct_singular, grad=()),
    *_vector_norm_rows(),
    *_matrix_norm_rows(),
]
