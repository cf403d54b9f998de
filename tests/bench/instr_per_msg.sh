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
# (smtp-source -s 4), transcripts on. A benchmark, run by hand (as root,
# loopback only), never by ./test.sh; needs smtp-source and valgrind
# (deps.sh --bench).
set -eu
BUILD=${1:?usage: instr_per_msg.sh BUILD [OUT]}
OUT=${2:-/tmp/callgrind.smtpd}
BUILD=$(cd "$BUILD" && pwd)
D=$(mktemp -d /var/tmp/correio-instr.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$D"; }
trap cleanup EXIT
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$D/correio.conf" <<EOC
[store]
path = $D/correio.db
transcripts = yes
[smtpd]
hostname = correio.lab.test
[limits]
max_connections_per_addr = 2000
EOC
"$BUILD/mailcli/mailcli" admin -c "$D/correio.conf" domain add lab.test >/dev/null 2>&1
echo bench-password | "$BUILD/mailcli/mailcli" admin -c "$D/correio.conf" \
    user add bob --password-stdin >/dev/null 2>&1
valgrind --tool=callgrind --callgrind-out-file="$OUT" "$BUILD/smtpd/smtpd" -c "$D/correio.conf" \
    --listen "127.0.0.1:$PORT inbound" 2>"$D/smtpd.log" &
PID=$!
for _ in $(seq 150); do
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
	sleep 0.2
done
smtp-source -s 4 -l 4096 -m 1000 -f load@example.org -t bob@lab.test "127.0.0.1:$PORT"
sleep 1
kill "$PID"
wait "$PID" 2>/dev/null || true
PID=
callgrind_annotate "$OUT" 2>/dev/null | grep "PROGRAM TOTALS"
