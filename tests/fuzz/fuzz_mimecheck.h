/*
 * fuzz_mimecheck.h - the promise of mime_safe_filename (mailcli/mime_read.c),
 * checked by fuzz_mime.c and fuzz_rfc2231.c.
 */
#ifndef CORREIO_FUZZ_MIMECHECK_H
#define CORREIO_FUZZ_MIMECHECK_H

#include <string.h>
#include "fuzz_common.h"
#include "rfc2047.h"

static inline void
fuzz_check_safe_name(const char *name)
{
	size_t n = strlen(name);

	FUZZ_CHECK(n > 0 && n <= 200);
	FUZZ_CHECK(strchr(name, '/') == NULL && strchr(name, '\\') == NULL);
	FUZZ_CHECK(name[0] != '.' && name[0] != '-');
	FUZZ_CHECK(rfc2047_is_utf8(name, n));
	for (size_t i = 0; i < n; i++)
		FUZZ_CHECK((unsigned char)name[i] >= 0x20 && name[i] != 0x7f);
}

#endif
