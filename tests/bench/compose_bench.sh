#!/usr/bin/env bash
# compose_bench.sh - how fast `mailcli compose` encodes a large attachment,
# next to coreutils base64 on the same file, and its peak RSS.
#
#   tests/bench/compose_bench.sh [MAILCLI] [SIZE_MB] [RUNS]
#
# MAILCLI defaults to build/mailcli/mailcli (the RelWithDebInfo build test.sh
# makes; never measure a Debug or sanitizer build); SIZE_MB to 200; RUNS to 3
# (best kept).
# The file is random (incompressible) and lives in a temporary directory on
# the same file system as $TMPDIR; output goes to /dev/null so the disk is
# not measured. Peak RSS comes from GNU time (%M, KiB). Then the way back:
# the composed message (about 270 MB) through mailcli extract, next to
# munpack, bytes compared with the original.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
mailcli=${1:-$here/build/mailcli/mailcli}
size_mb=${2:-200}
runs=${3:-3}
[ -x "$mailcli" ] || { echo "no mailcli at $mailcli" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "needs GNU time (/usr/bin/time)" >&2; exit 2; }

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
file=$dir/attachment.bin
head -c $((size_mb * 1024 * 1024)) /dev/urandom > "$file"
cat "$file" > /dev/null		# warm the page cache for every contender

# best of N: prints "elapsed_s peak_kib cpu_s" (cpu = user + system; on a
# shared machine CPU time is the steadier figure)
best() {
	local best_s="" best_m="" best_c="" out s m u y c
	for _ in $(seq "$runs"); do
		out=$( { /usr/bin/time -f "%e %M %U %S" "$@" > /dev/null; } 2>&1 | tail -1)
		read -r s m u y <<< "$out"
		c=$(awk -v u="$u" -v y="$y" 'BEGIN { print u + y }')
		if [ -z "$best_s" ] || awk "BEGIN{exit !($s < $best_s)}"; then
			best_s=$s
			best_m=$m
		fi
		if [ -z "$best_c" ] || awk "BEGIN{exit !($c < $best_c)}"; then
			best_c=$c
		fi
	done
	echo "$best_s $best_m $best_c"
}

report() {
	local name=$1 s=$2 m=$3 c=$4
	awk -v n="$name" -v s="$s" -v m="$m" -v c="$c" -v mb="$size_mb" \
	    'BEGIN { printf "%-40s %6.2f s %7.1f MB/s  cpu %6.2f s %7.1f MB/s  %7.1f MB peak RSS\n", n, s, (s > 0 ? mb / s : 0), c, (c > 0 ? mb / c : 0), m / 1024 }'
}

echo "attachment: $size_mb MiB of random bytes; best of $runs runs; output to /dev/null"
read -r s m c < <(best base64 -w 76 "$file");              report "coreutils base64 -w 76" "$s" "$m" "$c"
read -r s m c < <(best "$mailcli" compose --from a@lab.test --to b@lab.test --text bench \
    --attach "$file;type=application/octet-stream");         report "mailcli compose (type given)" "$s" "$m" "$c"
read -r s m c < <(best "$mailcli" compose --from a@lab.test --to b@lab.test --text bench \
    --attach "$file");                                       report "mailcli compose (libmagic)" "$s" "$m" "$c"
read -r s m c < <(best cat "$file");                       report "cat (reading the file alone)" "$s" "$m" "$c"

msg=$dir/message.eml
"$mailcli" compose --from a@lab.test --to b@lab.test --text bench \
    --attach "$file;type=application/octet-stream;name=back.bin" -o "$msg"
mkdir "$dir/x" "$dir/m"
read -r s m c < <(best "$mailcli" extract "$msg" --dir "$dir/x" --force); report "mailcli extract" "$s" "$m" "$c"
read -r s m c < <(best munpack -q -f -C "$dir/m" "$msg");  report "munpack -f" "$s" "$m" "$c"
cmp "$file" "$dir/x/back.bin" && echo "extract: bytes identical to the original"
echo "(mailcli extract maps the message: its RSS counts the file's pages it has read)"
