/*
 * log.h - one line per event, "key=value" form, to stderr and optionally
 * syslog. fatal/fatalx are for start-up and configuration only: inside a
 * session a failure closes that session, never the process.
 *   2026-11-25T10:00:00Z smtpd[123]: info: session=ab12 event=accepted from=...
 */
#ifndef CORREIO_LOG_H
#define CORREIO_LOG_H

#include <stdbool.h>

void	log_init(const char *progname, bool use_syslog, int verbosity);
void	log_set_verbosity(int verbosity);
void	log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Appends ": strerror(errno)". */
void	log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void	fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
void	fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/*
 * An event loop's thread may hold its lines and write them together at the
 * end of the loop's turn: log_hold(wake, arg) starts that for the calling
 * thread, and wake(arg) is called when the first line of a batch is held
 * (the loop then calls log_flush() at the end of the turn).
 * log_hold(NULL, NULL) writes what is held and stops holding. Lines of
 * other threads are written at once. fatal() and exit() write what is held.
 */
void	log_hold(void (*wake)(void *), void *arg);
void	log_flush(void);

#define LOG_SESSION_ID_MAX	24	/* a buffer for log_session_id() (it needs 21) */

/* A session id of 20 lowercase hex characters into id (>= 21 bytes): the
 * time in seconds, then 48 random bits, so ids sort by time. */
void	log_session_id(char *id, unsigned long size);

#endif
