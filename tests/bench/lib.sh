# lib.sh - what the smtpd benchmark scripts share (compare.sh, cpu_per_msg.sh,
# instr_per_msg.sh, smtpd_bench.sh). Sourced, never run.

# A free TCP port on 127.0.0.1.
bench_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# bench_wait_port PORT: wait up to 10 s for something to listen on PORT.
bench_wait_port() {
	for _ in $(seq 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	echo "nothing listens on $1" >&2
	return 1
}

# bench_store MAILCLI DIR TRANSCRIPTS [URL]: DIR/correio.conf for a SQLite
# store in DIR, or for the database at URL (its spool in DIR), with the
# domain lab.test and the account bob (password bench-password), and no
# connection limit a load could reach.
bench_store() {
	mkdir -p "$2"
	if [ -n "${4:-}" ]; then
		printf '[store]\nurl = %s\nspool = %s\n' "$4" "$2" > "$2/correio.conf"
	else
		printf '[store]\npath = %s\n' "$2/correio.db" > "$2/correio.conf"
	fi
	cat >> "$2/correio.conf" <<EOC
transcripts = $3
[smtpd]
hostname = correio.lab.test
[limits]
max_connections = 20000
max_connections_per_addr = 20000
EOC
	"$1" admin -c "$2/correio.conf" domain add lab.test >/dev/null 2>&1
	echo "bench-password" | "$1" admin -c "$2/correio.conf" user add bob --password-stdin >/dev/null 2>&1
}

# bench_begin NAME: a work directory D (removed at exit, with the server
# whose pid the script puts in PID stopped first) and a free port PORT.
bench_begin() {
	D=$(mktemp -d "/var/tmp/correio-$1.XXXXXX")
	PID=
	trap bench_end EXIT
	PORT=$(bench_free_port)
}
bench_end() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null
	wait 2>/dev/null
	rm -rf "$D"
}
