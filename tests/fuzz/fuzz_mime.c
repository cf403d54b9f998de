/*
 * fuzz_mime.c - the MIME reader behind `mailcli show` and `extract`
 * (mailcli/mime_read.c with rfc2047.c, qp.c and common/b64.c): parse any
 * byte string as a message, walk the tree, decode every body and the common
 * headers, print the tree, pick the text part, and (for one input in eight)
 * save the attachments into a scratch directory.
 *
 * Oracles: parsing never fails; the tree is at most MIME_MAX_DEPTH deep and
 * MIME_MAX_PARTS parts; every header and body range lies inside the input;
 * decoded headers are UTF-8; safe file names are safe; extraction writes only
 * regular files, directly inside the directory it was given.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "fuzz_common.h"
#include "fuzz_mimecheck.h"
#include "mime.h"
#include "rfc2047.h"

static FILE *devnull;
static char scratch[64];

static size_t
walk(const struct mime_part *p, const char *msg, size_t len, int depth)
{
	size_t n = 0;
	char hdr[1024], name[sizeof(p->filename)];
	struct buf body;

	for (; p != NULL; p = p->next) {
		n++;
		FUZZ_CHECK(depth <= MIME_MAX_DEPTH + 1);
		FUZZ_CHECK(p->headers == NULL || (p->headers >= msg &&
		    p->headers + p->headerslen <= msg + len));
		FUZZ_CHECK(p->body == NULL || (p->body >= msg && p->body + p->bodylen <= msg + len));
		FUZZ_CHECK(memchr(p->type, '\0', sizeof(p->type)) != NULL);
		FUZZ_CHECK(memchr(p->filename, '\0', sizeof(p->filename)) != NULL);
		FUZZ_CHECK(rfc2047_is_utf8(p->filename, strlen(p->filename)));
		buf_init(&body, 64 * 1024 * 1024);
		(void)mime_decode_body(p, &body);
		FUZZ_CHECK(body.len <= p->bodylen);
		buf_free(&body);
		static const char *const names[] = { "Subject", "From", "To", "Content-Type" };
		for (size_t i = 0; i < 4; i++) {
			if (mime_header(p, names[i], hdr, sizeof(hdr)) == 0) {
				FUZZ_CHECK(memchr(hdr, '\0', sizeof(hdr)) != NULL);
				FUZZ_CHECK(rfc2047_is_utf8(hdr, strlen(hdr)));
			}
		}
		memcpy(name, p->filename, sizeof(name));
		mime_safe_filename(name);
		fuzz_check_safe_name(name);
		n += walk(p->child, msg, len, depth + 1);
	}
	return n;
}

static void
check_scratch(void)
{
	DIR *d = opendir(scratch);
	struct dirent *de;
	char path[512];
	struct stat sb;

	FUZZ_CHECK(d != NULL);
	while ((de = readdir(d)) != NULL) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", scratch, de->d_name);
		FUZZ_CHECK(lstat(path, &sb) == 0 && S_ISREG(sb.st_mode));
		FUZZ_CHECK(unlink(path) == 0);
	}
	closedir(d);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	devnull = fopen("/dev/null", "w");
	snprintf(scratch, sizeof(scratch), "/tmp/correio-fuzz-mime-XXXXXX");
	FUZZ_CHECK(devnull != NULL && mkdtemp(scratch) != NULL);
	return 0;
}

static void
cleanup(void)
{
	if (scratch[0] != '\0') {
		check_scratch();
		rmdir(scratch);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy that is exactly the input, so a read past the end is caught. */
	char *msg = malloc(size ? size : 1);
	struct mime_part *root;
	static bool registered;

	if (!registered) {
		atexit(cleanup);
		registered = true;
	}
	FUZZ_CHECK(msg != NULL);
	memcpy(msg, data, size);
	root = mime_parse(msg, size);
	FUZZ_CHECK(root != NULL);
	FUZZ_CHECK(walk(root, msg, size, 0) <= MIME_MAX_PARTS + 1);
	(void)mime_text_part(root);
	mime_print_tree(devnull, root);
	if (size % 8 == 3) {
		int n = mime_save_attachments(root, scratch, true, devnull);
		FUZZ_CHECK(n >= -1);
		check_scratch();
	}
	mime_free(&root);
	free(msg);
	return 0;
}
