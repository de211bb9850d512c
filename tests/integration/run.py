#!/usr/bin/env python3
"""Run portier's integration tests, each in its own process with a timeout.

    tests/integration/run.py                 # all tests
    tests/integration/run.py -k connect -k ssrf
    tests/integration/run.py --list
    PORTIER_BIN=/path/to/portier tests/integration/run.py

Prints one line per test and ends with `N passed, M failed` (`, K skipped` when some were skipped).
Exit code 0 only if no test failed. A test that runs longer than --timeout seconds is stopped
(SIGTERM, then SIGKILL after 5 s) and counts as failed; portier processes it started die with it
(PR_SET_PDEATHSIG).
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RESULT_TAG = "@@PORTIER-TEST-RESULT "


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def discover():
    loader = unittest.TestLoader()
    suite = loader.discover(start_dir=HERE, pattern="test_*.py", top_level_dir=REPO)
    ids = []
    for t in iter_tests(suite):
        # import failures show up as _FailedTest; keep them so they are reported
        ids.append(t.id())
    return ids


# ---------------------------------------------------------------------------------------------
# child: run one test, print a result line

class _Timeout(KeyboardInterrupt):
    """Raised by SIGTERM in the child so context managers and cleanups still run."""


def child(test_id):
    def on_term(signum, frame):
        raise _Timeout("stopped by the runner (timeout)")
    signal.signal(signal.SIGTERM, on_term)
    suite = unittest.defaultTestLoader.loadTestsFromName(test_id)
    result = unittest.TestResult()
    status, detail = "fail", ""
    try:
        suite.run(result)
        if result.errors or result.failures:
            status = "fail"
            detail = "\n".join(tb for _, tb in result.errors + result.failures)
        elif result.skipped:
            status = "skip"
            detail = "; ".join(reason for _, reason in result.skipped)
        elif result.testsRun == 0:
            status, detail = "fail", "no test ran for %s" % test_id
        else:
            status = "pass"
            if result.expectedFailures or result.unexpectedSuccesses:
                status = "fail" if result.unexpectedSuccesses else "pass"
    except KeyboardInterrupt as e:
        status, detail = "fail", "interrupted: %s" % e
    sys.stdout.flush()
    sys.stdout.write("\n" + RESULT_TAG + json.dumps({"status": status, "detail": detail}) + "\n")
    sys.stdout.flush()
    return 0


# ---------------------------------------------------------------------------------------------
# parent

def run_one(test_id, timeout):
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    cmd = [sys.executable, os.path.abspath(__file__), "--child", test_id]
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    timed_out = False
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate(timeout=10)
    elapsed = time.monotonic() - t0
    text = out.decode("utf-8", "replace")
    status, detail = "fail", ""
    idx = text.rfind(RESULT_TAG)
    if idx >= 0:
        try:
            res = json.loads(text[idx + len(RESULT_TAG):].splitlines()[0])
            status, detail = res["status"], res["detail"]
        except (ValueError, KeyError, IndexError):
            detail = "unreadable result line"
        output = text[:idx].strip()
    else:
        output = text.strip()
        detail = "test process exited with %s and no result" % proc.returncode
    if timed_out:
        status = "fail"
        detail = "TIMEOUT after %gs\n%s" % (timeout, detail)
    return status, detail, output, elapsed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-k", action="append", default=[], metavar="SUBSTRING",
                    help="run only tests whose id contains SUBSTRING (repeatable, any matches)")
    ap.add_argument("--timeout", type=float, default=float(os.environ.get("PORTIER_TEST_TIMEOUT",
                                                                          "120")),
                    help="per-test timeout in seconds (default 120)")
    ap.add_argument("--list", action="store_true", help="list the selected tests and exit")
    ap.add_argument("-v", "--verbose", action="store_true", help="show output of passing tests")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if REPO not in sys.path:
        sys.path.insert(0, REPO)
    if args.child:
        return child(args.child)

    ids = discover()
    if args.k:
        ids = [i for i in ids if any(k in i for k in args.k)]
    short = lambda i: i[len("tests.integration."):] if i.startswith("tests.integration.") else i
    if args.list:
        for i in ids:
            print(short(i))
        return 0

    binary = os.environ.get("PORTIER_BIN") or os.path.join(REPO, "build", "portier")
    print("portier integration tests: %d selected, binary %s" % (len(ids), binary), flush=True)
    passed = failed = skipped = 0
    failures = []
    t_all = time.monotonic()
    for test_id in ids:
        status, detail, output, elapsed = run_one(test_id, args.timeout)
        label = {"pass": "PASS", "fail": "FAIL", "skip": "SKIP"}[status]
        line = "%s %s (%.2fs)" % (label, short(test_id), elapsed)
        if status == "skip":
            line += " - " + detail
        print(line, flush=True)
        if status == "pass":
            passed += 1
            if args.verbose and output:
                print("    " + output.replace("\n", "\n    "))
        elif status == "skip":
            skipped += 1
        else:
            failed += 1
            failures.append(short(test_id))
            block = (output + "\n" if output else "") + detail
            print("    " + block.strip().replace("\n", "\n    "), flush=True)
    print("", flush=True)
    if failures:
        print("failed tests:")
        for f in failures:
            print("  " + f)
    print("total time %.1fs" % (time.monotonic() - t_all))
    summary = "%d passed, %d failed" % (passed, failed)
    if skipped:
        summary += ", %d skipped" % skipped
    print(summary, flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
