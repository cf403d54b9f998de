/*
 * fuzz_common.h - helpers shared by the fuzz targets: a check that aborts
 * with a message (works with NDEBUG, so an oracle failure is a finding in the
 * release build too), and a byte splitter that turns the first bytes of an
 * input into parameters (chunk sizes, limits) for feeding the rest.
 */
#ifndef CORREIO_FUZZ_COMMON_H
#define CORREIO_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond) do {						\
	if (!(cond)) {							\
		fprintf(stderr, "%s:%d: fuzz check failed: %s\n",	\
		    __FILE__, __LINE__, #cond);				\
		abort();						\
	}								\
} while (0)

/* Take one parameter byte from the front of the input (0 when empty). */
static inline uint8_t
fuzz_take(const uint8_t **data, size_t *size)
{
	uint8_t b;

	if (*size == 0)
		return 0;
	b = **data;
	(*data)++;
	(*size)--;
	return b;
}

#endif
