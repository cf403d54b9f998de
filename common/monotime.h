/*
 * monotime.h - durations measured on the monotonic clock.
 *
 * Owns: the rule that a duration (a timeout, a delay, a grace period, a
 * wait on a condition variable) is measured on CLOCK_MONOTONIC, which a
 * step of the wall clock (an administrator's date(1), NTP stepping, a VM
 * resumed) never moves. The wall clock (time(2)) is only for dates: what is
 * stored, logged or shown. libevent's timers are monotonic already.
 */
#ifndef CORREIO_MONOTIME_H
#define CORREIO_MONOTIME_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/* Seconds and milliseconds on the monotonic clock (an arbitrary origin). */
int64_t	monotime_s(void);
int64_t	monotime_ms(void);
/* Initialize cond so that pthread_cond_timedwait() takes monotonic
 * deadlines; returns pthread_cond_init()'s result. */
int	monotime_cond_init(pthread_cond_t *cond);
/* The monotonic deadline ms milliseconds from now, for a condition
 * variable made by monotime_cond_init() or pthread_clockjoin_np(). */
void	monotime_deadline(struct timespec *ts_r, long ms);
/* The same, us microseconds from now (a wait shorter than a millisecond). */
void	monotime_deadline_us(struct timespec *ts_r, long us);

#endif
