"""Import cost: ``import modelprov`` against ``import requests`` in fresh interpreters.

Each measurement starts a new interpreter and times the import statement
alone (``time.perf_counter`` around it), so interpreter start-up is left out
for both sides. Prints the median of several runs and the ratio.
Target: modelprov <= 0.3x requests.

    python benchmarks/bench_import.py [--runs 15]
"""

import argparse
import statistics
import subprocess
import sys

CODE = "import time; t = time.perf_counter(); import {mod}; print(time.perf_counter() - t)"


def measure(module: str, runs: int) -> float:
    """Median seconds to import ``module`` in a fresh interpreter."""
    samples = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", CODE.format(mod=module)], capture_output=True, text=True, check=True
        ).stdout
        samples.append(float(out.strip()))
    return statistics.median(samples)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    ours = measure("modelprov", args.runs)
    theirs = measure("requests", args.runs)
    print(f"import modelprov : {ours * 1000:8.2f} ms (median of {args.runs})")
    print(f"import requests  : {theirs * 1000:8.2f} ms (median of {args.runs})")
    print(f"ratio            : {ours / theirs:8.3f}x  (target <= 0.3x)")
    try:
        import openai  # noqa: F401
    except ImportError:
        pass
    else:
        print(f"import openai    : {measure('openai', args.runs) * 1000:8.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
