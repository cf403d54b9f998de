#!/bin/bash
# demo.sh - set up and start correio on this machine, in the foreground.
#
# Installs what is missing, builds, and on the first run creates var/ with a
# config (var/correio.conf), a self-signed TLS certificate, the SQLite store
# (var/correio.db), the domain lab.test and two demo accounts, ana and bob.
# Then runs smtpd (127.0.0.1:2525 inbound, 127.0.0.1:2587 submission) and
# pop3d (127.0.0.1:1110) and webd, the web console (https://127.0.0.1:8080/,
# printed below), with their logs on this terminal. Ctrl-C stops them all.
set -euo pipefail
cd "$(dirname "$0")"

./deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc 2>/dev/null || echo 2)" --target smtpd pop3d webd mailcli

VAR=$PWD/var
CONF=$VAR/correio.conf
MAILCLI=build/mailcli/mailcli
mkdir -p "$VAR/tls"

if [ ! -f "$VAR/tls/cert.pem" ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=localhost" \
	    -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
	    -keyout "$VAR/tls/key.pem" -out "$VAR/tls/cert.pem" 2>/dev/null
	chmod 600 "$VAR/tls/key.pem"
fi

# Started as root, the daemons bind their ports and then run as an unprivileged
# system user, which owns the store.
RUNAS=""
if [ "$(id -u)" -eq 0 ]; then
	id -u correio >/dev/null 2>&1 ||
	    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin correio
	chmod 755 "$VAR"
	if runuser -u correio -- test -x "$VAR"; then
		RUNAS=correio
	else
		echo "demo.sh: $VAR is inside a directory user 'correio' cannot enter;" \
		    "the daemons will keep running as root" >&2
	fi
fi

if [ ! -f "$CONF" ]; then
	cat > "$CONF" <<CONF
# correio demo configuration (see docs/correio.conf.5 for every key).
[store]
path = $VAR/correio.db
transcripts = yes

[smtpd]
hostname = mail.lab.test
listen = 127.0.0.1:2525 inbound
listen = 127.0.0.1:2587 submission
${RUNAS:+user = $RUNAS}

[pop3d]
listen = 127.0.0.1:1110 pop3

[webd]
listen = 127.0.0.1:8080
teachers = ana

[tls]
cert = $VAR/tls/cert.pem
key = $VAR/tls/key.pem
CONF
fi

# The store is the file var/correio.db, unless [store] url in the config names
# a PostgreSQL database (docs/INSTALL.md): then nothing of it is a file here,
# and it is new when it does not serve lab.test yet.
STORE_FILE=$VAR/correio.db
grep -Eq '^[[:space:]]*url[[:space:]]*=' "$CONF" && STORE_FILE=""
new_store() {
	if [ -n "$STORE_FILE" ]; then
		[ ! -f "$STORE_FILE" ]
	else
		! $MAILCLI admin -c "$CONF" domain list | grep -qx lab.test
	fi
}

if new_store; then
	$MAILCLI admin -c "$CONF" domain add lab.test
	echo "correio-ana" | $MAILCLI admin -c "$CONF" user add ana --password-stdin
	echo "correio-bob" | $MAILCLI admin -c "$CONF" user add bob --password-stdin
	$MAILCLI admin -c "$CONF" alias add postmaster ana
	cat <<'MSG'

################################################################################
#  NEW STORE: created domain lab.test with two DEMO accounts                   #
#      ana@lab.test   password: correio-ana                                    #
#      bob@lab.test   password: correio-bob                                    #
#  (postmaster is an alias of ana). Change them: mailcli admin user passwd ana #
################################################################################
MSG
fi

if [ -n "$RUNAS" ]; then
	# The store and its WAL belong to the daemons' user (mailcli admin, run
	# as root, may have created them); the TLS key is read before the drop.
	chown "$RUNAS": "$VAR"
	[ -z "$STORE_FILE" ] || chown "$RUNAS": "$STORE_FILE"*
fi

cat <<MSG

Try it from another terminal:
  SMTP by hand:   telnet 127.0.0.1 2525   (or: nc -C 127.0.0.1 2525)
                  HELO me / MAIL FROM:<ana@lab.test> / RCPT TO:<bob@lab.test> /
                  DATA / Subject: hi / (empty line) / Hello Bob! / . / QUIT
  mailcli:        $MAILCLI send --server 127.0.0.1:2525 --cafile var/tls/cert.pem \\
                      --from ana@lab.test --to bob@lab.test \\
                      --subject 'Você gosta de chocolate?' --text 'Oi Bob!' --trace
  read it:        MAILCLI_PASSWORD=correio-bob $MAILCLI inbox --server 127.0.0.1:1110 \\
                      --cafile var/tls/cert.pem --user bob
                  (the demo certificate is self-signed: --cafile trusts it)
  POP3 by hand:   telnet 127.0.0.1 1110   then USER bob / PASS correio-bob / LIST / RETR 1 / QUIT
  curl:           curl -v pop3://bob:correio-bob@127.0.0.1:1110/1
  transcripts:    $MAILCLI admin -c $CONF transcript SESSION-ID   (id is in each greeting)

  the web console: https://127.0.0.1:8080/   (log in as bob / correio-bob: mailbox and
                  sessions; ana is a teacher: every session, and the live view;
                  the demo certificate is self-signed: accept it in the browser)
  Thunderbird:    https://127.0.0.1:8080/.well-known/autoconfig/mail/config-v1.1.xml
                  (or: $MAILCLI setup-client -c $CONF bob@lab.test)

Starting smtpd, pop3d and webd (Ctrl-C stops them)...
MSG

pids=()
stop() {
	trap - INT TERM EXIT
	[ ${#pids[@]} -gt 0 ] && kill "${pids[@]}" 2>/dev/null || true
	wait 2>/dev/null || true
	echo "correio stopped."
}
trap stop INT TERM EXIT

for d in smtpd pop3d webd; do
	args=()
	# an older var/correio.conf has no [webd]: the demo's address is given here
	[ "$d" = webd ] && args=(--listen 127.0.0.1:8080)
	if [ -x "build/$d/$d" ]; then
		"build/$d/$d" -c "$CONF" "${args[@]}" &
		pids+=($!)
	else
		echo "!! $d is not built yet (not implemented): not started" >&2
	fi
done
[ ${#pids[@]} -gt 0 ] || { echo "nothing to run" >&2; exit 1; }
# Stop everything as soon as one daemon exits.
wait -n "${pids[@]}" || true
