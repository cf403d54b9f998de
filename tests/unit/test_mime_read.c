/*
 * test_mime_read.c - the MIME reader on the tests/data corpus (messages made
 * by Python's email package, mpack, swaks and by hand): the tree of each, decoded
 * names, sizes and bytes, texts and headers; every prefix of every message
 * (truncation at each byte) and random token soup parsed without a crash;
 * 10,000 levels of nesting (multipart and message/rfc822) and 5,000 parts
 * bounded; file names made safe; attachments saved without overwriting or
 * following symlinks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "mime.h"
#include "rfc2047.h"

static char datadir[4096];

static char *
load(const char *name, size_t *len)
{
	char path[4200];
	FILE *f;
	char *p;
	long n;

	snprintf(path, sizeof(path), "%s/%s", datadir, name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	p = malloc((size_t)n + 1);
	assert_int_equal(fread(p, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return p;
}

static uint64_t
decoded_size(const struct mime_part *p)
{
	struct buf b;
	uint64_t n;

	buf_init(&b, 1 << 28);
	assert_int_equal(mime_decode_body(p, &b), 0);
	n = b.len;
	buf_free(&b);
	return n;
}

/* "type|encoding|filename|A|size" per part, depth-first, '\n' separated. */
static void
signature(const struct mime_part *p, struct buf *out)
{
	for (; p != NULL; p = p->next) {
		buf_printf(out, "%d:%s|%s|%s|%s|%llu\n", p->depth, p->type, p->encoding, p->filename,
		    p->attachment ? "A" : "", strncmp(p->type, "multipart/", 10) == 0 ? 0ULL :
		    (unsigned long long)decoded_size(p));
		signature(p->child, out);
	}
}

static void
collect_sizes(const struct mime_part *p, uint64_t *v, size_t *n)
{
	for (; p != NULL; p = p->next) {
		v[(*n)++] = strncmp(p->type, "multipart/", 10) == 0 ? p->bodylen : decoded_size(p);
		collect_sizes(p->child, v, n);
	}
}

/* The sizes mime_print_tree prints (counted without decoding for base64)
 * are the sizes mime_decode_body produces, part by part. */
static void
check_tree_sizes(const struct mime_part *root)
{
	uint64_t want[MIME_MAX_PARTS];
	size_t n = 0, k = 0, len = 0;
	char *text = NULL, *line, *save, *b;
	FILE *f = open_memstream(&text, &len);

	collect_sizes(root, want, &n);
	mime_print_tree(f, root);
	fclose(f);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		b = strstr(line, " bytes");
		assert_non_null(b);
		while (b > line && b[-1] >= '0' && b[-1] <= '9')
			b--;
		assert_true(k < n);
		if (strtoull(b, NULL, 10) != want[k])
			fail_msg("tree line '%s': size should be %llu", line, (unsigned long long)want[k]);
		k++;
	}
	assert_int_equal(k, n);
	free(text);
}

static const struct {
	const char *file;
	const char *sig;
} corpus[] = {
	{ "py_simple.eml", "0:text/plain|quoted-printable|||69\n" },
	{ "py_alternative_attachments.eml",
	  "0:multipart/mixed|7bit|||0\n"
	  "1:multipart/alternative|7bit|||0\n"
	  "2:text/plain|8bit|||39\n"
	  "2:text/html|8bit|||35\n"
	  "1:application/pdf|base64|relatório final.pdf|A|5000\n"
	  "1:image/png|base64|foto.png|A|3000\n"
	  "1:application/octet-stream|base64|dados das medições de latência e vazão do experimento "
	  "número três da disciplina de redes.bin|A|777\n" },
	{ "py_forward_rfc822.eml",
	  "0:multipart/mixed|7bit|||0\n"
	  "1:text/plain|7bit|||14\n"
	  "1:message/rfc822|8bit||A|2297\n"
	  "2:multipart/mixed|7bit|||0\n"
	  "3:text/plain|8bit|||27\n"
	  "3:text/csv|base64|dados.csv|A|1234\n" },
	{ "py_latin1.eml", "0:text/plain|quoted-printable|||28\n" },
	{ "mpack_blob.eml",
	  "0:multipart/mixed|7bit|||0\n"
	  "1:application/octet-stream|base64|blob.bin|A|3000\n" },
	{ "swaks_attachment.eml",
	  "0:multipart/mixed|7bit|||0\n"
	  "1:text/plain|7bit|||10\n"
	  "1:application/octet-stream|base64|sw.bin|A|1500\n" },
	{ "hand_rfc2231.eml",
	  "0:multipart/mixed|7bit|||0\n"
	  "1:text/plain|7bit|||14\n"
	  "1:application/octet-stream|base64|café résumé part.txt|A|100\n"
	  "1:application/octet-stream|base64|olá mundo.dat|A|10\n" },
	{ "hand_no_boundary.eml",
	  "0:multipart/mixed|7bit|||0\n"
	  "1:text/plain|7bit|||5\n"
	  "1:text/plain|7bit|||6\n" },
	{ "hand_truncated.eml",
	  "0:multipart/mixed|7bit|||0\n"
	  "1:text/plain|7bit|||5\n"
	  "1:image/png|base64|cut.png|A|142\n" },
	{ "hand_charsets.eml",
	  "0:multipart/mixed|7bit|||0\n"
	  "1:text/plain|7bit|||36\n"
	  "1:text/plain|7bit|||34\n"
	  "1:text/plain|7bit|||19\n"
	  "1:text/plain|8bit|||6\n" },
	{ "hand_base64_oneline.eml",
	  "0:multipart/mixed|7bit|||0\n"
	  "1:application/pdf|base64|doc.pdf|A|2000\n" },
	{ "hand_digest.eml",
	  "0:multipart/digest|7bit|||0\n"
	  "1:message/rfc822|7bit|||54\n"
	  "2:text/plain|7bit|||3\n"
	  "1:message/rfc822|7bit|||62\n"
	  "2:text/plain|7bit|||3\n" },
	{ "hand_lf_endings.eml",
	  "0:multipart/mixed|7bit|||0\n"
	  "1:text/plain|quoted-printable|||18\n"
	  "1:application/octet-stream|base64|lf.bin|A|200\n" },
	{ "hand_mbox_from.eml", "0:text/plain|quoted-printable|||10\n" },
	{ "hand_evil_names.eml",
	  "0:multipart/mixed|7bit|||0\n"
	  "1:application/octet-stream|base64|../../etc/passwd|A|1\n"
	  "1:application/octet-stream|base64|C:\\Windows\\evil.exe|A|2\n"
	  "1:application/octet-stream|base64|.bashrc|A|3\n"
	  "1:application/octet-stream|base64|-rf|A|4\n"
	  "1:application/octet-stream|base64|a\x01" "b\x1b[31m.txt|A|5\n"
	  "1:image/png|base64||A|6\n"
	  "1:application/octet-stream|base64|dup.txt|A|1\n"
	  "1:application/octet-stream|base64|dup.txt|A|2\n"
	  "1:application/octet-stream|base64|..|A|3\n" },
};

static void
test_corpus_trees(void **state)
{
	struct mime_part *root;
	struct buf sig;
	size_t i, len;
	char *msg;
	FILE *null = fopen("/dev/null", "w");

	(void)state;
	for (i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
		msg = load(corpus[i].file, &len);
		root = mime_parse(msg, len);
		assert_non_null(root);
		buf_init(&sig, 1 << 20);
		signature(root, &sig);
		if (strcmp(sig.data, corpus[i].sig) != 0)
			fail_msg("%s:\n%s\nexpected:\n%s", corpus[i].file, sig.data, corpus[i].sig);
		mime_print_tree(null, root);
		check_tree_sizes(root);
		buf_free(&sig);
		mime_free(&root);
		assert_null(root);
		free(msg);
	}
	fclose(null);
}

/* The attachments' bytes: pattern(n, seed)[i] = (i * 31 + seed) & 0xff (make_corpus.py). */
static void
test_corpus_bytes(void **state)
{
	static const struct { const char *file, *name; size_t n; int seed; } t[] = {
		{ "py_alternative_attachments.eml", "relatório final.pdf", 5000, 1 },
		{ "py_alternative_attachments.eml", "foto.png", 3000, 2 },
		{ "py_alternative_attachments.eml", "dados das medições de latência e vazão do "
		  "experimento número três da disciplina de redes.bin", 777, 3 },
		{ "py_forward_rfc822.eml", "dados.csv", 1234, 4 },
		{ "mpack_blob.eml", "blob.bin", 3000, 5 },
		{ "swaks_attachment.eml", "sw.bin", 1500, 11 },
		{ "hand_rfc2231.eml", "café résumé part.txt", 100, 6 },
		{ "hand_rfc2231.eml", "olá mundo.dat", 10, 7 },
		{ "hand_truncated.eml", "cut.png", 142, 8 },	/* what survived */
		{ "hand_base64_oneline.eml", "doc.pdf", 2000, 9 },
		{ "hand_lf_endings.eml", "lf.bin", 200, 10 },
	};
	struct mime_part *root;
	const struct mime_part *stack[64], *p, *hit;
	struct buf b;
	size_t i, k, len;
	int sp;
	char *msg;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		msg = load(t[i].file, &len);
		root = mime_parse(msg, len);
		hit = NULL;
		sp = 0;
		stack[sp++] = root;
		while (sp > 0 && hit == NULL) {
			for (p = stack[--sp]; p != NULL; p = p->next) {
				if (strcmp(p->filename, t[i].name) == 0)
					hit = p;
				if (p->child)
					stack[sp++] = p->child;
			}
		}
		if (hit == NULL)
			fail_msg("%s: no part named %s", t[i].file, t[i].name);
		buf_init(&b, 1 << 20);
		assert_int_equal(mime_decode_body(hit, &b), 0);
		assert_int_equal(b.len, t[i].n);
		for (k = 0; k < t[i].n; k++)
			if ((unsigned char)b.data[k] != ((k * 31 + (size_t)t[i].seed) & 0xff))
				fail_msg("%s %s: byte %zu differs", t[i].file, t[i].name, k);
		buf_free(&b);
		mime_free(&root);
		free(msg);
	}
}

static void
test_corpus_texts(void **state)
{
	static const struct { const char *file, *subject, *from, *text; } t[] = {
		{ "py_simple.eml", "Você gosta de chocolate?", "Ana Luísa <ana@lab.test>",
		  "Olá Bob,\r\nTudo bem? Este é um teste de acentuação: ç ã õ é.\r\n" },
		{ "py_alternative_attachments.eml",
		  "Relatório das atividades do laboratório de redes de computadores — versão "
		  "revisada após a reunião de orientação", "João Araújo <joao@lab.test>",
		  "Segue o relatório.\r\nAbraços,\r\nJoão\r\n" },
		{ "py_latin1.eml", "Café", "ana@lab.test", "Café com pão às três horas.\n" },
		{ "hand_charsets.eml", "café and “quoted”", "José <jose@lab.test>",
		  "utf-8 bytes declared us-ascii: café" },
		{ "hand_lf_endings.eml", "LF line endings only", "ana@lab.test", "soft break and é=" },
		{ "hand_mbox_from.eml", "starts with an mbox From_ line", "ana@lab.test", "Olá, Bob\r\n" },
		{ "hand_digest.eml", "digest", "list@lab.test", "one" },
	};
	struct mime_part *root;
	const struct mime_part *tp;
	struct buf raw, text;
	char v[512];
	size_t i, len;
	char *msg;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		msg = load(t[i].file, &len);
		root = mime_parse(msg, len);
		assert_int_equal(mime_header(root, "Subject", v, sizeof(v)), 0);
		assert_string_equal(v, t[i].subject);
		assert_int_equal(mime_header(root, "from", v, sizeof(v)), 0);
		assert_string_equal(v, t[i].from);
		assert_int_equal(mime_header(root, "X-Not-There", v, sizeof(v)), -1);
		tp = mime_text_part(root);
		assert_non_null(tp);
		buf_init(&raw, 1 << 20);
		buf_init(&text, 1 << 20);
		assert_int_equal(mime_decode_body(tp, &raw), 0);
		assert_int_equal(rfc2047_to_utf8(tp->charset, raw.data, raw.len, &text), 0);
		if (strcmp(text.data, t[i].text) != 0)
			fail_msg("%s: text '%s', expected '%s'", t[i].file, text.data, t[i].text);
		buf_free(&raw);
		buf_free(&text);
		mime_free(&root);
		free(msg);
	}
	/* the other charsets of hand_charsets.eml */
	msg = load("hand_charsets.eml", &len);
	root = mime_parse(msg, len);
	{
		static const char *want[] = { "utf-8 bytes declared us-ascii: café",
		    "latin-1 bytes declared utf-8: café", "unknown charset: ç", "Привет" };
		const struct mime_part *p = root->child;
		for (i = 0; i < 4; i++, p = p->next) {
			assert_non_null(p);
			buf_init(&raw, 4096);
			buf_init(&text, 4096);
			mime_decode_body(p, &raw);
			rfc2047_to_utf8(p->charset, raw.data, raw.len, &text);
			assert_string_equal(text.data, want[i]);
			buf_free(&raw);
			buf_free(&text);
		}
	}
	mime_free(&root);
	free(msg);
}

static void
walk_all(const struct mime_part *p, FILE *null, size_t *count, int *maxdepth)
{
	struct buf b;
	char v[256];

	for (; p != NULL; p = p->next) {
		(*count)++;
		if (p->depth > *maxdepth)
			*maxdepth = p->depth;
		assert_true(p->body + p->bodylen >= p->body);
		buf_init(&b, 1 << 26);
		(void)mime_decode_body(p, &b);
		buf_free(&b);
		(void)mime_header(p, "Subject", v, sizeof(v));
		walk_all(p->child, null, count, maxdepth);
	}
	(void)null;
}

/* Truncate every corpus message at every byte (step grows for large ones);
 * each prefix is copied to an exact-size buffer so ASan sees any overread. */
static void
test_every_prefix(void **state)
{
	struct mime_part *root;
	FILE *null = fopen("/dev/null", "w");
	size_t i, n, len, step, count;
	int maxdepth;
	char *msg, *copy;

	(void)state;
	for (i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
		msg = load(corpus[i].file, &len);
		step = len > 5000 ? 13 : 1;
		for (n = 0; n <= len; n += step) {
			copy = malloc(n ? n : 1);
			memcpy(copy, msg, n);
			root = mime_parse(copy, n);
			assert_non_null(root);
			count = 0;
			maxdepth = 0;
			walk_all(root, null, &count, &maxdepth);
			check_tree_sizes(root);
			(void)mime_text_part(root);
			mime_free(&root);
			free(copy);
		}
		free(msg);
	}
	fclose(null);
}

static void
test_deep_nesting(void **state)
{
	const int levels = 10000;
	struct mime_part *root;
	struct buf m;
	FILE *null = fopen("/dev/null", "w");
	size_t count;
	int i, maxdepth;
	clock_t t0;

	(void)state;
	/* 10,000 nested multiparts, each with its own boundary */
	buf_init(&m, 1 << 28);
	for (i = 0; i < levels; i++)
		buf_printf(&m, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i);
	buf_puts(&m, "Content-Type: text/plain\r\n\r\ndeepest\r\n");
	for (i = levels - 1; i >= 0; i--)
		buf_printf(&m, "--b%d--\r\n", i);
	t0 = clock();
	root = mime_parse(m.data, m.len);
	assert_non_null(root);
	count = 0;
	maxdepth = 0;
	walk_all(root, null, &count, &maxdepth);
	assert_true(maxdepth < MIME_MAX_DEPTH);
	assert_int_equal(count, MIME_MAX_DEPTH);
	mime_print_tree(null, root);
	mime_free(&root);
	assert_true((clock() - t0) / CLOCKS_PER_SEC < 20);
	buf_free(&m);

	/* 10,000 nested message/rfc822 */
	buf_init(&m, 1 << 28);
	for (i = 0; i < levels; i++)
		buf_puts(&m, "Subject: level\r\nContent-Type: message/rfc822\r\n\r\n");
	buf_puts(&m, "Subject: bottom\r\n\r\nbody\r\n");
	root = mime_parse(m.data, m.len);
	count = 0;
	maxdepth = 0;
	walk_all(root, null, &count, &maxdepth);
	assert_true(maxdepth < MIME_MAX_DEPTH);
	mime_print_tree(null, root);
	mime_free(&root);
	buf_free(&m);

	/* 10,000 levels sharing one boundary, never closed */
	buf_init(&m, 1 << 28);
	for (i = 0; i < levels; i++)
		buf_puts(&m, "Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\n");
	root = mime_parse(m.data, m.len);
	count = 0;
	maxdepth = 0;
	walk_all(root, null, &count, &maxdepth);
	assert_true(maxdepth < MIME_MAX_DEPTH);
	mime_free(&root);
	buf_free(&m);
	fclose(null);
}

static void
test_many_parts(void **state)
{
	struct mime_part *root;
	struct buf m;
	FILE *null = fopen("/dev/null", "w");
	size_t count = 0;
	int i, maxdepth = 0;

	(void)state;
	buf_init(&m, 1 << 26);
	buf_puts(&m, "Content-Type: multipart/mixed; boundary=p\r\n\r\n");
	for (i = 0; i < 5000; i++)
		buf_printf(&m, "--p\r\nContent-Type: application/octet-stream; name=f%d\r\n\r\nx\r\n", i);
	buf_puts(&m, "--p--\r\n");
	root = mime_parse(m.data, m.len);
	walk_all(root, null, &count, &maxdepth);
	assert_int_equal(count, MIME_MAX_PARTS);
	mime_free(&root);
	buf_free(&m);
	fclose(null);
}

/* Random soup of MIME tokens: parse, decode, print, free; nothing may crash. */
static void
test_token_soup(void **state)
{
	static const char *tokens[] = {
		"--b\r\n", "--b--\r\n", "--c\r\n", "\r\n", "\n", "Content-Type: multipart/mixed; boundary=b\r\n",
		"Content-Type: multipart/alternative; boundary=\"c\"\r\n", "Content-Type: message/rfc822\r\n",
		"Content-Transfer-Encoding: base64\r\n", "Content-Transfer-Encoding: quoted-printable\r\n",
		"Content-Disposition: attachment; filename*0*=utf-8''%C3; filename*1*=%A9\r\n",
		"Content-Type: text/plain; charset=\"x\r\n", "QUJD", "=\r\n", "=C3=A9", "=?utf-8?B?w6k=?=",
		" folded\r\n", "Subject: =?utf-8?Q?=C3?=\r\n", "name=\"", ";;;;", "(((", "\\", "\"",
		"Content-Type: multipart/digest; boundary=b\r\n", "\x00", "\xff",
	};
	struct mime_part *root;
	struct buf m;
	FILE *null = fopen("/dev/null", "w");
	unsigned seed = 1;
	size_t count;
	int i, k, n, maxdepth;
	char *copy;

	(void)state;
	buf_init(&m, 1 << 20);
	for (i = 0; i < 3000; i++) {
		buf_reset(&m);
		seed = seed * 1103515245 + 12345;
		n = (int)((seed >> 16) % 60);
		for (k = 0; k < n; k++) {
			seed = seed * 1103515245 + 12345;
			const char *t = tokens[(seed >> 16) % (sizeof(tokens) / sizeof(tokens[0]))];
			buf_append(&m, t, t[0] ? strlen(t) : 1);
		}
		copy = malloc(m.len ? m.len : 1);
		memcpy(copy, m.data ? m.data : "", m.len);
		root = mime_parse(copy, m.len);
		count = 0;
		maxdepth = 0;
		walk_all(root, null, &count, &maxdepth);
		check_tree_sizes(root);
		mime_free(&root);
		free(copy);
	}
	buf_free(&m);
	fclose(null);
}

static void
test_safe_filename(void **state)
{
	static const struct { const char *in, *out; } t[] = {
		{ "report.pdf", "report.pdf" },
		{ "relatório final.pdf", "relatório final.pdf" },
		{ "../../etc/passwd", "passwd" },
		{ "/etc/shadow", "shadow" },
		{ "C:\\Windows\\evil.exe", "evil.exe" },
		{ "dir/", "attachment" },
		{ "..", "attachment" },
		{ ".", "attachment" },
		{ "", "attachment" },
		{ ".bashrc", "_bashrc" },
		{ "-rf", "_rf" },
		{ "a\x01" "b\x1b[31m.txt", "a_b_[31m.txt" },
		{ "tab\there", "tab_here" },
		{ "bad\xff" "utf8\xc3.txt", "bad_utf8_.txt" },
		{ "c1\xc2\x9b" "x", "c1__x" },
		{ "trailing dots...", "trailing dots" },
		{ "name.txt   ", "name.txt" },
	};
	char name[600];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		snprintf(name, sizeof(name), "%s", t[i].in);
		mime_safe_filename(name);
		if (strcmp(name, t[i].out) != 0)
			fail_msg("'%s' -> '%s', expected '%s'", t[i].in, name, t[i].out);
	}
	/* long names: at most 200 bytes, a whole character, extension kept */
	memset(name, 0, sizeof(name));
	for (i = 0; i < 150; i++)
		memcpy(name + 2 * i, "é", 2);
	memcpy(name + 300, ".pdf", 5);
	mime_safe_filename(name);
	assert_true(strlen(name) <= 200);
	assert_true(rfc2047_is_utf8(name, strlen(name)));
	assert_string_equal(name + strlen(name) - 4, ".pdf");
}

static void
test_save_attachments(void **state)
{
	static const char *want[] = { "passwd", "evil.exe", "_bashrc", "_rf", "a_b_[31m.txt",
	    "part-6.png", "dup.txt", "dup-2.txt", "attachment" };
	char dir[4096], path[4300], target[4300], buf[16];
	struct mime_part *root;
	struct stat st;
	size_t len, i;
	char *msg;
	FILE *f;

	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/test_mime_read.XXXXXX");
	assert_non_null(mkdtemp(dir));
	msg = load("hand_evil_names.eml", &len);
	root = mime_parse(msg, len);
	f = fopen("/dev/null", "w");
	assert_int_equal(mime_save_attachments(root, dir, false, f), 9);
	for (i = 0; i < 9; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, want[i]);
		if (stat(path, &st) != 0)
			fail_msg("%s was not written", want[i]);
	}
	snprintf(path, sizeof(path), "%s/dup-2.txt", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 2);
	/* again without force: nothing overwritten, an error */
	snprintf(path, sizeof(path), "%s/passwd", dir);
	f = freopen("/dev/null", "w", f);
	FILE *w = fopen(path, "w");
	fputs("keep", w);
	fclose(w);
	assert_int_equal(mime_save_attachments(root, dir, false, f), -1);
	w = fopen(path, "r");
	assert_non_null(fgets(buf, sizeof(buf), w));
	fclose(w);
	assert_string_equal(buf, "keep");
	/* with force: overwritten */
	assert_int_equal(mime_save_attachments(root, dir, true, f), 9);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 1);
	/* a symlink planted under an attachment's name is not followed, even with force */
	snprintf(target, sizeof(target), "%s/target", dir);
	w = fopen(target, "w");
	fputs("precious", w);
	fclose(w);
	unlink(path);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(mime_save_attachments(root, dir, true, f), -1);
	assert_int_equal(stat(target, &st), 0);
	assert_int_equal(st.st_size, 8);
	/* a directory that does not exist */
	assert_int_equal(mime_save_attachments(root, "/nonexistent/dir", false, f), -1);
	fclose(f);
	mime_free(&root);
	free(msg);
	/* clean up */
	for (i = 0; i < 9; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, want[i]);
		unlink(path);
	}
	unlink(target);
	rmdir(dir);
}

/*
 * Headers end at the first line that cannot be a header field, as in
 * Python's email parser: the textbook message typed after DATA has no blank
 * line, and its text must not vanish into the header block.
 */
static void
test_headers_end_at_non_header_line(void **state)
{
	static const struct { const char *name, *msg, *subject, *body; } t[] = {
		{ "typed after DATA, trace added",
		  "Return-Path: <ana@consumidor.br>\r\nReceived: from consumidor.br ([127.0.0.1])\r\n"
		  "\tby mx.lab.test (correio) with SMTP id 1; Fri, 4 Dec 2026 20:00:00 +0000\r\n"
		  "Voc\xc3\xaa gosta de chocolate?\r\nE que tal ketchup?\r\n",
		  NULL, "Voc\xc3\xaa gosta de chocolate?\r\nE que tal ketchup?\r\n" },
		{ "no headers at all", "hello there\r\nsecond: line\r\n", NULL,
		  "hello there\r\nsecond: line\r\n" },
		{ "subject then text", "Subject: hi\r\nHello Bob!\r\n", "hi", "Hello Bob!\r\n" },
		{ "folded subject", "Subject: a\r\n  b\r\n\r\nbody\r\n", "a  b", "body\r\n" },
		{ "obsolete blank before colon", "Subject : old\r\n\r\nbody\r\n", "old",
		  "body\r\n" },
		{ "blank line still separates", "Subject: x\r\n\r\nNot: a header\r\n", "x",
		  "Not: a header\r\n" },
		{ "bare LF endings", "Subject: lf\nline one\n", "lf", "line one\n" },
	};
	struct mime_part *root;
	struct buf body;
	char v[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		root = mime_parse(t[i].msg, strlen(t[i].msg));
		assert_non_null(root);
		if (t[i].subject == NULL)
			assert_int_equal(mime_header(root, "Subject", v, sizeof(v)), -1);
		else {
			assert_int_equal(mime_header(root, "Subject", v, sizeof(v)), 0);
			assert_string_equal(v, t[i].subject);
		}
		buf_init(&body, 4096);
		assert_int_equal(mime_decode_body(mime_text_part(root), &body), 0);
		if (body.data == NULL || strcmp(body.data, t[i].body) != 0)
			fail_msg("%s: body '%s', expected '%s'", t[i].name,
			    body.data ? body.data : "", t[i].body);
		buf_free(&body);
		mime_free(&root);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_corpus_trees),
		cmocka_unit_test(test_corpus_bytes),
		cmocka_unit_test(test_corpus_texts),
		cmocka_unit_test(test_headers_end_at_non_header_line),
		cmocka_unit_test(test_every_prefix),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_many_parts),
		cmocka_unit_test(test_token_soup),
		cmocka_unit_test(test_safe_filename),
		cmocka_unit_test(test_save_attachments),
	};
	const char *slash;

	/* tests/unit/test_mime_read.c -> tests/data */
	slash = strrchr(__FILE__, '/');
	snprintf(datadir, sizeof(datadir), "%.*s/../data", slash ? (int)(slash - __FILE__) : 1,
	    slash ? __FILE__ : ".");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
