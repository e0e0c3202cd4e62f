"""The BENCH.md workload table: `python bench/run.py [--quick] [--only mlp,cnn]
[--no-torch-compile] [--no-memory]`, `--ops` for the per-op microbench, `--threads` for the
thread-pool check (the same as `ember bench`; the code lives in ember/benchmarks/ so the
command is installed)."""
from ember.benchmarks.run import main

if __name__ == "__main__":
    main()
