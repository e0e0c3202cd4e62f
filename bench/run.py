"""The BENCH.md workload table: `python bench/run.py [--quick] [--only mlp,cnn] [--memory]`
(the same as `ember bench`; the code lives in ember/benchmarks/ so the command is installed)."""
from ember.benchmarks.run import main

if __name__ == "__main__":
    main()
