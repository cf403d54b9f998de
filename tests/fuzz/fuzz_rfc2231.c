/*
 * fuzz_rfc2231.c - MIME parameters (mailcli/mime_read.c: RFC 2045 5.1
 * parameter lists, RFC 2231 continuations, charsets and languages, RFC 2047
 * words in names) through the public reader: the input is the parameter text
 * of a Content-Type and a Content-Disposition header of one part.
 *
 * Oracles: the part's file name is well-formed UTF-8 and NUL-terminated in
 * its field; its type, charset and encoding are lower case; the file name made
 * safe for extraction (mime_safe_filename) is not empty, at most 200 bytes of
 * UTF-8 without control characters, '/' or '\\', and starts with no '.' or '-'.
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "buf.h"
#include "fuzz_common.h"
#include "mime.h"
#include "rfc2047.h"
#include "fuzz_mimecheck.h"

static void
check_lower(const char *s, size_t cap)
{
	FUZZ_CHECK(memchr(s, '\0', cap) != NULL);
	for (; *s; s++)
		FUZZ_CHECK(!isupper((unsigned char)*s));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf msg;
	struct mime_part *root;
	char name[sizeof(root->filename)];

	if (size > 64 * 1024)
		return 0;
	buf_init(&msg, size * 2 + 256);
	FUZZ_CHECK(buf_puts(&msg, "Content-Type: application/x-fuzz; ") == 0);
	FUZZ_CHECK(buf_append(&msg, data, size) == 0);
	FUZZ_CHECK(buf_puts(&msg, "\r\nContent-Disposition: attachment; ") == 0);
	FUZZ_CHECK(buf_append(&msg, data, size) == 0);
	FUZZ_CHECK(buf_puts(&msg, "\r\n\r\nbody\r\n") == 0);

	root = mime_parse(msg.data, msg.len);
	FUZZ_CHECK(root != NULL);
	for (const struct mime_part *p = root; p != NULL; p = p->child) {
		FUZZ_CHECK(memchr(p->filename, '\0', sizeof(p->filename)) != NULL);
		FUZZ_CHECK(rfc2047_is_utf8(p->filename, strlen(p->filename)));
		check_lower(p->type, sizeof(p->type));
		check_lower(p->charset, sizeof(p->charset));
		check_lower(p->encoding, sizeof(p->encoding));
		memcpy(name, p->filename, sizeof(name));
		mime_safe_filename(name);
		FUZZ_CHECK(memchr(name, '\0', sizeof(name)) != NULL);
		fuzz_check_safe_name(name);
	}
	mime_free(&root);
	FUZZ_CHECK(root == NULL);
	buf_free(&msg);
	return 0;
}
