#!/bin/sh
# deps.sh - install what correio needs on Debian 12 (run as root).
#   ./deps.sh           build and run dependencies (./demo.sh)
#   ./deps.sh --test    also every client and tool the tests drive (./test.sh)
#   ./deps.sh --bench   also what tests/bench compares against (Postfix, Dovecot),
#                       and valgrind for instr_per_msg.sh
#   ./deps.sh --fuzz    also clang and its fuzzer runtime (tests/fuzz/run.sh)
#   ./deps.sh --list [MODE]   print the packages of MODE and install nothing
# Installs only what is missing, so it is quick when everything is there.
# tests/fresh_check.py fails the test run when a test or script runs a command
# from a package that is named neither here nor in Debian's base system.
set -eu

base="build-essential cmake pkg-config git libsqlite3-dev libb64-dev libcmocka-dev libssl-dev
libevent-dev libmagic-dev libinih-dev libcrypt-dev libpq-dev sqlite3 openssl ca-certificates"
# The independent clients the tests drive, and the modules they need for what
# the tests use: swaks needs Net::SSLeay and IO::Socket::SSL for STARTTLS and
# Authen::SASL for AUTH (with --no-install-recommends none of them come along).
# mpack gives munpack; time gives /usr/bin/time (peak memory); faketime runs a daemon's clock fast; dpkg-dev and
# systemd give cpack's dpkg-shlibdeps and systemd-analyze for the install test;
# chromium, chromium-driver and python3-selenium drive webd's pages headless;
# postgresql gives initdb and pg_ctl for the private server of the PostgreSQL
# store's tests (tests/pg_server.py); postgresql-client psql, which the
# integration harness runs on it (/usr/bin/psql itself, a wrapper, is
# postgresql-client-common's).
test="swaks libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl curl mpop mpack
python3 netcat-openbsd procps time faketime dpkg-dev systemd chromium chromium-driver
python3-selenium postgresql postgresql-client postgresql-client-common"
bench="postfix dovecot-pop3d valgrind"
fuzz="clang libclang-rt-14-dev"

list=0
[ "${1:-}" = "--list" ] && { list=1; shift; }
case "${1:-}" in
"") pkgs="$base" ;;
--test) pkgs="$base $test" ;;
--bench) pkgs="$base $test $bench" ;;
--fuzz) pkgs="$base $test $fuzz" ;;
*) echo "usage: deps.sh [--list] [--test|--bench|--fuzz]" >&2; exit 2 ;;
esac
if [ $list -eq 1 ]; then
	echo $pkgs
	exit 0
fi

missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "deps.sh: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
