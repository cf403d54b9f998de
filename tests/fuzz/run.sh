#!/bin/sh
# run.sh - run one libFuzzer target for a while on its seed corpus.
#   tests/fuzz/run.sh NAME [SECONDS] [BUILD_DIR]
# Builds build-fuzz (CC=clang, -DCORREIO_FUZZ=ON) when BUILD_DIR is not given
# and it does not exist. New inputs go to $FUZZ_WORK/NAME (default
# /tmp/correio-fuzz/NAME), crashes to $FUZZ_WORK/NAME-artifacts/; the seed corpus
# in tests/fuzz/corpus/NAME is only read. The last line of the log has the
# number of executions; a finding makes the script exit non-zero.
# tests/fuzz/NAME.dict, when present, is passed as a libFuzzer dictionary.
# FUZZ_EXTRA adds libFuzzer flags, e.g. FUZZ_EXTRA="-fork=1 -ignore_crashes=1"
# to keep going past a known finding, or "-jobs=4 -workers=4".
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
name=$1
secs=${2:-600}
bdir=${3:-$src/build-fuzz}
work=${FUZZ_WORK:-/tmp/correio-fuzz}
if [ ! -x "$bdir/tests/fuzz/fuzz_$name" ]; then
	CC=clang cmake -S "$src" -B "$bdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCORREIO_FUZZ=ON >/dev/null
	cmake --build "$bdir" --target "fuzz_$name"
fi
mkdir -p "$work/$name" "$work/$name-artifacts"
dict=
[ -f "$src/tests/fuzz/$name.dict" ] && dict="-dict=$src/tests/fuzz/$name.dict"
exec "$bdir/tests/fuzz/fuzz_$name" -max_total_time="$secs" -rss_limit_mb=2048 \
	-timeout=25 -print_final_stats=1 $dict ${FUZZ_EXTRA:-} -artifact_prefix="$work/$name-artifacts/" \
	"$work/$name" "$src/tests/fuzz/corpus/$name"
