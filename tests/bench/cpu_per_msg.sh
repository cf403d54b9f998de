#!/bin/bash
# cpu_per_msg.sh - CPU time per message of smtpd (per thread) or of the
# ceiling server, under Postfix's smtp-source with 20 senders of 4 KB.
#
#   tests/bench/cpu_per_msg.sh BUILD [yes, no or ceiling] [MESSAGES]
#
# yes / no: correio's smtpd with transcripts = yes / no; ceiling:
# tests/bench/ceiling. Prints the rate, and the server's CPU time (user +
# system, from /proc, in clock ticks) per message, in all and per thread.
# On a 2-CPU machine the load generator and the server share the CPUs, so
# the rate follows the CPU each spends per message; this figure moves less
# than the rate when other work runs beside. A benchmark, run by hand (as
# root, loopback only), never by ./test.sh; needs smtp-source (deps.sh --bench).
set -eu
BUILD=${1:?usage: cpu_per_msg.sh BUILD [MODE: yes, no or ceiling] [MESSAGES]}
MODE=${2:-yes}
N=${3:-10000}
BUILD=$(cd "$BUILD" && pwd)
. "$(dirname "$0")/lib.sh"
bench_begin cpu

if [ "$MODE" = ceiling ]; then
	"$BUILD/tests/bench/ceiling" -p "$PORT" -d "$D/ceiling.db" &
	PID=$!
else
	bench_store "$BUILD/mailcli/mailcli" "$D" "$MODE"
	"$BUILD/smtpd/smtpd" -c "$D/correio.conf" --listen "127.0.0.1:$PORT inbound" 2>"$D/smtpd.log" &
	PID=$!
fi
bench_wait_port "$PORT"
load() { smtp-source -s 20 -l 4096 -m "$1" -f load@example.org -t bob@lab.test "127.0.0.1:$PORT"; }
load 2000			# warm up: the store's first pages, the threads
declare -A before
for t in /proc/$PID/task/*; do before[${t##*/}]=$(awk '{print $14 + $15}' "$t/stat"); done
start=$(date +%s.%N)
load "$N"
end=$(date +%s.%N)
tick=$(getconf CLK_TCK)
total=0
threads=""
for t in /proc/$PID/task/*; do
	id=${t##*/}
	d=$(( $(awk '{print $14 + $15}' "$t/stat") - ${before[$id]:-0} ))
	total=$((total + d))
	[ "$d" -gt 0 ] && threads="$threads $id:$((d * 1000000 / tick / N))"
done
echo "$MODE: $(python3 -c "print(round($N / ($end - $start)))") msg/s; server CPU $((total * 1000000 / tick / N)) us/msg" \
    "(per thread:$threads); load average $(cut -d' ' -f1 /proc/loadavg)"
