#!/usr/bin/env python3
"""Command line for a private mail server stack; see mwharness/stack.py.

    python3 tests/harness/stack.py up --dir DIR [--with postfix] [--with cyrus]
    python3 tests/harness/stack.py down --dir DIR
"""
import os
import sys

sys.dont_write_bytecode = True        # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from mwharness.stack import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
