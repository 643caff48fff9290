#!/usr/bin/env python3
"""Runs every benchmark (tests/bench/bench_*.py) in turn; `make bench` calls this.
Benchmarks print their own figures; they are not tests and assert nothing."""

import glob
import os
import subprocess
import sys

here = os.path.dirname(os.path.abspath(__file__))
for path in sorted(glob.glob(os.path.join(here, "bench_*.py"))):
    print("=" * 78)
    print(os.path.basename(path))
    print("=" * 78, flush=True)
    subprocess.run([sys.executable, path], check=False)
