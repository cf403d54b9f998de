#!/bin/bash
# cmd_rtt.sh - the round trip of each SMTP command, one session at a time,
# against correio's smtpd or the ceiling server, with the server and the
# client optionally pinned to CPUs: on a small VM a wake-up across CPUs
# costs several times one on the same CPU, and this shows how much.
#
#   tests/bench/cmd_rtt.sh BUILD [yes, no or ceiling] [SERVER_CPUS CLIENT_CPUS]
#   tests/bench/cmd_rtt.sh build yes 0 0     # both on CPU 0
#   tests/bench/cmd_rtt.sh build yes 0 1     # across
#
# Prints the median and mean of each step (greeting, EHLO, MAIL, RCPT, DATA,
# the 4 KB text and its dot, QUIT) and of the whole session, over SESSIONS
# sessions (2,000 by default) after 200 to warm up. A benchmark, run by hand
# (as root, loopback only), never by ./test.sh.
set -eu
BUILD=${1:?usage: cmd_rtt.sh BUILD [MODE: yes, no or ceiling] [SERVER_CPUS CLIENT_CPUS]}
MODE=${2:-yes}
SC=${3:-}
CC=${4:-}
BUILD=$(cd "$BUILD" && pwd)
. "$(dirname "$0")/lib.sh"
bench_begin rtt
PIN_S=(); [ -n "$SC" ] && PIN_S=(taskset -c "$SC")
PIN_C=(); [ -n "$CC" ] && PIN_C=(taskset -c "$CC")
if [ "$MODE" = ceiling ]; then
	"${PIN_S[@]}" "$BUILD/tests/bench/ceiling" -p "$PORT" -d "$D/ceiling.db" &
	PID=$!
else
	bench_store "$BUILD/mailcli/mailcli" "$D" "$MODE"
	"${PIN_S[@]}" "$BUILD/smtpd/smtpd" -c "$D/correio.conf" --listen "127.0.0.1:$PORT inbound" \
	    2>"$D/smtpd.log" &
	PID=$!
fi
bench_wait_port "$PORT"
cat > "$D/rtt.py" <<'EOP'
import socket, statistics, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
body = ("Subject: rtt\r\n\r\n" + ("x" * 76 + "\r\n") * 52).encode() + b".\r\n"
steps = {}
def step(f, s, data, name):
    t = time.perf_counter()
    if data:
        s.sendall(data)
    while True:			# to the last line of the reply
        line = f.readline()
        if len(line) < 4 or line[3:4] != b"-":
            break
    if not line.startswith((b"2", b"3")):
        sys.exit(f"{name}: {line!r}")
    steps.setdefault(name, []).append((time.perf_counter() - t) * 1e6)
for _ in range(n):
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    step(f, s, None, "1 greeting")
    step(f, s, b"EHLO rtt.lab.test\r\n", "2 EHLO")
    step(f, s, b"MAIL FROM:<load@example.org>\r\n", "3 MAIL")
    step(f, s, b"RCPT TO:<bob@lab.test>\r\n", "4 RCPT")
    step(f, s, b"DATA\r\n", "5 DATA")
    step(f, s, body, "6 text and dot")
    step(f, s, b"QUIT\r\n", "7 QUIT")
    s.close()
    steps.setdefault("8 session", []).append((time.perf_counter() - t0) * 1e6)
if n > 0:
    for k in sorted(steps):
        print(f"{k[2:]:16s} median {statistics.median(steps[k]):6.0f} us   mean {statistics.mean(steps[k]):6.0f} us")
EOP
"${PIN_C[@]}" python3 "$D/rtt.py" "$PORT" 200 >/dev/null
"${PIN_C[@]}" python3 "$D/rtt.py" "$PORT" "${SESSIONS:-2000}"
