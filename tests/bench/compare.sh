#!/usr/bin/env bash
# compare.sh - correio next to Postfix, Dovecot and the ceiling server, on
# the same machine, with the same loads, in one run: the table of
# docs/PERFORMANCE.md ("Side by side").
#
#   tests/bench/compare.sh [BUILD_DIR]        # as root; ROUNDS=2 by default
#
# Starts, under one temporary directory on /var/tmp (the disk measured):
# a private Postfix instance (its own config_directory and queue, 127.0.0.1
# only), a private Dovecot (its own base_dir, POP3 on 127.0.0.1 only, maildir,
# the same yescrypt hashes as correio in a passwd-file with {CRYPT}, so
# logins cost the same), tests/bench/ceiling (the minimal group-commit
# server), and correio's smtpd (transcripts = yes, and a second one with
# transcripts = no) and pop3d. Nothing under /etc is read or written by them;
# everything is stopped and removed at the end (KEEP=1 keeps the directory).
# SMTP load: Postfix's smtp-source. POP3 load: tests/bench/pop3_load. Each
# row runs ROUNDS times; the table gives the range over the rounds and the
# ratio range (each round's ratio). The rows are short (5,000 messages take
# under a second) and swung by where the scheduler puts the programs (a
# wake-up across the two CPUs costs 40-50 us on this kind of VM, against
# 15 us on one): in each round every row but the first sessions runs REPEAT
# times (3 by default), correio and its reference taking turns, and the
# round's figures are the medians. The table is printed and written into
# docs/PERFORMANCE.md between its "compare.sh" markers (NO_DOC=1: not).
# Rows pg4k and pg4k2: correio's smtpd on a PostgreSQL store (a private
# server from tests/pg_server.py, fsync on, in the same directory), one
# smtpd with 20 senders, then two smtpds on the one database with 10 each.
# ONLY="ROW ..." gives those rows (e.g. ONLY=smtp1m, ONLY="drain1 stream1";
# names in LABEL below): SMTP rows run alone without the POP3 set-up, a POP3
# row runs with the other POP3 rows; either way the document is not written.
# Needs: ./deps.sh --bench (postfix, dovecot-pop3d). Never part of the test
# command; loopback only; every wait is bounded.
set -euo pipefail

BUILD=${1:-build}
ROUNDS=${ROUNDS:-2}
REPEAT=${REPEAT:-3}
ONLY=${ONLY:-}
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }	# want ROW: is ROW run?
POP=1
if [ -n "$ONLY" ]; then		# only SMTP rows: no POP3 set-up
	POP=0
	for k in $ONLY; do case "$k" in smtp*|ceil*|pg*) ;; *) POP=1 ;; esac; done
fi
PGROWS=0; { want pg4k || want pg4k2; } && PGROWS=1
[ -n "$ONLY" ] && NO_DOC=1
SRC=$(cd "$(dirname "$0")/../.." && pwd)
. "$SRC/tests/bench/lib.sh"
SMTPD="$BUILD/smtpd/smtpd"
POP3D="$BUILD/pop3d/pop3d"
MAILCLI="$BUILD/mailcli/mailcli"
CEILING="$BUILD/tests/bench/ceiling"
PLOAD="$BUILD/tests/bench/pop3_load"
for b in "$SMTPD" "$POP3D" "$MAILCLI" "$CEILING" "$PLOAD"; do
	[ -x "$b" ] || { echo "missing $b: build first" >&2; exit 2; }
done
for c in postfix smtp-source dovecot doveadm; do
	command -v "$c" >/dev/null || { echo "$c is not installed: ./deps.sh --bench" >&2; exit 2; }
done
[ "$(id -u)" = 0 ] || { echo "run as root (Postfix's master and Dovecot need it)" >&2; exit 2; }

T=$(mktemp -d /var/tmp/correio-compare.XXXXXX)
chmod 755 "$T"
PIDS=()
PF="$T/postfix"
DV="$T/dovecot"
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
	[ -f "$T/pg/url" ] && python3 "$SRC/tests/pg_server.py" stop "$T/pg" >/dev/null 2>&1 || true
	[ -f "$DV/dovecot.conf" ] && doveadm -c "$DV/dovecot.conf" stop >/dev/null 2>&1 || true
	[ -n "${KEEP:-}" ] && echo "# kept $T" || rm -rf "$T"
}
trap cleanup EXIT

# ---- Postfix ------------------------------------------------------------------
PF_PORT=$(bench_free_port)
mkdir -p "$PF/etc" "$PF/queue" "$PF/data" "$PF/mail"
chown postfix "$PF/data"
chown nobody:nogroup "$PF/mail"
sed -e "s/^smtp \{1,\}inet .*/127.0.0.1:$PF_PORT inet n - n - - smtpd/" \
    /usr/share/postfix/master.cf.dist > "$PF/etc/master.cf"
grep -q "^postlog" "$PF/etc/master.cf" ||
	echo "postlog unix-dgram n - n - 1 postlogd" >> "$PF/etc/master.cf"
cat > "$PF/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.lab.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
virtual_mailbox_domains = lab.test
virtual_mailbox_base = $PF/mail
virtual_mailbox_maps = static:bob/
virtual_uid_maps = static:$(id -u nobody)
virtual_gid_maps = static:$(getent group nogroup | cut -d: -f3)
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 300
maillog_file = $PF/maillog
EOF
postfix -c "$PF/etc" check
postfix -c "$PF/etc" start >/dev/null 2>&1

# ---- correio ------------------------------------------------------------------
conf() {	# conf DIR TRANSCRIPTS [URL]: a SQLite store in DIR, or the database at URL
	bench_store "$MAILCLI" "$@"
}
start_smtpd() {	# start_smtpd DIR PORT -> pid in SPID
	"$SMTPD" -c "$1/correio.conf" --listen "127.0.0.1:$2 inbound" 2>>"$1/smtpd.log" &
	SPID=$!
	PIDS+=("$SPID")
	bench_wait_port "$2"
}
C_PORT=$(bench_free_port); CN_PORT=$(bench_free_port); CB_PORT=$(bench_free_port)
CEIL_PORT=$(bench_free_port); P_PORT=$(bench_free_port); D_PORT=$(bench_free_port)
conf "$T/c" yes; conf "$T/cn" no; conf "$T/cb" yes
start_smtpd "$T/c" "$C_PORT"
if [ "$PGROWS" = 1 ]; then
	python3 "$SRC/tests/pg_server.py" start "$T/pg" >/dev/null
	PGURL=$(cat "$T/pg/url")
	PG_PORT=$(bench_free_port); PG2_PORT=$(bench_free_port)
	conf "$T/cp" yes "$PGURL"
	mkdir -p "$T/cp2"; cp "$T/cp/correio.conf" "$T/cp2/"; sed -i "s|spool = .*|spool = $T/cp2|" "$T/cp2/correio.conf"
	start_smtpd "$T/cp" "$PG_PORT"
	start_smtpd "$T/cp2" "$PG2_PORT"
fi
start_smtpd "$T/cn" "$CN_PORT"
"$CEILING" -p "$CEIL_PORT" -d "$T/ceiling.db" &
PIDS+=($!)
bench_wait_port "$CEIL_PORT"
bench_wait_port "$PF_PORT"

if [ "$POP" = 1 ]; then
# ---- mailboxes: correio store and Dovecot maildirs, the same messages -------
POPSTORE="$T/pop/correio.db"
mkdir -p "$T/pop"
cat > "$T/pop/correio.conf" <<EOF
[store]
path = $POPSTORE
transcripts = yes
EOF
setup() {	# setup USERFMT COUNT SIZE
	"$PLOAD" --setup --store "$POPSTORE" --maildir "$DV/mail" -n 20 -u "$1" -k "$2" -s "$3" >/dev/null
}
mkdir -p "$DV"
setup "s%d" 250 4096		# logins, drains and 4 KB streams
setup "b%d" 5 1048576		# 1 MB streams
for r in $(seq "$ROUNDS"); do	# first sessions: fresh mailboxes for every round
	setup "f${r}x%d" 250 4096
	setup "g${r}x%d" 5 1048576
done
chown -R nobody:nogroup "$DV/mail"
"$POP3D" -c "$T/pop/correio.conf" --listen "127.0.0.1:$P_PORT pop3" 2>"$T/pop/pop3d.log" &
PIDS+=($!)

cat > "$DV/dovecot.conf" <<EOF
base_dir = $DV/run
state_dir = $DV/state
log_path = $DV/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
mail_location = maildir:~/Maildir
first_valid_uid = 1
pop3_uidl_format = %08Xu%08Xv
passdb {
  driver = passwd-file
  args = scheme=CRYPT $DV/mail/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$DV/mail/%u
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $D_PORT
  }
  # Dovecot's documented high-performance login mode
  service_count = 0
  process_min_avail = 2
}
service imap-login {
  inet_listener imap {
    port = 0
  }
  inet_listener imaps {
    port = 0
  }
}
service pop3 {
  process_limit = 1024
}
EOF
dovecot -c "$DV/dovecot.conf"
bench_wait_port "$P_PORT"
bench_wait_port "$D_PORT"
fi

# ---- the runs -------------------------------------------------------------------
now() { date +%s.%N; }
# Postfix goes on delivering what it accepted (virtual(8) into maildirs, with
# fsyncs) after its 250s: wait until its queue is empty, for the PostgreSQL
# server's checkpoint, and for the dirty
# pages the last row left to be written back, so that no row is measured
# while another server's leftover work takes the CPUs or the disk.
settle() {
	local _i
	for _i in $(seq 600); do
		if [ -z "$(find "$PF/queue/incoming" "$PF/queue/active" "$PF/queue/maildrop" \
		    -type f -print -quit 2>/dev/null)" ]; then
			# The PostgreSQL rows' server: its checkpoint now, not in
			# the middle of a later row (it wrote the 4 KB rows' WAL).
			[ -f "$T/pg/url" ] && psql -q "$(cat "$T/pg/url")" -c CHECKPOINT >/dev/null
			sync	# and what the last row left for the kernel to write back
			return 0
		fi
		sleep 0.2
	done
	echo "Postfix's queue did not empty in 120 s" >&2
}
smtp_rate() {	# smtp_rate PORT SENDERS SIZE COUNT -> messages/s (smtp-source)
	local t0 t1
	settle
	t0=$(now)
	timeout 300 smtp-source -s "$2" -l "$3" -m "$4" -f load@example.org -t bob@lab.test "127.0.0.1:$1"
	t1=$(now)
	python3 -c "print(round($4 / ($t1 - $t0)))"
}
smtp_rate2() {	# smtp_rate2 PORT1 PORT2 SENDERS SIZE COUNT: both at once -> messages/s
	local t0 t1 p1 p2
	settle
	t0=$(now)
	timeout 300 smtp-source -s "$3" -l "$4" -m "$5" -f load@example.org -t bob@lab.test "127.0.0.1:$1" &
	p1=$!
	timeout 300 smtp-source -s "$3" -l "$4" -m "$5" -f load@example.org -t bob@lab.test "127.0.0.1:$2" &
	p2=$!
	wait "$p1" "$p2"
	t1=$(now)
	python3 -c "print(round(2 * $5 / ($t1 - $t0)))"
}
pop_rate() {	# pop_rate PORT FIELD ARGS... -> messages/s or sessions/s
	local port=$1 field=$2
	shift 2
	settle
	timeout 300 "$PLOAD" -p "$port" -w load-secret "$@" | sed -n "s|.*$field=\([0-9.]*\).*|\1|p" |
		python3 -c "import sys; print(round(float(sys.stdin.read())))"
}
declare -A A B		# A[row,round] correio, B[row,round] reference
median() { printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
# turns ROW CMD_A CMD_B: REPEAT runs of each, in turns (a b a b ...); the
# medians are row ROW's figures for round r.
turns() {
	local row=$1 a=() b=() _i
	for _i in $(seq "$REPEAT"); do
		a+=("$(eval "$2")")
		b+=("$(eval "$3")")
	done
	A[$row,$r]=$(median "${a[@]}")
	B[$row,$r]=$(median "${b[@]}")
	echo "# $row: correio ${a[*]}, reference ${b[*]}" >&2
}
# pop ROW FIELD ARGS...: a POP3 row, pop3d and Dovecot in turns (no argument
# holds a space).
pop() {
	local row=$1 field=$2
	shift 2
	turns "$row" "pop_rate \$P_PORT $field $*" "pop_rate \$D_PORT $field $*"
}
ROWS=()
row() { ROWS+=("$1"); }
rss_kb() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }

for k in smtp4k ceil4k ceil4kn pg4k pg4k2 smtp1m login1 login20 first4k first1m \
    drain1 drain20 stream1 stream20 stream1m1 stream1m20; do
	want "$k" && row "$k"
done
for r in $(seq "$ROUNDS"); do
	echo "# round $r of $ROUNDS" >&2
	want smtp4k && turns smtp4k 'smtp_rate $C_PORT 20 4096 5000' 'smtp_rate $PF_PORT 20 4096 5000'
	want ceil4k && turns ceil4k 'smtp_rate $C_PORT 20 4096 5000' 'smtp_rate $CEIL_PORT 20 4096 5000'
	want ceil4kn && turns ceil4kn 'smtp_rate $CN_PORT 20 4096 5000' 'smtp_rate $CEIL_PORT 20 4096 5000'
	want pg4k && turns pg4k 'smtp_rate $PG_PORT 20 4096 5000' 'smtp_rate $PF_PORT 20 4096 5000'
	want pg4k2 && turns pg4k2 'smtp_rate2 $PG_PORT $PG2_PORT 10 4096 2500' \
	    'smtp_rate $PF_PORT 20 4096 5000'
	# 1 MB: a fresh smtpd each round, so its peak RSS is this load's
	if want smtp1m; then
		start_smtpd "$T/cb" "$CB_PORT"
		A[smtp1m,$r]=$(smtp_rate "$CB_PORT" 100 1048576 300)
		RSS[$r]=$(rss_kb "$SPID")
		kill "$SPID"; wait "$SPID" 2>/dev/null || true
		B[smtp1m,$r]=$(smtp_rate "$PF_PORT" 100 1048576 300)
	fi
	[ "$POP" = 1 ] || continue
	# Logins are mostly the yescrypt hash (about 15 ms): enough of them
	# that one slow hash or a cold start does not make the figure.
	pop login1 sessions/s -u s%d -n 1 -m 0 -r 60
	pop login20 sessions/s -u s%d -n 20 -m 0 -r 6
	pop drain1 messages/s -u s%d -n 1 -m all -r 12
	pop drain20 messages/s -u s%d -n 20 -m all -r 2
	# Streams long enough (about a second) that the login's hash does
	# not make the figure: 3,000 RETRs were 0.1 s, and swung 0.87-2.49x.
	pop stream1 messages/s -u s%d -n 1 -m 20000
	pop stream20 messages/s -u s%d -n 20 -m 2000
	pop stream1m1 messages/s -u b%d -n 1 -m 500
	pop stream1m20 messages/s -u b%d -n 20 -m 30
	# First sessions read fresh mailboxes: once each, not in turns.
	A[first4k,$r]=$(pop_rate "$P_PORT" messages/s -u "f${r}x%d" -n 20 -m all)
	A[first1m,$r]=$(pop_rate "$P_PORT" messages/s -u "g${r}x%d" -n 20 -m all)
	B[first4k,$r]=$(pop_rate "$D_PORT" messages/s -u "f${r}x%d" -n 20 -m all)
	B[first1m,$r]=$(pop_rate "$D_PORT" messages/s -u "g${r}x%d" -n 20 -m all)
done

# ---- the table -------------------------------------------------------------------
range() {	# range ROW ARRAY -> "min-max" (or the value)
	local name=$2 lo="" hi="" v
	for r in $(seq "$ROUNDS"); do
		eval "v=\${$name[$1,$r]}"
		{ [ -z "$lo" ] || [ "$v" -lt "$lo" ]; } && lo=$v
		{ [ -z "$hi" ] || [ "$v" -gt "$hi" ]; } && hi=$v
	done
	[ "$lo" = "$hi" ] && printf "%'d" "$lo" || printf "%'d-%'d" "$lo" "$hi"
}
ratio() {	# ratio ROW -> "x.xx-y.yyx" over the rounds
	local s=""
	for r in $(seq "$ROUNDS"); do s="$s ${A[$1,$r]}/${B[$1,$r]}"; done
	python3 -c "import sys; v=[eval(x) for x in sys.argv[1:]]; lo,hi=min(v),max(v)
print(f'{lo:.2f}x' if f'{lo:.2f}'==f'{hi:.2f}' else f'{lo:.2f}-{hi:.2f}x')" $s
}
rss_range() {
	local lo="" hi=""
	for r in $(seq "$ROUNDS"); do
		v=$(( RSS[$r] / 1024 ))
		{ [ -z "$lo" ] || [ "$v" -lt "$lo" ]; } && lo=$v
		{ [ -z "$hi" ] || [ "$v" -gt "$hi" ]; } && hi=$v
	done
	[ "$lo" = "$hi" ] && echo "$lo MB" || echo "$lo-$hi MB"
}
declare -A LABEL=(
	[smtp4k]="SMTP 4 KB, 20 senders (\`smtp-source -s 20 -l 4096 -m 5000\`), msg/s|Postfix"
	[ceil4k]="same load, against the ceiling (\`tests/bench/ceiling\`), msg/s|ceiling"
	[ceil4kn]="same, correio with \`transcripts = no\`, msg/s|ceiling"
	[pg4k]="same load (20 senders, 4 KB), correio on a PostgreSQL store, one smtpd, msg/s|Postfix"
	[pg4k2]="same, two smtpds on the one PostgreSQL database, 10 senders each, msg/s|Postfix"
	[smtp1m]="SMTP 1 MB, 100 senders (\`-s 100 -l 1048576 -m 300\`), msg/s|Postfix"
	[login1]="POP3 logins (USER, PASS, STAT, QUIT), 1 connection, per s|Dovecot"
	[login20]="POP3 logins, 20 connections, per s|Dovecot"
	[first4k]="POP3 first session on 20 fresh mailboxes, 4 KB, RETR/s|Dovecot"
	[first1m]="POP3 first session on 20 fresh mailboxes, 1 MB, RETR/s|Dovecot"
	[drain1]="POP3 drain (log in, STAT, RETR 1..250, QUIT, repeat), 4 KB, 1 connection, RETR/s|Dovecot"
	[drain20]="POP3 drain, 4 KB, 20 connections, RETR/s|Dovecot"
	[stream1]="POP3 stream (one session, RETR cycling), 4 KB, 1 connection, RETR/s|Dovecot"
	[stream20]="POP3 stream, 4 KB, 20 connections, RETR/s|Dovecot"
	[stream1m1]="POP3 stream, 1 MB, 1 connection, RETR/s|Dovecot"
	[stream1m20]="POP3 stream, 1 MB, 20 connections, RETR/s|Dovecot"
)
TABLE="$T/table.md"
{
	echo "Measured $(date -u +%Y-%m-%d) with \`ROUNDS=$ROUNDS tests/bench/compare.sh build\`" \
	    "($(nproc) CPUs, load average at the end $(cut -d' ' -f1-3 /proc/loadavg);" \
	    "ranges over $ROUNDS rounds, ratios per round; each figure but the first sessions'" \
	    "the median of $REPEAT runs taking turns with its reference):"
	echo
	echo "| load | correio | reference | ratio |"
	echo "|---|---:|---:|---:|"
	for k in "${ROWS[@]}"; do
		l=${LABEL[$k]}
		extra=""
		[ "$k" = smtp1m ] && extra=", peak RSS $(rss_range)"
		echo "| ${l%%|*} | $(range "$k" A)$extra | ${l#*|} $(range "$k" B) | $(ratio "$k") |"
	done
} > "$TABLE"
cat "$TABLE"
if [ -z "${NO_DOC:-}" ]; then
	python3 - "$SRC/docs/PERFORMANCE.md" "$TABLE" <<'PY'
import sys
doc, table = sys.argv[1], open(sys.argv[2]).read()
s = open(doc).read()
b, e = "<!-- compare.sh begin -->\n", "<!-- compare.sh end -->"
i, j = s.index(b) + len(b), s.index(e)
open(doc, "w").write(s[:i] + table + s[j:])
PY
	echo "# written into docs/PERFORMANCE.md" >&2
fi
