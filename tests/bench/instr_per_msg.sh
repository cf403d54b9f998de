#!/bin/bash
# instr_per_msg.sh - user-space instructions smtpd executes for 1,000 messages
# of 4 KB, counted by valgrind's callgrind: a figure that does not move with
# the machine's load, for comparing two builds where rates and CPU times
# (cpu_per_msg.sh) swing by more than the change.
#
#   tests/bench/instr_per_msg.sh BUILD [OUT]
#
# Prints the total (start-up included: about 150M of it, the dummy password
# hash and the store handles' prepared statements) and leaves the profile in
# OUT (default /tmp/callgrind.smtpd) for callgrind_annotate. Four senders
# (Postfix's smtp-source), transcripts on. A benchmark, run by hand (as root,
# loopback only), never by ./test.sh; needs smtp-source and valgrind
# (deps.sh --bench).
set -eu
BUILD=${1:?usage: instr_per_msg.sh BUILD [OUT]}
OUT=${2:-/tmp/callgrind.smtpd}
BUILD=$(cd "$BUILD" && pwd)
. "$(dirname "$0")/lib.sh"
bench_begin instr
bench_store "$BUILD/mailcli/mailcli" "$D" yes
valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BUILD/smtpd/smtpd" -c "$D/correio.conf" \
    --listen "127.0.0.1:$PORT inbound" 2>"$D/smtpd.log" &
PID=$!
bench_wait_port "$PORT" || bench_wait_port "$PORT"	# slow to start under valgrind
smtp-source -s 4 -l 4096 -m 1000 -f load@example.org -t bob@lab.test "127.0.0.1:$PORT"
sleep 1
kill "$PID"
wait "$PID" 2>/dev/null || true
PID=
callgrind_annotate "$OUT" 2>/dev/null | grep "PROGRAM TOTALS"
