# Shared helpers for the end-to-end shell tests. Source it; every test runs
# in its own temporary folder, removed on exit whatever happens.
set -euo pipefail

WORK=$(mktemp -d "${TMPDIR:-/tmp}/lsifs-e2e.XXXXXX")
CLEANUPS=()
cleanup() {
  local rc=$?
  for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do eval "${CLEANUPS[i]}" || true; done
  rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
on_exit() { CLEANUPS+=("$1"); }

FAILS=0
SKIPS=0
fail() { echo "FAIL: $*" >&2; FAILS=$((FAILS + 1)); }
pass() { echo "ok: $*"; }
# A check that could not run here: said as such, never counted as passed.
skip() { echo "SKIPPED: $*"; SKIPS=$((SKIPS + 1)); }
check() {  # check DESCRIPTION COMMAND... : the command must succeed
  local what=$1; shift
  if "$@"; then pass "$what"; else fail "$what"; fi
}
finish() {
  if [ "$FAILS" -ne 0 ]; then echo "$FAILS check(s) failed" >&2; exit 1; fi
  if [ "$SKIPS" -ne 0 ]; then
    echo "the other checks passed; $SKIPS SKIPPED (see above): not tested here"
  else
    echo "all checks passed"
  fi
}

# A real ext4 image of a real directory tree: make_ext4 IMAGE SIZE TREE
make_ext4() {
  truncate -s "$2" "$1"
  mke2fs -q -t ext4 -d "$3" "$1"
}

# Runs a command expected to fail: expect_fail CODE STDERR_PATTERN CMD...
# Checks the exit code and that stderr is one line matching the pattern.
expect_fail() {
  local code=$1 pattern=$2; shift 2
  local err rc=0
  err=$("$@" 2>&1 >/dev/null) || rc=$?
  if [ "$rc" -ne "$code" ]; then echo "  exit $rc, wanted $code: $err" >&2; return 1; fi
  if [ "$(printf '%s\n' "$err" | wc -l)" -ne 1 ]; then echo "  not one line: $err" >&2; return 1; fi
  if ! printf '%s' "$err" | grep -q -- "$pattern"; then echo "  no '$pattern' in: $err" >&2; return 1; fi
}

tree_state() { (cd "$1" && find . -printf '%p %s %T@ %m\n' | sort); }
