#!/bin/sh
# clients_check.sh - before any test runs, check that each independent client
# the tests drive can do what the tests ask of it. A missing capability stops
# the run with one line: what is missing and which Debian package provides it
# (deps.sh --test installs them all; this catches the one it forgot).
#
#   tests/clients_check.sh      exit 0, or 1 with "clients_check: ..." lines
set -u

fail=0
missing() {	# missing WHAT PACKAGE
	echo "clients_check: $1; apt-get install $2 (deps.sh --test names it)" >&2
	fail=1
}
have() { command -v "$1" >/dev/null 2>&1; }

# swaks: STARTTLS and AUTH (test_smtpd_clients).
if ! have swaks; then
	missing "swaks not found" swaks
else
	support=$(swaks --support 2>&1)
	echo "$support" | grep -q "^=== TLS supported" ||
	    missing "swaks cannot do TLS (swaks --support: $(echo "$support" | grep TLS))" \
	    "libnet-ssleay-perl libio-socket-ssl-perl"
	echo "$support" | grep -q "^=== Basic AUTH supported" ||
	    missing "swaks cannot do AUTH (swaks --support: $(echo "$support" | grep 'Basic AUTH'))" \
	    libauthen-sasl-perl
fi

# curl: POP3 and SMTP, plain and over TLS.
if ! have curl; then
	missing "curl not found" curl
else
	protos=$(curl -V 2>/dev/null | sed -n 's/^Protocols: //p')
	for p in pop3 pop3s smtp smtps; do
		case " $protos " in
		*" $p "*) ;;
		*) missing "curl lacks the $p protocol (curl -V)" curl ;;
		esac
	done
fi

# mpop: POP3 with TLS.
if ! have mpop; then
	missing "mpop not found" mpop
elif ! mpop --version 2>/dev/null | grep -Eq "^TLS/SSL library: (GnuTLS|OpenSSL|LibreSSL)"; then
	missing "mpop has no TLS library (mpop --version)" mpop
fi

# Python: smtplib/poplib over TLS, the email package.
if ! have python3; then
	missing "python3 not found" python3
elif ! python3 -c "import ssl, smtplib, poplib, email.policy" 2>/dev/null; then
	missing "python3 cannot import ssl, smtplib, poplib and email" python3
fi

# A browser for webd's pages (test_webd): chromium headless through
# chromium-driver, from Debian's python3-selenium.
have chromium || missing "chromium not found" chromium
have chromedriver || missing "chromedriver not found" chromium-driver
if have python3 && ! python3 -c "import sys; sys.path.append('/usr/lib/python3/dist-packages'); import selenium.webdriver" 2>/dev/null; then
	missing "python3 cannot import selenium" python3-selenium
fi

# The rest: munpack (MIME), openssl (test certificates), sqlite3 (looking into
# the store), nc (typed sessions), faketime (clocks that run fast).
for c in munpack:mpack openssl:openssl sqlite3:sqlite3 nc:netcat-openbsd faketime:faketime; do
	have "${c%%:*}" || missing "${c%%:*} not found" "${c#*:}"
done

exit $fail
