/*
 * log.c - one line per event to stderr, and to syslog (facility mail) when
 * enabled: "2026-11-25T10:00:00Z smtpd[123]: info: session=ab12 event=...".
 *
 * Owns: the log line format and session ids. Every line goes out whole in one
 * write(2) of at most PIPE_BUF octets, so that lines from concurrent processes
 * never interleave, and bytes that would break the one-line-per-event rule
 * (CR, LF, other control bytes) are shown as \xNN. fatal/fatalx exit the
 * process: start-up only (HACKING.md C10).
 * An event loop's thread holds its lines (log_hold) and writes those of one
 * turn of the loop together: three lines per SMTP message (connect, delivery,
 * disconnect) were three write(2)s, 3-4% of smtpd's loop. A crash of the
 * process loses the lines of the turn it crashed in.
 * Never: logs a password (callers pass masked text), or blocks on syslog.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#include "log.h"

#define LOG_LINE_MAX	4096

static pid_t log_pid;		/* cached at the first line */
static const char *log_prog = "correio";
static bool log_syslog;
static int log_verbosity;

/* The lines this thread holds (log_hold): whole lines, at most PIPE_BUF
 * octets, so that the write that takes them is one that cannot interleave. */
struct log_held {
	char	*buf;
	size_t	 len;
	void	(*wake)(void *);
	void	*arg;
};
static __thread struct log_held held;

static void
log_write(const char *p, size_t n)
{
	/* A short write to stderr is not worth retrying. */
	while (write(STDERR_FILENO, p, n) == -1 && errno == EINTR)
		;
}

void
log_flush(void)
{
	if (held.len == 0)
		return;
	log_write(held.buf, held.len);
	held.len = 0;
}

static void
log_flush_at_exit(void)
{
	log_flush();
}

static void
log_register_exit(void)
{
	(void)atexit(log_flush_at_exit);	/* exit() runs it in the thread that exits */
}

void
log_hold(void (*wake)(void *), void *arg)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	log_flush();
	if (wake == NULL) {
		free(held.buf);
		memset(&held, 0, sizeof(held));
		return;
	}
	if (held.buf == NULL && (held.buf = malloc(PIPE_BUF)) == NULL)
		return;		/* lines are written at once, as before */
	held.wake = wake;
	held.arg = arg;
	pthread_once(&once, log_register_exit);
}

/* One finished line: held, or written. */
static void
log_put(const char *line, size_t n)
{
	if (held.buf == NULL || n > PIPE_BUF) {
		log_flush();	/* keep this thread's lines in order */
		log_write(line, n);
		return;
	}
	if (held.len + n > PIPE_BUF)
		log_flush();
	memcpy(held.buf + held.len, line, n);
	if (held.len == 0)
		held.wake(held.arg);
	held.len += n;
}

void
log_init(const char *progname, bool use_syslog, int verbosity)
{
	if (progname != NULL) {
		const char *slash = strrchr(progname, '/');
		log_prog = slash ? slash + 1 : progname;
	}
	log_verbosity = verbosity;
	if (use_syslog && !log_syslog)
		openlog(log_prog, LOG_PID | LOG_NDELAY, LOG_MAIL);
	else if (!use_syslog && log_syslog)
		closelog();
	log_syslog = use_syslog;
}

void
log_set_verbosity(int verbosity)
{
	log_verbosity = verbosity;
}

/* Append src to dst[*pos..size), escaping control bytes; always leaves room
 * for "\n" and the NUL. */
static void
log_escape(char *dst, size_t *pos, size_t size, const char *src)
{
	static const char hex[] = "0123456789abcdef";
	size_t p = *pos;

	for (; *src != '\0'; src++) {
		unsigned char c = (unsigned char)*src;

		if (c < 0x20 || c == 0x7f) {
			if (p + 4 + 2 > size)	/* UNSAFE: p < size always */
				break;
			dst[p++] = '\\';
			dst[p++] = 'x';
			dst[p++] = hex[c >> 4];
			dst[p++] = hex[c & 0xf];
		} else {
			if (p + 1 + 2 > size)
				break;
			dst[p++] = (char)c;
		}
	}
	*pos = p;
}

/*
 * A line's prefix ("TIME PROG[PID]: LEVEL: "), per thread, made again only
 * when its second, level, program or pid changes: formatting its nine
 * fields for every line was a fifth of smtpd's printf time (three lines per
 * message).
 */
static __thread struct {
	time_t		 sec;
	const char	*level, *prog;
	pid_t		 pid;
	size_t		 len;		/* 0: none yet */
	char		 s[128];
} log_prefix;

static void
log_emit(int prio, const char *level, int errnum, const char *fmt, va_list ap)
{
	char msg[LOG_LINE_MAX], line[LOG_LINE_MAX + 128];
	struct timespec ts;
	struct tm tm;
	size_t pos, n;
	int w;

	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	if (log_pid == 0)	/* no program of ours forks; getpid() is a system call */
		log_pid = getpid();

	clock_gettime(CLOCK_REALTIME, &ts);
	if (log_prefix.len == 0 || log_prefix.sec != ts.tv_sec || log_prefix.level != level ||
	    log_prefix.prog != log_prog || log_prefix.pid != log_pid) {
		gmtime_r(&ts.tv_sec, &tm);
		w = snprintf(log_prefix.s, sizeof(log_prefix.s),
		    "%04d-%02d-%02dT%02d:%02d:%02dZ %s[%ld]: %s: ",
		    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		    tm.tm_sec, log_prog, (long)log_pid, level);
		if (w < 0 || (size_t)w >= sizeof(log_prefix.s)) {
			log_prefix.len = 0;
			return;
		}
		log_prefix.len = (size_t)w;
		log_prefix.sec = ts.tv_sec;
		log_prefix.level = level;
		log_prefix.prog = log_prog;
		log_prefix.pid = log_pid;
	}
	n = log_prefix.len;
	memcpy(line, log_prefix.s, n);
	pos = n;
	log_escape(line, &pos, sizeof(line), msg);
	if (errnum != 0) {
		log_escape(line, &pos, sizeof(line), ": ");
		log_escape(line, &pos, sizeof(line), strerror(errnum));
	}
	if (log_syslog) {
		line[pos] = '\0';
		/* syslog adds its own time stamp, name and pid. */
		syslog(prio, "%s", line + n);
	}
	line[pos++] = '\n';
	log_put(line, pos);
}

void
log_info(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_emit(LOG_INFO, "info", 0, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_debug(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	if (log_verbosity <= 0)
		return;
	va_start(ap, fmt);
	log_emit(LOG_DEBUG, "debug", 0, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warn(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_emit(LOG_WARNING, "warning", saved, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
log_warnx(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_emit(LOG_WARNING, "warning", 0, fmt, ap);
	va_end(ap);
	errno = saved;
}

void
fatal(const char *fmt, ...)
{
	va_list ap;
	int saved = errno;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, "fatal", saved, fmt, ap);
	va_end(ap);
	log_flush();
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_CRIT, "fatal", 0, fmt, ap);
	va_end(ap);
	log_flush();
	exit(1);
}

/*
 * The random octets of session ids, drawn from the kernel 240 at a time
 * (a getrandom() per session was a system call per SMTP message): each
 * thread has its own, and a child process forgets its parent's, which the
 * parent will hand out too. Not secrets (the greeting shows the id): only
 * never handed out twice.
 */
#define ID_POOL		240
static __thread struct {
	unsigned char	 b[ID_POOL];
	size_t		 left;		/* the last left octets of b are unused */
} id_pool;
static pthread_once_t id_pool_once = PTHREAD_ONCE_INIT;

static void
id_pool_forget(void)
{
	id_pool.left = 0;
}

static void
id_pool_init(void)
{
	(void)pthread_atfork(NULL, NULL, id_pool_forget);
}

/* n random octets into v: 0, or -1 when the kernel gives none (no
 * getrandom: v is left for the caller's fallback). */
static int
id_random(unsigned char *v, size_t n)
{
	size_t got = 0;

	(void)pthread_once(&id_pool_once, id_pool_init);
	if (id_pool.left < n) {
		while (got < ID_POOL) {
			ssize_t r = getrandom(id_pool.b + got, ID_POOL - got, 0);

			if (r == -1) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			got += (size_t)r;
		}
		id_pool.left = ID_POOL;
	}
	memcpy(v, id_pool.b + ID_POOL - id_pool.left, n);
	id_pool.left -= n;
	return 0;
}

void
log_session_id(char *id, unsigned long size)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char v[10];
	uint32_t t = (uint32_t)time(NULL);
	size_t i;

	if (size == 0)
		return;
	/*
	 * Four octets of the time in seconds, then six random ones: ids made
	 * close in time sort together, so the session log's rows, keyed by id,
	 * go in at the end of their indexes (a random key dirtied a page
	 * anywhere in the tree for each row). 2^48 ids a second.
	 */
	v[0] = (unsigned char)(t >> 24);
	v[1] = (unsigned char)(t >> 16);
	v[2] = (unsigned char)(t >> 8);
	v[3] = (unsigned char)t;
	if (id_random(v + 4, sizeof(v) - 4) == -1) {
		/* No kernel entropy API: fall back to something unique enough. */
		struct timespec ts;
		unsigned long x;
		size_t got;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		x = (unsigned long)ts.tv_nsec ^ ((unsigned long)getpid() << 30);
		for (got = 4; got < sizeof(v); got++, x >>= 8)
			v[got] = (unsigned char)x;
	}
	for (i = 0; i < sizeof(v) * 2 && i + 1 < size; i++)
		id[i] = hex[(v[i / 2] >> ((i % 2) ? 0 : 4)) & 0xf];
	id[i] = '\0';
}
