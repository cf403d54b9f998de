#!/usr/bin/env bash
# compose_bench.sh - how fast `mailcli compose` encodes a large attachment,
# next to coreutils base64 on the same file, and its peak RSS.
#
#   tests/bench/compose_bench.sh [MAILCLI] [SIZE_MB] [RUNS]
#
# MAILCLI defaults to build-mime-rel/mailcli/mailcli (configure it with
# -DCMAKE_BUILD_TYPE=RelWithDebInfo); SIZE_MB to 200; RUNS to 3 (best kept).
# The file is random (incompressible) and lives in a temporary directory on
# the same file system as $TMPDIR; output goes to /dev/null so the disk is
# not measured. Peak RSS comes from GNU time (%M, KiB).
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
mailcli=${1:-$here/build-mime-rel/mailcli/mailcli}
size_mb=${2:-200}
runs=${3:-3}
[ -x "$mailcli" ] || { echo "no mailcli at $mailcli" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
file=$dir/attachment.bin
head -c $((size_mb * 1024 * 1024)) /dev/urandom > "$file"
cat "$file" > /dev/null		# warm the page cache for every contender

# best of N: prints "seconds peak_kib"
best() {
	local best_s="" best_m="" out s m
	for _ in $(seq "$runs"); do
		out=$( { /usr/bin/time -f "%e %M" "$@" > /dev/null; } 2>&1 | tail -1)
		s=${out% *}
		m=${out#* }
		if [ -z "$best_s" ] || awk "BEGIN{exit !($s < $best_s)}"; then
			best_s=$s
			best_m=$m
		fi
	done
	echo "$best_s $best_m"
}

report() {
	local name=$1 s=$2 m=$3
	awk -v n="$name" -v s="$s" -v m="$m" -v mb="$size_mb" \
	    'BEGIN { printf "%-44s %7.2f s %8.1f MB/s %9.1f MB peak RSS\n", n, s, (s > 0 ? mb / s : 0), m / 1024 }'
}

echo "attachment: $size_mb MiB of random bytes; best of $runs runs; output to /dev/null"
read -r s m < <(best base64 -w 76 "$file");                report "coreutils base64 -w 76" "$s" "$m"
read -r s m < <(best "$mailcli" compose --from a@lab.test --to b@lab.test --text bench \
    --attach "$file;type=application/octet-stream");         report "mailcli compose --attach (type given)" "$s" "$m"
read -r s m < <(best "$mailcli" compose --from a@lab.test --to b@lab.test --text bench \
    --attach "$file");                                       report "mailcli compose --attach (libmagic)" "$s" "$m"
read -r s m < <(best cat "$file");                         report "cat (reading the file alone)" "$s" "$m"
