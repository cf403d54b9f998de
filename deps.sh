#!/bin/sh
# deps.sh - install what correio needs on Debian 12 (run as root).
#   ./deps.sh          build and run dependencies
#   ./deps.sh --test   also the independent clients the tests drive
# Installs only what is missing, so it is quick when everything is there.
set -eu

pkgs="build-essential cmake pkg-config git libsqlite3-dev libb64-dev libcmocka-dev libssl-dev
libevent-dev libmagic-dev libinih-dev libcrypt-dev sqlite3 openssl ca-certificates"
if [ "${1:-}" = "--test" ]; then
	# swaks, curl, mpop, mpack and Python's smtplib/poplib/email are the
	# independent clients; clang builds the fuzz targets.
	pkgs="$pkgs swaks libnet-ssleay-perl libio-socket-ssl-perl libauthen-sasl-perl curl mpop mpack python3 netcat-openbsd procps faketime"
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
