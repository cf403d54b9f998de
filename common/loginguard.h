/*
 * loginguard.h - the failed-login policy of smtpd (AUTH) and pop3d (USER/
 * PASS, AUTH), one table per daemon process kept across sessions. After a
 * failed login the reply waits:
 *
 *   - 1, 2, 4, ... seconds, up to auth_fail_delay_max, with the failures of
 *     the (client address, account) pair, or of the session if it has more
 *     (one connection trying many names);
 *   - so an account with no failures of its own waits 1 s, whatever others
 *     behind the same address (a class behind one NAT) got wrong;
 *   - but once one address has more than auth_fail_addr_ceiling failures,
 *     every failure from it waits auth_fail_delay_max (one address guessing
 *     many accounts).
 *
 * Failures are forgotten auth_fail_window seconds after the last one; a
 * successful login forgets its pair's. The table has LOGINGUARD_SLOTS
 * entries; when it is full the entry whose last failure is oldest goes.
 * Pure logic: the caller passes the time, so tests inject a clock.
 */
#ifndef CORREIO_LOGINGUARD_H
#define CORREIO_LOGINGUARD_H

#include <stdint.h>

#include "correio_limits.h"

/* Entries in the table (pairs and addresses together): 352 octets each on
 * x86-64, so about 1.4 MB per daemon, allocated once. */
#define LOGINGUARD_SLOTS	4096
/* The longest address or account name kept in a key; longer ones are cut. */
#define LOGINGUARD_KEY_MAX	160

struct loginguard;

/* A new, empty table, or NULL when out of memory. */
struct loginguard *loginguard_new(void);
void	loginguard_free(struct loginguard **g);
/*
 * Record one failed login of account (the name as resolved; compared
 * case-insensitively) from addr at time now (seconds on the monotonic clock,
 * monotime_s(): the window is a duration). session_failures is the
 * session's failures, this one included. Returns the delay in seconds
 * before the failure is answered (0 when auth_fail_delay_max is 0). g may be
 * NULL: then only the session's failures count.
 */
long	loginguard_failed(struct loginguard *g, const struct limits *lim, const char *addr,
	    const char *account, unsigned session_failures, int64_t now);
/* A successful login of account from addr: its pair's failures are forgotten
 * (the address's are not). g may be NULL. */
void	loginguard_succeeded(struct loginguard *g, const char *addr, const char *account);
/* Failures recorded for the pair, and for the address alone, at time now
 * (for logs and tests). */
unsigned loginguard_count(struct loginguard *g, const struct limits *lim, const char *addr,
	    const char *account, int64_t now);

#endif
