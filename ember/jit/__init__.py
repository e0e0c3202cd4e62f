"""Graph mode: tracing compiler (`jit`) and symbolic API (`symbol`, `compile`).

`ember.jit` the function shadows this package as an attribute of `ember`; import the
modules by their full names (`from ember.jit.ir import Graph`).
"""
from ember.jit.api import JitFunction, RetraceWarning, jit
from ember.jit.ir import Graph, IRError
from ember.jit.symbolic import compile, symbol
from ember.jit.trace import TraceError

__all__ = ["Graph", "IRError", "JitFunction", "RetraceWarning", "TraceError", "compile",
           "jit", "symbol"]
