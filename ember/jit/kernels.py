"""Fused elementwise kernels: a `Region` (what the fusion pass grouped) as one `fused` node.

On the CPU each region becomes a generated Numba function: one loop nest over the region's
iteration space (adjacent axes merged where every operand broadcasts alike, so most loops
are one or two deep), every member computed per element in registers, and only the values
used outside the region stored. A `sum` closing the region accumulates in float64 as the
loop goes, in a local accumulator over the innermost reduced loops (vectorized: those
kernels allow reassociation). With EMBER_JIT_PARALLEL=1, large loops without a reduction on
the outer axis run in parallel (`prange`).

Generated sources are written to a cache directory (`EMBER_CACHE_DIR`, default
`~/.cache/ember/kernels`) under the hash of their text, and compiled with Numba's on-disk
cache: a second process (or a second region with the same text) loads the machine code
instead of compiling. `COMPILE_STATS` counts compilations and cache loads in this process.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
import threading
from pathlib import Path

import numpy as np

from ember._core.errors import EmberError
from ember._core.primitive import Primitive

# Parallel loops (prange) only on request: on 2 cores a memory-bound loop gains little, and
# Numba's OpenMP threads waking right after OpenBLAS's (still spinning) cost ~5 ms a switch.
PARALLEL_MIN = 1 << 17 if os.environ.get("EMBER_JIT_PARALLEL") == "1" else 1 << 62

# prim name -> Python expression over operand names {0}, {1}, {2}
_UNARY_NP = ("exp", "expm1", "log", "log1p", "log2", "log10", "sqrt", "sin", "cos", "tan",
             "tanh", "sinh", "cosh", "floor", "ceil", "trunc", "sign", "abs", "isnan",
             "isinf", "isfinite")
ELEMENTWISE: dict[str, str] = {name: f"np.{name}({{0}})" for name in _UNARY_NP}
ELEMENTWISE.update({
    "negative": "(-{0})", "positive": "(+{0})", "square": "({0} * {0})",
    "sigmoid": "({one} / ({one} + np.exp(-{0})))", "erf": "math.erf({0})", "astype": "{0}",
    "add": "({0} + {1})", "subtract": "({0} - {1})", "multiply": "({0} * {1})",
    "divide": "({0} / {1})", "pow": "({0} ** {1})",
    "maximum": "({0} if ({0} > {1} or {0} != {0}) else {1})",
    "minimum": "({0} if ({0} < {1} or {0} != {0}) else {1})",
    "equal": "({0} == {1})", "not_equal": "({0} != {1})", "less": "({0} < {1})",
    "less_equal": "({0} <= {1})", "greater": "({0} > {1})", "greater_equal": "({0} >= {1})",
    "logical_and": "(bool({0}) and bool({1}))", "logical_or": "(bool({0}) or bool({1}))",
    "logical_not": "(not {0})", "where": "({1} if {0} else {2})",
})
_TRANSCENDENTAL = {"exp", "expm1", "log", "log1p", "log2", "log10", "sin", "cos", "tan", "tanh",
                   "sinh", "cosh", "sigmoid", "erf", "pow"}
_FLOAT_ONLY = {"pow", "sigmoid", "erf", "sqrt", "exp", "expm1", "log", "log1p", "log2", "log10",
               "sin", "cos", "tan", "tanh", "sinh", "cosh", "floor", "ceil", "trunc"}


def fusible_dtype(dtype) -> bool:
    """Dtypes the kernels compute in: bool, integers, float32 and float64."""
    dtype = np.dtype(getattr(dtype, "np", dtype))
    return dtype.kind in "biu" or (dtype.kind == "f" and dtype.itemsize in (4, 8))


def fusible_node(name: str, dtypes_in) -> bool:
    return name in ELEMENTWISE and (name not in _FLOAT_ONLY
                                    or all(np.dtype(d).kind == "f" for d in dtypes_in))


class Region:
    """Members (Nodes in order), external operands (Values) and exposed outputs (Values)."""

    def __init__(self, nodes, operands, exposed):
        self.nodes = list(nodes)
        self.operands = list(operands)
        self.exposed = list(exposed)
        last = self.nodes[-1]
        self.reduce = last if last.prim.name == "sum" else None
        body = self.nodes[:-1] if self.reduce is not None else self.nodes
        self.shape = tuple(body[0].outputs[0].aval.shape)

    @property
    def names(self) -> list:
        return [node.prim.name for node in self.nodes]


class FusedElementwise(Primitive):
    """One region as a primitive: `fused{add,exp,...}(*operands) -> exposed values`."""

    differentiable = False

    def __init__(self, region: Region):
        self.region = region
        names = region.names
        shown = names if len(names) <= 6 else names[:3] + ["..."] + names[-2:]
        self.name = "fused{" + ",".join(shown) + "}"
        self._avals = tuple(value.aval for value in region.exposed)
        # exposed index -> operand index: that output is written into the operand's array
        # (set by ember.jit.passes.inplace before the first run)
        self.inplace: dict[int, int] = {}
        # exposed indices whose array never escapes a run: allocated once, reused every run
        # (a fresh multi-megabyte array costs page faults worth several elementwise passes)
        self.persistent: set[int] = set()
        self._plan = None
        self._lock = threading.Lock()

    def infer(self, *operands):
        return self._avals

    def forward(self, xp, *arrays):
        plan = self._plan
        if plan is None:
            with self._lock:
                if self._plan is None:
                    self._plan = _CpuPlan(self.region, self.inplace, self.persistent)
                plan = self._plan
        if xp is not np:
            raise EmberError(f"{self.name}: fused kernels run on the CPU only in this build")
        return plan(arrays)


# ---- CPU code generation ---------------------------------------------------------------------
class _CpuPlan:
    """The loop layout of a region and its compiled Numba kernel."""

    def __init__(self, region: Region, inplace=None, persistent=()):
        self.region = region
        self.inplace = dict(inplace or {})
        self.persistent = set(persistent)
        self._buffers: dict[int, dict] = {}  # thread id -> {exposed index: array}
        shape = region.shape
        rank = len(shape)
        operand_shapes = [(1,) * (rank - len(v.aval.shape)) + tuple(v.aval.shape)
                          for v in region.operands]
        reduced = set(region.reduce.params["axes"]) if region.reduce is not None else set()
        # drop size-1 axes, then merge neighbours that every operand broadcasts alike
        axes = [d for d in range(rank) if shape[d] != 1]
        merged: list[list[int]] = []
        for d in axes:
            if merged:
                prev = merged[-1][-1]
                same = all((s[prev] == 1) == (s[d] == 1) for s in operand_shapes)
                if same and ((prev in reduced) == (d in reduced)):
                    merged[-1].append(d)
                    continue
            merged.append([d])
        if not merged:
            merged = [[]]
        self.sizes = tuple(int(np.prod([shape[d] for d in group])) for group in merged)
        self.reduced = tuple(bool(group) and group[0] in reduced for group in merged)
        self.broadcast = [tuple(bool(group) and s[group[0]] == 1 for group in merged)
                          for s in operand_shapes]
        self.operand_shapes = [tuple(1 if b else n for b, n in zip(flags, self.sizes))
                               for flags in self.broadcast]
        total = int(np.prod(self.sizes))
        self.parallel = total >= PARALLEL_MIN and not self.reduced[0] and self.sizes[0] > 1
        self.source = generate_source(region, self)
        self.kernel = load_kernel(self.source)
        self.reduce_id = region.reduce.outputs[0].id if region.reduce is not None else None

    def __call__(self, arrays):
        region = self.region
        inputs = []
        for array, shape in zip(arrays, self.operand_shapes):
            if not array.flags.c_contiguous:
                array = np.ascontiguousarray(array)
            inputs.append(array.reshape(shape))
        outputs, results = [], []
        for m, value in enumerate(region.exposed):
            if m in self.inplace:  # written into the operand's own array
                results.append((inputs[self.inplace[m]], value.aval))
            elif value.id == self.reduce_id:
                shape = tuple(1 if r else n for r, n in zip(self.reduced, self.sizes))
                work = np.zeros(shape, np.float64)
                outputs.append(work)
                results.append((work, value.aval))
            else:
                if m in self.persistent:
                    kept = self._buffers.setdefault(threading.get_ident(), {})
                    fresh = kept.get(m)
                    if fresh is None:
                        fresh = kept[m] = np.empty(self.sizes, value.aval.dtype.np)
                else:
                    fresh = np.empty(self.sizes, value.aval.dtype.np)
                outputs.append(fresh)
                results.append((fresh, value.aval))
        kernel = self.kernel
        kernel(*self.sizes, *inputs, *outputs)
        if type(kernel) is _Counted:  # counted once; later calls go straight to Numba
            self.kernel = kernel.dispatcher
        return tuple(_finish(array, aval) for array, aval in results)


def _finish(array, aval):
    if array.dtype != aval.dtype.np:
        array = array.astype(aval.dtype.np)
    return array.reshape(aval.shape)


def _literal(value, dtype) -> str:
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return "True" if bool(value) else "False"
    if dtype.kind in "iu":
        return f"np.{dtype.name}({int(value)})"
    return f"np.{dtype.name}(float.fromhex('{float(value).hex()}'))"


def _erf32_source() -> str:
    """`erf32`: the float32 rational approximation of `ember.ops.special` (Eigen's and XLA's,
    a few ulp), inlined into kernels; libm's erf through Numba does not vectorize."""
    from ember.ops.special import _DENOMINATOR, _NUMERATOR

    def horner(name, coefficients):
        lines = [f"    {name} = np.float32({coefficients[0]!r})"]
        lines += [f"    {name} = {name} * s + np.float32({c!r})" for c in coefficients[1:]]
        return lines

    return "\n".join(["", "", "@njit(inline='always')", "def erf32(x):",
                      "    x = min(max(x, np.float32(-4.0)), np.float32(4.0))",
                      "    s = x * x"] + horner("p", _NUMERATOR) + horner("q", _DENOMINATOR)
                     + ["    return x * p / q"])


_ERF32 = _erf32_source()


def _fastmath_digest() -> str:
    """Named in kernels that import ember.ops._fastmath: a change there changes their text."""
    from ember.ops import _fastmath

    return hashlib.sha256(Path(_fastmath.__file__).read_bytes()).hexdigest()[:16]


_FASTMATH_IMPORT = f"from ember.ops._fastmath import exp32  # {_fastmath_digest()}"


def generate_source(region: Region, plan) -> str:
    """The Python text of the region's Numba kernel (deterministic: it is the cache key)."""
    rank = len(plan.sizes)
    index = [f"i{d}" for d in range(rank)]
    names: dict[int, str] = {}
    dtypes_of: dict[int, np.dtype] = {}
    lines, constants, helpers, imports = [], [], set(), set()
    for k, value in enumerate(region.operands):
        names[value.id] = f"x{k}"
        dtypes_of[value.id] = value.aval.dtype.np
        at = ", ".join("0" if b else i for b, i in zip(plan.broadcast[k], index))
        lines.append(f"x{k} = a{k}[{at}]")

    def constant(value, dtype) -> str:
        if isinstance(value, np.ndarray):
            dtype = value.dtype
            value = value.item()
        name = f"C{len(constants)}"
        constants.append(f"{name} = {_literal(value, dtype)}")
        return name

    body = region.nodes[:-1] if region.reduce is not None else region.nodes
    for j, node in enumerate(body):
        out = node.outputs[0]
        out_dtype = out.aval.dtype.np
        values = [operand for operand in node.inputs if hasattr(operand, "aval")]
        name = node.prim.name
        # a constant takes the dtype of the value it meets (where: of the result)
        data_dtype = out_dtype if name == "where" or not values else dtypes_of[values[0].id]
        operands = [names[operand.id] if hasattr(operand, "aval")
                    else constant(operand, data_dtype) for operand in node.inputs
                    if not isinstance(operand, np.dtype) and operand is not None]
        template = ELEMENTWISE[name]
        if name == "erf" and out_dtype == np.float32:
            template = "erf32({0})"  # ember's float32 erf: a polynomial that vectorizes
            helpers.add(_ERF32)
        elif name in ("exp", "sigmoid") and out_dtype == np.float32:
            template = template.replace("np.exp(", "exp32(")  # vectorizes; libm's does not
            imports.add(_FASTMATH_IMPORT)
        expression = template.format(*operands, one=constant(1.0, out_dtype)
                                     if name == "sigmoid" else "")
        if out_dtype.kind == "b":
            expression = f"bool({expression})"
        elif name == "astype" and dtypes_of.get(values[0].id, out_dtype).kind == "b":
            expression = f"np.{out_dtype.name}(1 if {expression} else 0)"
        else:
            expression = f"np.{out_dtype.name}({expression})"
        names[out.id] = f"t{j}"
        dtypes_of[out.id] = out_dtype
        lines.append(f"t{j} = {expression}")
    arguments = [f"n{d}" for d in range(rank)]
    arguments += [f"a{k}" for k in range(len(region.operands))]
    full_at = ", ".join(index)
    # The innermost loops that a closing sum reduces accumulate in a local: a store to the
    # same output element every iteration does not vectorize (7.7 ms against 0.45 ms for a
    # ReLU backward with its bias gradient over 64x64x576).
    inner = 0
    if region.reduce is not None:
        while inner < rank and plan.reduced[rank - 1 - inner]:
            inner += 1
    finish = []
    for m, value in enumerate(region.exposed):
        if m in plan.inplace:  # the same array read and written at one index: vectorizes
            lines.append(f"a{plan.inplace[m]}[{full_at}] = {names[value.id]}")
            continue
        arguments.append(f"o{m}")
        if region.reduce is not None and value is region.reduce.outputs[0]:
            source = names[region.reduce.inputs[0].id]
            at = ", ".join("0" if r else i for r, i in zip(plan.reduced, index))
            if inner:
                lines.append(f"acc += {source}")
                finish.append(f"o{m}[{at}] += acc")
            else:
                lines.append(f"o{m}[{at}] += {source}")
        else:
            lines.append(f"o{m}[{full_at}] = {names[value.id]}")
    text = ["import math", "", "import numpy as np", "from numba import njit, prange", ""]
    text[-1:-1] = sorted(imports)
    text += constants
    text += sorted(helpers)
    # contraction (a * b + c as one fused multiply-add) where the region evaluates exp, erf
    # and the like: their polynomials are mostly that, and such kernels are compute-bound.
    # Plain arithmetic (an optimizer's update) rounds as eager NumPy does, bit for bit.
    # reassociation lets LLVM split the accumulation into vector lanes (float64 partial sums)
    flags = (["'contract'"] if any(node.prim.name in _TRANSCENDENTAL for node in region.nodes)
             else []) + (["'reassoc'"] if inner else [])
    fastmath = ", fastmath={" + ", ".join(flags) + "}" if flags else ""
    text += ["", "", f"@njit(cache=True, error_model='numpy', parallel={plan.parallel}"
             f"{fastmath})", f"def kernel({', '.join(arguments)}):"]
    indent = "    "
    for d in range(rank):
        if inner and d == rank - inner:
            text.append(f"{indent}acc = 0.0")
            outer_indent = indent
        loop = "prange" if d == 0 and plan.parallel else "range"
        text.append(f"{indent}for i{d} in {loop}(n{d}):")
        indent += "    "
    text += [indent + line for line in lines]
    if inner:
        text += [outer_indent + line for line in finish]
    return "\n".join(text) + "\n"


# ---- the on-disk cache -----------------------------------------------------------------------
class _Stats:
    """Kernels compiled and loaded from Numba's disk cache in this process."""

    def __init__(self):
        self.compiled = 0
        self.loaded = 0
        self.sources = 0


COMPILE_STATS = _Stats()
_KERNELS: dict[str, object] = {}
_CACHE_LOCK = threading.Lock()


def cache_dir() -> Path:
    """Where generated kernel sources and Numba's compiled code live."""
    root = os.environ.get("EMBER_CACHE_DIR")
    path = Path(root) if root else Path.home() / ".cache" / "ember" / "kernels"
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_kernel(source: str):
    """The compiled `kernel` of `source`: one module per distinct text, shared by regions."""
    digest = hashlib.sha256(source.encode()).hexdigest()[:24]
    with _CACHE_LOCK:
        wrapper = _KERNELS.get(digest)
        if wrapper is None:
            wrapper = _KERNELS[digest] = _Counted(_import(digest, source))
            COMPILE_STATS.sources += 1
    return wrapper


def _import(digest: str, source: str):
    directory = cache_dir()
    path = directory / f"ember_kernel_{digest}.py"
    if not path.exists() or path.read_text() != source:
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(source)
        os.replace(temporary, path)  # atomic: a concurrent process never imports half a file
    name = f"ember_kernel_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.kernel


class _Counted:
    """Calls a Numba dispatcher; on its first call per signature, counts whether the machine
    code came from the disk cache or was compiled."""

    __slots__ = ("dispatcher", "signatures")

    def __init__(self, dispatcher):
        self.dispatcher = dispatcher
        self.signatures = 0

    def __call__(self, *args):
        dispatcher = self.dispatcher
        result = dispatcher(*args)
        count = len(dispatcher.signatures)
        if count != self.signatures:
            self.signatures = count
            _recount()
        return result


def _recount() -> None:
    compiled = loaded = 0
    for wrapper in _KERNELS.values():
        stats = wrapper.dispatcher.stats
        loaded += sum(stats.cache_hits.values())
        compiled += sum(stats.cache_misses.values())
    COMPILE_STATS.compiled, COMPILE_STATS.loaded = compiled, loaded

