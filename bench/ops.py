"""The per-op microbench: `python bench/ops.py [--quick] [--only conv2d,matmul]` (the same as
`python bench/run.py --ops`; the code lives in ember/benchmarks/ops.py)."""
from ember.benchmarks.ops import main

if __name__ == "__main__":
    main()
