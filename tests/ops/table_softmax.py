"""Op-table rows for the softmax family (ember/ops/softmax.py)."""
from __future__ import annotations

import numpy as np

from ember.ops.softmax import log_softmax, softmax, softmax_cross_entropy
from tests.ops.optable import OpSpec

SHAPES = [((5,),), ((3, 4),), ((2, 3, 4),)]
IGNORE = -100


def _softmax(x, axis):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x, axis):
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _rows_over_axes(name, fn, ref):
    return [
        OpSpec(f"{name}_last", lambda x: fn(x, dim=-1), lambda x: ref(x, -1), SHAPES,
               double=True),
        OpSpec(f"{name}_dim0", lambda x: fn(x, dim=0), lambda x: ref(x, 0), SHAPES,
               double=True),
        OpSpec(f"{name}_axis1", lambda x: fn(x, axis=1), lambda x: ref(x, 1), SHAPES[1:],
               double=True),
        # exp() is tried unshifted first: +-60 stays in float32's range, +-1000 overflows
        # even float64, and -1000..-900 underflows to 0; the last two need the max shift.
        OpSpec(f"{name}_large", lambda x: fn(x, dim=1), lambda x: ref(x, 1), [((3, 4),)],
               domain=(-60.0, 60.0), double=True, grad_atol=1e-4),
        OpSpec(f"{name}_overflowing", lambda x: fn(x, dim=1), lambda x: ref(x, 1),
               [((3, 4),)], domain=(-1000.0, 1000.0), double=True),
        OpSpec(f"{name}_underflowing", lambda x: fn(x, dim=-1), lambda x: ref(x, -1),
               [((3, 4),)], domain=(-1000.0, -900.0), double=True),
    ]


def _logits_and_targets(rng, shapes, dtype, scale=2.0, offset=0.0):
    (rows, classes), _ = shapes
    logits = (offset + rng.uniform(-scale, scale, size=(rows, classes))).astype(dtype)
    target = rng.integers(0, classes, size=rows)
    target[::3] = IGNORE  # every third row is ignored: loss and gradient 0 there
    return [logits, target]


def _cross_entropy(logits, target):
    log_probs = _log_softmax(logits.astype(np.float64), 1)
    valid = target != IGNORE
    picked = log_probs[np.arange(len(target)), np.where(valid, target, 0)]
    return np.where(valid, -picked, 0.0).astype(logits.dtype)


ROWS = [
    *_rows_over_axes("softmax", softmax, _softmax),
    *_rows_over_axes("log_softmax", log_softmax, _log_softmax),
    OpSpec("softmax_scalar", softmax, lambda x: np.ones_like(x), [((),)]),
    OpSpec("softmax_cross_entropy", lambda x, t: softmax_cross_entropy(x, t, IGNORE),
           _cross_entropy, [((4, 5), (4,)), ((7, 3), (7,))], make=_logits_and_targets,
           grad=(0,), double=True),
    OpSpec("softmax_cross_entropy_overflowing",
           lambda x, t: softmax_cross_entropy(x, t, IGNORE), _cross_entropy, [((4, 5), (4,))],
           make=lambda rng, shapes, dtype: _logits_and_targets(rng, shapes, dtype, 1000.0),
           grad=(0,), double=True),
    # every exp underflows unshifted: the row kernel redoes such rows shifted by their maximum
    OpSpec("softmax_cross_entropy_underflowing",
           lambda x, t: softmax_cross_entropy(x, t, IGNORE), _cross_entropy, [((4, 5), (4,))],
           make=lambda rng, shapes, dtype: _logits_and_targets(rng, shapes, dtype, 50.0, -950.0),
           grad=(0,), double=True),
]
