#!/usr/bin/env python3
"""Real-server integration tests of mailwarden.

    MW_SRCDIR=/path/to/src MW_BUILDDIR=/path/to/build python3 tests/integration/run.py [-k TEXT] [-x] [--keep]

Runs every `test_*` function of every tests/integration/test_*.py, in file order, calling the
module's setup_module()/teardown_module() around its tests.  Prints one line per test,
`PASS module.test (1.2 s)` or `FAIL module.test: reason` (followed by indented details: the
failing assertion, the tail of mailwarden's output and of the server logs), and as its last
line `N passed, N failed`.  Observations tests make (lib.note) go to stderr as `note ...`.
Exit status 0 only if nothing failed.  Needs root (the mail servers drop privileges).

  -k TEXT   run only tests whose "module.test" name contains TEXT
  -x        stop at the first failure
  --keep    keep the scratch directory (it is always kept when a test fails)
"""

import argparse
import importlib
import os
import signal
import sys
import time
import traceback

sys.dont_write_bytecode = True          # no __pycache__ in the source tree
HERE = os.path.dirname(os.path.abspath(__file__))
TEST_TIMEOUT = 150                       # seconds; a test running longer fails (no test may hang)


class TestTimeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise TestTimeout("test ran longer than %d s" % TEST_TIMEOUT)


def _on_term(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def where_failed(tb):
    """file:line of the innermost frame in a test module (where the assertion was made)."""
    spot = None
    for frame in traceback.extract_tb(tb):
        if os.path.basename(frame.filename).startswith("test_"):
            spot = "%s:%d" % (os.path.basename(frame.filename), frame.lineno)
    return spot


def describe(exc):
    """(one-line reason, further lines) of an exception raised by a test."""
    import lib
    if isinstance(exc, (lib.TestFailure, AssertionError, TestTimeout)):
        text = str(exc) or type(exc).__name__
    else:
        text = "%s: %s" % (type(exc).__name__, exc)
    spot = where_failed(exc.__traceback__)
    lines = text.splitlines() or [""]
    head = lines[0] + (" (%s)" % spot if spot else "")
    rest = lines[1:]
    if not isinstance(exc, (AssertionError, TestTimeout)):
        rest += traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:]
    return head, rest


def indent(text):
    return "\n".join("    " + l for l in text.rstrip("\n").splitlines())


def discover(pattern):
    """[(module name, module, [(test name, function)])] in file and definition order."""
    found = []
    for fname in sorted(os.listdir(HERE)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        name = fname[:-3]
        module = importlib.import_module(name)
        tests = [(t, fn) for t, fn in vars(module).items()
                 if t.startswith("test_") and callable(fn)
                 and (not pattern or pattern in "%s.%s" % (name, t))]
        if tests:
            found.append((name, module, tests))
    return found


class Runner:
    def __init__(self, stop_first):
        self.stop_first = stop_first
        self.passed = 0
        self.failed = 0

    def report_fail(self, full, exc, seconds):
        import lib
        head, rest = describe(exc)
        print("FAIL %s: %s" % (full, head), flush=True)
        details = "\n".join(l.rstrip("\n") for l in rest)
        if details.strip():
            print(indent(details))
        print(indent("(failed after %.1f s; scratch dir %s)" % (seconds, lib.base_dir())))
        context = lib.failure_context()
        if context:
            print(indent(context))
        sys.stdout.flush()
        self.failed += 1

    def call(self, fn):
        signal.alarm(TEST_TIMEOUT)
        try:
            fn()
        finally:
            signal.alarm(0)

    def run_test(self, full, fn):
        import lib
        lib.begin_test(full)
        t0 = time.monotonic()
        try:
            self.call(fn)
        except KeyboardInterrupt:
            lib.cleanup_processes()
            raise
        except BaseException as e:          # noqa: B902 - a test may raise anything
            lib.cleanup_processes()
            self.report_fail(full, e, time.monotonic() - t0)
        else:
            leftovers = lib.cleanup_processes()
            if leftovers:
                self.report_fail(full, AssertionError("left running: %s" % ", ".join(leftovers)),
                                 time.monotonic() - t0)
            else:
                self.passed += 1
                print("PASS %s (%.1f s)" % (full, time.monotonic() - t0), flush=True)
        for n in lib.notes():
            print("note %s: %s" % (full, n), file=sys.stderr, flush=True)

    def run_module(self, name, module, tests):
        import lib
        lib.begin_test(name + ".setup_module")
        try:
            setup = getattr(module, "setup_module", None)
            if setup:
                t0 = time.monotonic()
                try:
                    self.call(setup)
                except KeyboardInterrupt:
                    raise
                except BaseException as e:   # noqa: B902
                    for t, _ in tests:
                        self.report_fail("%s.%s" % (name, t), e, time.monotonic() - t0)
                    return False
            for t, fn in tests:
                self.run_test("%s.%s" % (name, t), fn)
                if self.failed and self.stop_first:
                    return True
            return False
        finally:
            teardown = getattr(module, "teardown_module", None)
            if teardown:
                try:
                    signal.alarm(60)
                    teardown()
                except BaseException as e:   # noqa: B902
                    print("warning: %s.teardown_module: %s: %s" % (name, type(e).__name__, e),
                          file=sys.stderr, flush=True)
                finally:
                    signal.alarm(0)
            lib.cleanup_processes()
            lib.forget_module_logs()


def main():
    parser = argparse.ArgumentParser(description="mailwarden's real-server integration tests")
    parser.add_argument("-k", dest="pattern", default="", help="run tests whose name contains this")
    parser.add_argument("-x", dest="stop_first", action="store_true", help="stop at the first failure")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args()

    if os.geteuid() != 0:
        print("run.py needs root (the mail servers it starts drop privileges)", file=sys.stderr)
        print("0 passed, 1 failed")
        return 2
    for var in ("MW_SRCDIR", "MW_BUILDDIR"):
        if not os.environ.get(var):
            print("set %s (see the docstring of %s)" % (var, __file__), file=sys.stderr)
            print("0 passed, 1 failed")
            return 2
    for prog in ("mailwarden", "mw-peer"):
        if not os.access(os.path.join(os.environ["MW_BUILDDIR"], prog), os.X_OK):
            print("%s not found in MW_BUILDDIR=%s" % (prog, os.environ["MW_BUILDDIR"]), file=sys.stderr)
            print("0 passed, 1 failed")
            return 2

    sys.path.insert(0, HERE)
    import lib
    from mwharness import enable_subreaper
    from mwharness import proc as hproc
    enable_subreaper()                   # orphaned server processes are re-parented to us and reaped
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.signal(signal.SIGTERM, _on_term)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # also when started with SIGINT ignored

    runner = Runner(args.stop_first)
    t0 = time.monotonic()
    interrupted = False
    try:
        for name, module, tests in discover(args.pattern):
            if runner.run_module(name, module, tests):
                break
    except KeyboardInterrupt:
        interrupted = True
        print("interrupted: stopping every server started", file=sys.stderr, flush=True)
    finally:
        lib.cleanup_processes()
        for pid, cmd in lib.children():     # every server should have been stopped by now
            print("warning: still running after the tests, stopping: pid %d %s" % (pid, cmd),
                  file=sys.stderr, flush=True)
            hproc.stop_pid(pid, term_timeout=5.0)
        lib.reap_orphans()
    elapsed = time.monotonic() - t0
    if runner.failed or args.keep or interrupted:
        print("scratch directory kept: %s" % lib.base_dir(), file=sys.stderr)
    else:
        lib.remove_base_dir()
    print("suite time %.1f s" % elapsed, file=sys.stderr, flush=True)
    print("%d passed, %d failed" % (runner.passed, runner.failed + (1 if interrupted else 0)), flush=True)
    return 130 if interrupted else (1 if runner.failed else 0)


if __name__ == "__main__":
    sys.exit(main())
