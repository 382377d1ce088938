#!/usr/bin/python3
"""Runs the vecext Python client tests (stdlib unittest) and ends with one
line "N passed, N failed" (skipped tests count in neither). Exits 1 on failure.

    PGHOST=... PGPORT=... PGDATABASE=... /usr/bin/python3 python/tests/run.py [-v] [pattern...]

A pattern keeps the tests whose id contains it (e.g. "test_filters", "Async").
The database must exist; the tests create and drop their own tables.
"""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))  # python/, for "import vecext"
sys.path.insert(0, HERE)


class CountingResult(unittest.TextTestResult):
    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = 0

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def main(argv):
    verbose = "-v" in argv
    patterns = [a for a in argv if not a.startswith("-")]
    loader = unittest.TestLoader()
    discovered = loader.discover(HERE, pattern="test_*.py", top_level_dir=HERE)
    tests = list(iter_tests(discovered))
    broken = [t for t in tests if type(t).__name__ == "_FailedTest"]  # import errors
    if patterns:
        tests = [t for t in tests if any(p in t.id() for p in patterns)]
    suite = unittest.TestSuite(tests)
    runner = unittest.TextTestRunner(stream=sys.stdout, verbosity=2 if verbose else 1,
                                     resultclass=CountingResult)
    start = time.time()
    result = runner.run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    if broken and not patterns:
        print(f"({len(broken)} test modules failed to import; counted above)")
    print(f"python tests: {result.passed} passed, {failed} failed, {len(result.skipped)} skipped "
          f"in {time.time() - start:.1f} s")
    print(f"{result.passed} passed, {failed} failed")
    return 0 if failed == 0 and result.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
