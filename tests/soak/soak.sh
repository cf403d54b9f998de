#!/bin/sh
# soak.sh - run the crash-consistency soak (tests/soak/soak.py) against the
# build in $CORREIO_BIN (default: ./build), by hand; not part of ./test.sh.
# Default: 1,000 SIGKILLs of smtpd under load + 1,000 of pop3d around QUIT.
#   tests/soak/soak.sh                     # the full run (about 20-40 minutes)
#   tests/soak/soak.sh --smtp-cycles 50 --pop3-cycles 50 --seed 1
#   tests/soak/soak.sh --help              # every option
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${CORREIO_BIN:=$here/../../build}"
export CORREIO_BIN
exec python3 "$here/soak.py" "$@"
