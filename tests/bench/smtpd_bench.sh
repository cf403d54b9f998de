#!/usr/bin/env bash
# smtpd_bench.sh - the numbers of docs/PERFORMANCE.md for smtpd, in one run:
# durable messages/s at 1, 20 and 100 connections with 4 KB and 1 MB
# messages, peak RSS with 10,000 idle connections, and the disk's fsync rate.
#
#   tests/bench/smtpd_bench.sh [BUILD_DIR] [WORK_DIR]
#
# BUILD_DIR (default build) holds smtpd/smtpd, mailcli/mailcli and
# tests/bench/smtp_load; WORK_DIR (default a new directory under /var/tmp,
# on the disk being measured) receives the store. Loopback only; never part
# of the test command. Run it as root for the 10,000-connection step (or
# with a hard RLIMIT_NOFILE above 10,100).
set -euo pipefail

BUILD=${1:-build}
WORK=${2:-$(mktemp -d /var/tmp/smtpd-bench.XXXXXX)}
PORT=${SMTPD_BENCH_PORT:-52600}
LOAD="$BUILD/tests/bench/smtp_load"
SMTPD="$BUILD/smtpd/smtpd"
MAILCLI="$BUILD/mailcli/mailcli"

mkdir -p "$WORK"
. "$(dirname "$0")/lib.sh"
bench_store "$MAILCLI" "$WORK" no

"$SMTPD" -c "$WORK/correio.conf" --listen "127.0.0.1:$PORT inbound" 2>"$WORK/smtpd.log" &
PID=$!
trap 'kill $PID 2>/dev/null || true; wait $PID 2>/dev/null || true' EXIT
bench_wait_port "$PORT"

# Idle connections first, on a fresh process (freed message buffers would
# otherwise be reused by the sessions and hide their cost).
rss() { awk '/^VmRSS/ {print $2}' "/proc/$PID/status"; }
BEFORE=$(rss)
"$LOAD" --idle 10000 --hold 6 "127.0.0.1:$PORT" &
LPID=$!
sleep 4
DURING=$(rss)
wait $LPID
echo "idle: rss_before_kB=$BEFORE rss_with_10000_idle_kB=$DURING per_connection_bytes=$(( (DURING - BEFORE) * 1024 / 10000 ))"
echo "# machine: $(nproc) CPUs, $(uname -r), store on $(df -P "$WORK" | awk 'NR==2 {print $1}')"
"$LOAD" --fsync "$WORK" -m 1000
for size in 4096 1048576; do
	for conns in 1 20 100; do
		if [ "$size" = 4096 ]; then msgs=$((conns == 1 ? 500 : 5000)); else msgs=$((conns == 1 ? 50 : 300)); fi
		"$LOAD" -c "$conns" -m "$msgs" -s "$size" "127.0.0.1:$PORT"
	done
done

echo "peak: $(awk '/^VmHWM/ {print $2 " kB"}' "/proc/$PID/status")"
