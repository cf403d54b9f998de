/*
 * monotime.c - the monotonic clock for durations (see monotime.h).
 * Never: reads the wall clock.
 */
#include "monotime.h"

int64_t
monotime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
monotime_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec;
}

int
monotime_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t attr;
	int rc;

	if ((rc = pthread_condattr_init(&attr)) != 0)
		return rc;
	if ((rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)) == 0)
		rc = pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
	return rc;
}

void
monotime_deadline_us(struct timespec *ts_r, long us)
{
	clock_gettime(CLOCK_MONOTONIC, ts_r);
	ts_r->tv_sec += us / 1000000;
	ts_r->tv_nsec += (us % 1000000) * 1000L;
	if (ts_r->tv_nsec >= 1000000000L) {
		ts_r->tv_sec++;
		ts_r->tv_nsec -= 1000000000L;
	}
}

void
monotime_deadline(struct timespec *ts_r, long ms)
{
	monotime_deadline_us(ts_r, ms * 1000L);
}
