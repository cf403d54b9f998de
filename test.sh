#!/bin/sh
# test.sh - install what is missing, build the normal and the sanitizer
# (AddressSanitizer + UndefinedBehaviorSanitizer) configurations, and run
# every test (cmocka unit tests and integration tests against the real
# daemons) in both. Exits non-zero if anything fails.
set -eu
cd "$(dirname "$0")"

./deps.sh --test
# Before anything runs: each client can do what the tests ask of it, and every
# command the tests and scripts run comes from a package deps.sh names.
tests/clients_check.sh
python3 tests/fresh_check.py

jobs=$(nproc 2>/dev/null || echo 2)

build() {	# build DIR CMAKE-ARGS...
	dir=$1; shift
	cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCORREIO_WERROR=ON "$@" >/dev/null
	cmake --build "$dir" -j "$jobs"
}

build build
build build-asan -DCORREIO_SANITIZE=ON

export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"

echo "== tests (normal build)"
ctest --test-dir build --output-on-failure -j "$jobs" --timeout 300
echo "== tests (AddressSanitizer + UndefinedBehaviorSanitizer build)"
ctest --test-dir build-asan --output-on-failure -j "$jobs" --timeout 600
