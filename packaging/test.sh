#!/usr/bin/env bash
# Fresh Debian machine -> every test: install what is missing, build, run the unit tests (doctest)
# and the integration tests (real binary, real curl and sockets, origins on loopback).
# Ends with one plain line: "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
packaging/deps.sh --test || { echo "0 passed, 1 failed"; exit 1; }
packaging/build.sh >/dev/null || { echo "build failed"; echo "0 passed, 1 failed"; exit 1; }
# The Debian package (its own hardened release build in build-deb/) is built here, as a build step,
# so that tests/integration/test_package.py only looks inside it instead of compiling under a test timeout.
packaging/deb.sh --no-lintian >/dev/null || { echo "packaging/deb.sh failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0

# Config check of everything shipped in rules/.
for f in rules/portier.json rules/examples/*.json; do
  [[ -f "$f" ]] || continue
  if build/portier --check "$f" >/dev/null; then passed=$((passed + 1)); else echo "FAIL: portier --check $f"; failed=$((failed + 1)); fi
done

unit_out=$(PORTIER_SOURCE_ROOT="$PWD" build/unit_tests --no-colors=true 2>&1)
unit_rc=$?
echo "$unit_out" | tail -n 4
summary=$(echo "$unit_out" | grep -E '^\[doctest\] test cases:' | tail -n 1)
u_pass=$(echo "$summary" | sed -E 's/.*\| *([0-9]+) passed.*/\1/')
u_fail=$(echo "$summary" | sed -E 's/.*\| *([0-9]+) failed.*/\1/')
if [[ -z "$summary" || ! "$u_pass" =~ ^[0-9]+$ ]]; then
  echo "unit tests did not report (exit $unit_rc)"
  u_pass=0; u_fail=1
elif [[ $unit_rc -ne 0 && $u_fail -eq 0 ]]; then
  u_fail=1
fi
passed=$((passed + u_pass)); failed=$((failed + u_fail))

integ_out=$(mktemp)
PORTIER_BIN="$PWD/build/portier" python3 tests/integration/run.py "$@" 2>&1 | tee "$integ_out"
line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$integ_out" | tail -n 1)
rm -f "$integ_out"
if [[ -z "$line" ]]; then
  echo "integration tests did not report"
  failed=$((failed + 1))
else
  i_pass=$(echo "$line" | sed -E 's/^([0-9]+) passed.*/\1/')
  i_fail=$(echo "$line" | sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/')
  passed=$((passed + i_pass)); failed=$((failed + i_fail))
fi

echo "${passed} passed, ${failed} failed"
[[ $failed -eq 0 ]]
