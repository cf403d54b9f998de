/*
 * show.c - `mailcli show FILE` (a message's main headers, decoded, and its
 * MIME tree) and `mailcli extract FILE --dir DIR [--force]` (its
 * attachments under safe names), for messages written by any client.
 *
 * Owns: loading the file (mmap, or standard input for "-") and the two
 * commands' options; the parsing, decoding and writing are mime_read.c's.
 * Never: prints a control character from the message to the terminal, or
 * writes outside DIR.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "mailcli.h"
#include "mime.h"

#define SHOW_STDIN_MAX	((size_t)1 << 31)	/* a message read from a pipe */

struct loaded {
	const char *data;
	size_t	 len;
	void	*map;		/* mmap'ed file, or NULL */
	struct buf b;		/* standard input */
};

static int
load_message(const char *path, struct loaded *m, const char *cmd)
{
	struct stat st;
	char chunk[65536];
	ssize_t r;
	int fd;

	memset(m, 0, sizeof(*m));
	buf_init(&m->b, SHOW_STDIN_MAX);
	if (strcmp(path, "-") == 0) {
		for (;;) {
			r = read(STDIN_FILENO, chunk, sizeof(chunk));
			if (r == -1 && errno == EINTR)
				continue;
			if (r == -1) {
				fprintf(stderr, "mailcli %s: standard input: %s\n", cmd, strerror(errno));
				return -1;
			}
			if (r == 0)
				break;
			if (buf_append(&m->b, chunk, (size_t)r) == -1) {
				fprintf(stderr, "mailcli %s: standard input too large\n", cmd);
				return -1;
			}
		}
		m->data = m->b.data ? m->b.data : "";
		m->len = m->b.len;
		return 0;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1) {
		fprintf(stderr, "mailcli %s: %s: %s\n", cmd, path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		fprintf(stderr, "mailcli %s: %s: not a regular file\n", cmd, path);
		close(fd);
		return -1;
	}
	m->len = (size_t)st.st_size;
	if (m->len == 0) {
		m->data = "";
	} else {
		m->map = mmap(NULL, m->len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m->map == MAP_FAILED) {
			fprintf(stderr, "mailcli %s: %s: %s\n", cmd, path, strerror(errno));
			m->map = NULL;
			close(fd);
			return -1;
		}
		m->data = m->map;
	}
	close(fd);
	return 0;
}

static void
unload_message(struct loaded *m)
{
	if (m->map != NULL)
		munmap(m->map, m->len);
	buf_free(&m->b);
}

/*
 * An mbox file (fetch --mbox writes mboxrd) holds messages each after a
 * "From " line; in mboxrd a body line starting with "From " is quoted as
 * ">From ", so every line starting with "From " is a separator. Returns the
 * number of messages (0: not an mbox, one message) and, when want > 0, sets
 * *msg_r and *len_r to message number want (1-based) without its "From " line.
 */
static size_t
mbox_find(const char *data, size_t len, size_t want, const char **msg_r, size_t *len_r)
{
	size_t n = 0, i = 0, start = 0;
	const char *nl;

	if (len < 5 || memcmp(data, "From ", 5) != 0)
		return 0;
	while (i < len) {
		if (len - i >= 5 && memcmp(data + i, "From ", 5) == 0) {
			if (n == want && want > 0) {
				*msg_r = data + start;
				*len_r = i - start;
			}
			n++;
			nl = memchr(data + i, '\n', len - i);
			start = nl != NULL ? (size_t)(nl - data) + 1 : len;
			i = start;
			continue;
		}
		nl = memchr(data + i, '\n', len - i);
		i = nl != NULL ? (size_t)(nl - data) + 1 : len;
	}
	if (n == want && want > 0) {
		*msg_r = data + start;
		*len_r = len - start;
	}
	return n;
}

/* A decoded header for people: control characters become '?'. */
static void
print_header(const struct mime_part *root, const char *name)
{
	char v[1024];
	unsigned char *u;
	int got;

	if ((got = mime_header_shown(root, name, v, sizeof(v))) == -1)
		return;
	for (u = (unsigned char *)v; *u; u++)
		if (*u < 0x20 || *u == 0x7f)
			*u = '?';
	printf("%-8s %s%s\n", name, v, got == 0 ? "" : strcmp(name, "From") == 0 ?
	    " (envelope sender)" : " (arrival)");
}

static void
show_usage(FILE *f)
{
	fprintf(f, "usage: mailcli show FILE.eml|-\n"
	    "Prints the message's From, To, Cc, Date and Subject (decoded) and its MIME tree:\n"
	    "one line per part with its number, type, charset, transfer encoding, decoded size,\n"
	    "and file name. An mbox file (fetch --mbox) is shown message by message.\n");
}

int
show_main(int argc, char **argv)
{
	struct mime_part *root;
	struct loaded m;
	const char *path = NULL;
	size_t nmsg, k;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			show_usage(stdout);
			return 0;
		}
		if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "mailcli show: unknown option '%s'\n", argv[i]);
			show_usage(stderr);
			return 2;
		}
		if (path != NULL) {
			fprintf(stderr, "mailcli show: one file at a time\n");
			return 2;
		}
		path = argv[i];
	}
	if (path == NULL) {
		show_usage(stderr);
		return 2;
	}
	if (load_message(path, &m, "show") == -1)
		return 1;
	nmsg = mbox_find(m.data, m.len, 0, NULL, NULL);
	for (k = nmsg > 1 ? 1 : 0; k <= nmsg; k++) {
		const char *msg = m.data;
		size_t len = m.len;

		if (nmsg > 1) {
			mbox_find(m.data, m.len, k, &msg, &len);
			printf("%s== message %zu of %zu in the mbox %s\n", k > 1 ? "\n" : "", k, nmsg,
			    path);
		}
		if ((root = mime_parse(msg, len)) == NULL) {
			fprintf(stderr, "mailcli show: out of memory\n");
			unload_message(&m);
			return 1;
		}
		print_header(root, "From");
		print_header(root, "To");
		print_header(root, "Cc");
		print_header(root, "Date");
		print_header(root, "Subject");
		printf("\n");
		mime_print_tree(stdout, root);
		mime_free(&root);
		if (nmsg <= 1)
			break;
	}
	unload_message(&m);
	return fflush(stdout) == 0 ? 0 : 1;
}

static void
extract_usage(FILE *f)
{
	fprintf(f, "usage: mailcli extract FILE.eml|- --dir DIR [--force] [--message N]\n"
	    "Writes every attachment of the message into DIR (created if missing), decoded,\n"
	    "under a safe name\n"
	    "(no path separators, no leading dots, no control characters). Existing files\n"
	    "are not overwritten unless --force. In an mbox file (fetch --mbox), --message N\n"
	    "picks the message (numbered as mailcli show FILE numbers them).\n");
}

int
extract_main(int argc, char **argv)
{
	struct mime_part *root;
	struct loaded m;
	const char *path = NULL, *dir = NULL, *msg;
	bool force = false;
	size_t nmsg, len;
	long want = 0;
	char *end;
	int i, n;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			extract_usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--force") == 0 || strcmp(argv[i], "-f") == 0)
			force = true;
		else if (strcmp(argv[i], "--dir") == 0 || strcmp(argv[i], "-d") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "mailcli extract: %s needs a directory\n", argv[i]);
				return 2;
			}
			dir = argv[++i];
		} else if (strncmp(argv[i], "--dir=", 6) == 0)
			dir = argv[i] + 6;
		else if (strcmp(argv[i], "--message") == 0 || strcmp(argv[i], "-m") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "mailcli extract: %s needs a message number\n", argv[i]);
				return 2;
			}
			want = strtol(argv[++i], &end, 10);
			if (*argv[i] == '\0' || *end != '\0' || want < 1 || want > 1000000) {
				fprintf(stderr, "mailcli extract: --message takes a message number, "
				    "not '%s'\n", argv[i]);
				return 2;
			}
		}
		else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			fprintf(stderr, "mailcli extract: unknown option '%s'\n", argv[i]);
			extract_usage(stderr);
			return 2;
		} else if (path != NULL) {
			fprintf(stderr, "mailcli extract: one file at a time\n");
			return 2;
		} else
			path = argv[i];
	}
	if (path == NULL || dir == NULL) {
		extract_usage(stderr);
		return 2;
	}
	if (mkdir(dir, 0777) == -1 && errno != EEXIST) {
		fprintf(stderr, "mailcli extract: %s: %s\n", dir, strerror(errno));
		return 1;
	}
	if (load_message(path, &m, "extract") == -1)
		return 1;
	msg = m.data;
	len = m.len;
	nmsg = mbox_find(m.data, m.len, 0, NULL, NULL);
	if (nmsg > 1 && want == 0) {
		fprintf(stderr, "mailcli extract: %s is an mbox with %zu messages; give --message N "
		    "(mailcli show %s numbers them)\n", path, nmsg, path);
		unload_message(&m);
		return 2;
	}
	if (want > 0 && (size_t)want > (nmsg == 0 ? 1 : nmsg)) {
		fprintf(stderr, "mailcli extract: %s has %zu message%s, no message %ld\n", path,
		    nmsg == 0 ? (size_t)1 : nmsg, nmsg > 1 ? "s" : "", want);
		unload_message(&m);
		return 1;
	}
	if (nmsg > 1)
		mbox_find(m.data, m.len, (size_t)want, &msg, &len);
	if ((root = mime_parse(msg, len)) == NULL) {
		fprintf(stderr, "mailcli extract: out of memory\n");
		unload_message(&m);
		return 1;
	}
	n = mime_save_attachments(root, dir, force, stdout);
	if (n == 0)
		printf("no attachments\n");
	mime_free(&root);
	unload_message(&m);
	fflush(stdout);
	return n < 0 ? 1 : 0;
}
