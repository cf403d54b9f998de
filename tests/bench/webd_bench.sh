#!/usr/bin/env bash
# webd_bench.sh - how long webd takes to serve /mailbox for a mailbox of
# N messages (default 1000) on loopback: the page lists date, from, subject
# and size of every message, so each request reads the head of each one.
#
#   tests/bench/webd_bench.sh [BUILD_DIR] [MESSAGES] [REQUESTS]
#
# BUILD_DIR defaults to build (the RelWithDebInfo build test.sh makes; never
# measure a sanitizer build). The messages are delivered over SMTP in one
# session; bob logs in once; then REQUESTS (default 50) sequential GETs of
# /mailbox with curl, and the median, 90th percentile and worst time_total
# are printed. A benchmark, not a test: it fails only when something breaks.
set -euo pipefail

here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$here/build}
n=${2:-1000}
requests=${3:-50}
for b in smtpd/smtpd webd/webd mailcli/mailcli; do
	[ -x "$build/$b" ] || { echo "no $build/$b" >&2; exit 2; }
done

dir=$(mktemp -d)
pids=()
cleanup() { [ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
smtp=$(port)
web=$(port)
cat > "$dir/c.conf" <<CONF
[store]
path = $dir/s.db
[smtpd]
hostname = mx.lab.test
listen = 127.0.0.1:$smtp inbound
[webd]
listen = 127.0.0.1:$web
CONF
"$build/mailcli/mailcli" admin -c "$dir/c.conf" domain add lab.test >/dev/null 2>&1
echo bench-pw | "$build/mailcli/mailcli" admin -c "$dir/c.conf" user add bob --password-stdin >/dev/null
"$build/smtpd/smtpd" -c "$dir/c.conf" 2>"$dir/smtpd.log" & pids+=($!)
"$build/webd/webd" -c "$dir/c.conf" 2>"$dir/webd.log" & pids+=($!)
python3 - "$smtp" "$n" <<'PY'
import smtplib, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
for _ in range(100):
    try:
        s = smtplib.SMTP("127.0.0.1", port, timeout=30)
        break
    except OSError:
        time.sleep(0.05)
body = "\r\n".join("Line %d of a typical lab message." % i for i in range(40))
for i in range(n):
    s.sendmail("ana@lab.test", ["bob@lab.test"],
               f"From: Ana <ana@lab.test>\r\nTo: bob@lab.test\r\nSubject: message {i}\r\n\r\n{body}\r\n")
s.quit()
PY
jar=$dir/cookies
csrf=$(curl -s -c "$jar" "http://127.0.0.1:$web/login" | grep -o 'value="[0-9a-f]\{64\}"' | grep -o '[0-9a-f]\{64\}')
curl -s -b "$jar" -c "$jar" -o /dev/null -d "csrf=$csrf&user=bob&password=bench-pw" "http://127.0.0.1:$web/login"
rows=$(curl -s -b "$jar" "http://127.0.0.1:$web/mailbox" | grep -c '<tr><td class="num">')
[ "$rows" -eq "$n" ] || { echo "the page lists $rows messages, not $n" >&2; exit 1; }
for _ in $(seq "$requests"); do
	curl -s -b "$jar" -o /dev/null -w '%{time_total}\n' "http://127.0.0.1:$web/mailbox"
done | sort -n | awk -v n="$n" -v size="$(curl -s -b "$jar" "http://127.0.0.1:$web/mailbox" | wc -c)" '
	{ t[NR] = $1 }
	END { printf "webd /mailbox, %d messages (%d octets of HTML), %d requests: median %.1f ms, p90 %.1f ms, max %.1f ms\n",
	    n, size, NR, t[int((NR + 1) / 2)] * 1000, t[int(NR * 0.9)] * 1000, t[NR] * 1000 }'
