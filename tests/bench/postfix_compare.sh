#!/usr/bin/env bash
# postfix_compare.sh - the same load against correio smtpd and Postfix, side by
# side in one run, both on loopback with their queue/store on the same disk.
#
#   tests/bench/postfix_compare.sh [BUILD_DIR]
#
# Needs root and the postfix package (Debian: apt-get install postfix, and
# choose "No configuration"). The system's Postfix is not touched: a private
# instance runs from its own config_directory and queue_directory under a
# temporary directory, listening on 127.0.0.1 only, and is stopped at the end.
# For Postfix, "250 after the final dot" means the queue file is fsync'd by
# cleanup(8); for correio it means the message is committed in the store.
# KEEP=1 keeps the work directory. Never part of the test command.
set -euo pipefail

BUILD=${1:-build}
LOAD="$BUILD/tests/bench/smtp_load"
SMTPD="$BUILD/smtpd/smtpd"
MAILCLI="$BUILD/mailcli/mailcli"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PF_PORT=${PF_PORT:-$(free_port)}
C_PORT=${C_PORT:-$(free_port)}
T=$(mktemp -d /var/tmp/postfix-compare.XXXXXX)
PF="$T/postfix"

command -v postfix >/dev/null || { echo "postfix is not installed" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root (Postfix's master needs it)" >&2; exit 2; }

# ---- a private Postfix instance ---------------------------------------------
mkdir -p "$PF/etc" "$PF/queue" "$PF/data" "$PF/mail"
chmod 755 "$T" "$PF"
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
postfix -c "$PF/etc" start

# ---- correio smtpd ----------------------------------------------------------
cat > "$T/correio.conf" <<EOF
[store]
path = $T/correio.db
transcripts = no
[smtpd]
hostname = correio.lab.test
[limits]
max_connections = 20000
max_connections_per_addr = 20000
EOF
"$MAILCLI" admin -c "$T/correio.conf" domain add lab.test
echo "bench-password" | "$MAILCLI" admin -c "$T/correio.conf" user add bob --password-stdin
"$SMTPD" -c "$T/correio.conf" --listen "127.0.0.1:$C_PORT inbound" 2>"$T/smtpd.log" &
SPID=$!
cleanup() {
	kill "$SPID" 2>/dev/null || true
	postfix -c "$PF/etc" stop >/dev/null 2>&1 || true
	[ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

wait_port() {
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listens on $1" >&2
	return 1
}
wait_port "$PF_PORT"
wait_port "$C_PORT"

echo "# same load, same disk ($(df -P "$T" | awk 'NR==2 {print $1}')), $(nproc) CPUs"
for size in 4096 1048576; do
	for conns in 1 20 100; do
		if [ "$size" = 4096 ]; then msgs=$((conns == 1 ? 300 : 3000)); else msgs=$((conns == 1 ? 30 : 200)); fi
		for name in correio postfix; do
			port=$C_PORT
			[ "$name" = postfix ] && port=$PF_PORT
			printf '%-8s ' "$name"
			"$LOAD" -c "$conns" -m "$msgs" -s "$size" "127.0.0.1:$port" || true
		done
	done
done
if [ -n "${KEEP:-}" ]; then echo "# work directory kept: $T"; fi
