/*
 * test_mime_write.c - the writing side of compose: header folding (plain and
 * encoded), address lists, RFC 2231 parameters, 7bit/quoted-printable
 * choice, base64 line layout for many sizes (and compose_size agreeing with
 * it), boundaries, dates; and compose's contract: header injection and bad
 * input refused before anything is written, Bcc only in the envelope,
 * deterministic output byte-identical, size known before writing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>
#include <cmocka.h>

#include "b64.h"
#include "compose.h"
#include "mime_write.h"
#include "qp.h"
#include "rfc2047.h"

static int
buf_sink(void *ctx, const void *p, size_t n)
{
	return buf_append(ctx, p, n);
}

static struct mime_out
out_to(struct buf *b)
{
	struct mime_out w = { buf_sink, b, 0, false };
	return w;
}

/* Every line ends in CRLF, is at most max characters, continuation lines
 * start with whitespace; returns the value unfolded (CRLF removed). */
static char *
check_folded(const char *h, size_t max)
{
	const char *p = h, *e;
	char *u = calloc(1, strlen(h) + 1);
	size_t k = 0;
	bool first = true;

	while (*p) {
		e = strstr(p, "\r\n");
		assert_non_null(e);
		if ((size_t)(e - p) > max)
			fail_msg("line of %zu characters (max %zu): '%.*s'", (size_t)(e - p), max,
			    (int)(e - p), p);
		if (!first)
			assert_true(*p == ' ' || *p == '\t');
		assert_true(e > p);
		memcpy(u + k, p, (size_t)(e - p));
		k += (size_t)(e - p);
		p = e + 2;
		first = false;
	}
	return u;
}

static void
test_fold_unstructured(void **state)
{
	const char *subj = "This is a rather long subject line written in plain ASCII that "
	    "certainly needs to be folded more than once because it goes on and on about the "
	    "laboratory schedule for the next semester";
	struct buf b;
	struct mime_out w;
	char *u;

	(void)state;
	buf_init(&b, 1 << 16);
	w = out_to(&b);
	assert_int_equal(mime_write_unstructured(&w, "Subject", subj), 0);
	u = check_folded(b.data, 78);
	assert_memory_equal(u, "Subject: ", 9);
	assert_string_equal(u + 9, subj);
	assert_int_equal(w.count, b.len);
	free(u);
	/* short: one line, as is */
	buf_reset(&b);
	assert_int_equal(mime_write_unstructured(&w, "Subject", "Hi there"), 0);
	assert_string_equal(b.data, "Subject: Hi there\r\n");
	/* multiple spaces survive folding */
	buf_reset(&b);
	assert_int_equal(mime_write_unstructured(&w, "X-Spaces", "a  b   c"), 0);
	assert_string_equal(b.data, "X-Spaces: a  b   c\r\n");
	buf_free(&b);
}

static void
test_fold_encoded(void **state)
{
	static const char *subjects[] = {
		"Você gosta de chocolate?",
		"Relatório das atividades do laboratório de redes de computadores — versão "
		"revisada após a reunião de orientação com o professor responsável",
		"ãõçé€ãõçé€ãõçé€ãõçé€ãõçé€ãõçé€ãõçé€ãõçé€ãõçé€ãõçé€ãõçé€ãõçé€",
	};
	struct buf b, dec;
	struct mime_out w;
	size_t i;
	char *u, *save, *tok;

	(void)state;
	buf_init(&b, 1 << 16);
	buf_init(&dec, 1 << 16);
	for (i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
		buf_reset(&b);
		w = out_to(&b);
		assert_int_equal(mime_write_unstructured(&w, "Subject", subjects[i]), 0);
		u = check_folded(b.data, 76);	/* RFC 2047 2: lines with encoded words */
		buf_reset(&dec);
		assert_int_equal(rfc2047_decode(u + 9, strlen(u + 9), &dec), 0);
		assert_string_equal(dec.data, subjects[i]);
		for (tok = strtok_r(u + 9, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
			assert_true(strlen(tok) <= RFC2047_WORD_MAX);
		free(u);
	}
	assert_string_equal(b.data[0] ? "" : "x", "");
	buf_reset(&b);
	assert_int_equal(mime_write_unstructured(&w, "Subject", subjects[0]), 0);
	assert_string_equal(b.data, "Subject: =?utf-8?Q?Voc=C3=AA_gosta_de_chocolate=3F?=\r\n");
	/* text that looks like an encoded word is encoded, so it reads back as written */
	buf_reset(&b);
	assert_int_equal(mime_write_unstructured(&w, "Subject", "=?utf-8?Q?x?="), 0);
	u = check_folded(b.data, 78);
	buf_reset(&dec);
	rfc2047_decode(u + 9, strlen(u + 9), &dec);
	assert_string_equal(dec.data, "=?utf-8?Q?x?=");
	free(u);
	buf_free(&b);
	buf_free(&dec);
}

static void
test_addresses(void **state)
{
	static const struct { const char *display, *addr, *want; } t[] = {
		{ "Ana", "ana@lab.test", "To: Ana <ana@lab.test>\r\n" },
		{ "Ana Luisa Souza", "ana@lab.test", "To: Ana Luisa Souza <ana@lab.test>\r\n" },
		{ NULL, "bob@lab.test", "To: bob@lab.test\r\n" },
		{ "Smith, John", "j@lab.test", "To: \"Smith, John\" <j@lab.test>\r\n" },
		{ "a \"q\" b", "x@lab.test", "To: \"a \\\"q\\\" b\" <x@lab.test>\r\n" },
		{ "João Araújo", "joao@lab.test", "To: =?utf-8?B?Sm/Do28gQXJhw7pqbw==?= <joao@lab.test>\r\n" },
		/* plain atoms stay plain; each run between them is one encoded word, so
		 * no two encoded words touch (Python's phrase parser would add a space) */
		{ "não xxx Ελληνικά", "x@lab.test",
		  "To: =?utf-8?Q?n=C3=A3o?= xxx =?utf-8?B?zpXOu867zrfOvc65zrrOrA==?=\r\n <x@lab.test>\r\n" },
		/* (76, not 78: the line holds encoded words, RFC 2047 2) */
		{ "Silva, Ana Luísa; comma, semi; \"quotes\" and a rather long tail of words", "a@lab.test",
		  "To: =?utf-8?Q?Silva=2C?= Ana\r\n"
		  " =?utf-8?B?THXDrXNhOyBjb21tYSwgc2VtaTsgInF1b3RlcyI=?= and a rather long tail\r\n"
		  " of words <a@lab.test>\r\n" },
		/* a long quoted-string folds at its spaces */
		{ "Silva, Ana; and a rather long tail of words to make this display name long",
		  "a@lab.test", "To: \"Silva, Ana; and a rather long tail of words to make this display name\r\n"
		  " long\" <a@lab.test>\r\n" },
		{ "Prof. Cecília Müller da Silva", "c@lab.test",
		  "To: =?utf-8?Q?Prof=2E_Cec=C3=ADlia_M=C3=BCller?= da Silva <c@lab.test>\r\n" },
		{ "a=?b", "x@lab.test", "To: =?utf-8?Q?a=3D=3Fb?= <x@lab.test>\r\n" },
	};
	struct compose_addr many[20];
	char names[20][32], addrs[20][32];
	struct buf b;
	struct mime_out w;
	size_t i;
	char *u;

	(void)state;
	buf_init(&b, 1 << 16);
	w = out_to(&b);
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		struct compose_addr a = { (char *)t[i].display, (char *)t[i].addr };
		buf_reset(&b);
		assert_int_equal(mime_write_addresses(&w, "To", &a, 1), 0);
		assert_string_equal(b.data, t[i].want);
	}
	for (i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "Estudante Número %zu", i);
		snprintf(addrs[i], sizeof(addrs[i]), "aluno%zu@lab.test", i);
		many[i].display = names[i];
		many[i].addr = addrs[i];
	}
	buf_reset(&b);
	assert_int_equal(mime_write_addresses(&w, "Cc", many, 20), 0);
	u = check_folded(b.data, 78);
	for (i = 0; i < 20; i++)
		assert_non_null(strstr(u, addrs[i]));
	free(u);
	buf_free(&b);
}

static void
test_param_2231(void **state)
{
	const char *longname = "relatório das medições de latência e vazão do experimento "
	    "número três da disciplina de redes — versão final revisada.pdf";
	struct mime_hdr h;
	struct buf b, raw, dec;
	struct mime_out w;
	char *u, *p, *q;
	int idx = 0;

	(void)state;
	buf_init(&b, 1 << 16);
	w = out_to(&b);
	assert_int_equal(mime_hdr_begin(&h, "Content-Disposition"), 0);
	assert_int_equal(mime_hdr_token(&h, "attachment;", 11), 0);
	assert_int_equal(mime_hdr_param_2231(&h, "filename", "report.pdf"), 0);
	assert_int_equal(mime_hdr_end(&h, &w), 0);
	assert_string_equal(b.data, "Content-Disposition: attachment; filename=\"report.pdf\"\r\n");

	buf_reset(&b);
	assert_int_equal(mime_hdr_begin(&h, "Content-Disposition"), 0);
	assert_int_equal(mime_hdr_token(&h, "attachment;", 11), 0);
	assert_int_equal(mime_hdr_param_2231(&h, "filename", longname), 0);
	assert_int_equal(mime_hdr_end(&h, &w), 0);
	u = check_folded(b.data, 78);
	/* reassemble filename*0*, *1*, ... and percent-decode */
	buf_init(&raw, 4096);
	for (p = u;; idx++) {
		char key[32];
		snprintf(key, sizeof(key), "filename*%d*=", idx);
		if ((p = strstr(u, key)) == NULL)
			break;
		p += strlen(key);
		if (idx == 0) {
			assert_memory_equal(p, "utf-8''", 7);
			p += 7;
		}
		for (q = p; *q && *q != ';' && *q != ' '; q++) {
			if (*q == '%') {
				char hex[3] = { q[1], q[2], 0 };
				char c = (char)strtol(hex, NULL, 16);
				buf_append(&raw, &c, 1);
				q += 2;
			} else
				buf_append(&raw, q, 1);
		}
	}
	assert_true(idx >= 3);
	buf_init(&dec, 4096);
	assert_string_equal(raw.data, longname);
	free(u);

	/* attachment headers: 2047 name= for old clients, 2231 filename */
	buf_reset(&b);
	assert_int_equal(mime_write_attachment_headers(&w, "application/pdf", "relatório.pdf"), 0);
	assert_non_null(strstr(b.data, "Content-Type: application/pdf; name=\"=?utf-8?"));
	assert_non_null(strstr(b.data, "filename*0*=utf-8''relat%C3%B3rio.pdf"));
	assert_non_null(strstr(b.data, "Content-Transfer-Encoding: base64\r\n"));
	for (p = b.data; (q = strstr(p, "\r\n")) != NULL; p = q + 2)
		assert_true(q - p <= 78);
	buf_free(&raw);
	buf_free(&dec);
	buf_free(&b);
}

static void
test_text_encoding(void **state)
{
	static const struct { const char *in; const char *enc; } t[] = {
		{ "", "7bit" }, { "hello\n", "7bit" }, { "hello\r\nworld\r\n", "7bit" },
		{ "tab\tinside\n", "7bit" }, { "olá\n", "quoted-printable" },
		{ "trailing \n", "quoted-printable" }, { "trailing\t", "quoted-printable" },
		{ "bell\x07\n", "quoted-printable" }, { "lone\rcr\n", "quoted-printable" },
		{ "a=b and =_ are fine in 7bit\n", "7bit" },
	};
	char line[100];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		assert_string_equal(mime_text_encoding(t[i].in, strlen(t[i].in)), t[i].enc);
	memset(line, 'x', sizeof(line));
	line[78] = '\n';
	assert_string_equal(mime_text_encoding(line, 79), "7bit");	/* 78: ok */
	line[78] = 'x';
	line[79] = '\n';
	assert_string_equal(mime_text_encoding(line, 80), "quoted-printable");
}

static char *
temp_file(const unsigned char *data, size_t n)
{
	char *path = strdup("/tmp/test_mime_write.XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, n), (ssize_t)n);
	close(fd);
	return path;
}

static void
test_base64_layout(void **state)
{
	static const size_t sizes[] = { 0, 1, 2, 3, 56, 57, 58, 76, 100, 1000, 65536, 200001,
	    MIME_B64_CHUNK + 1, 3 * MIME_B64_CHUNK - 2 };
	struct b64_mime_decoder d;
	struct buf b;
	struct mime_out w, cw = { NULL, NULL, 0, false };
	unsigned char *data, *back;
	char err[256], *path;
	size_t i, k, n, linelen;
	int fd;

	(void)state;
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		n = sizes[i];
		data = malloc(n + 1);
		for (k = 0; k < n; k++)
			data[k] = (unsigned char)(k * 131 + 17);
		path = temp_file(data, n);
		buf_init(&b, 1 << 24);
		w = out_to(&b);
		fd = open(path, O_RDONLY);
		assert_int_equal(mime_write_base64_fd(&w, fd, n, err, sizeof(err)), 0);
		close(fd);
		assert_int_equal(b.len, mime_base64_size(n));
		cw.count = 0;
		assert_int_equal(mime_write_base64_fd(&cw, -1, n, err, sizeof(err)), 0);
		assert_int_equal(cw.count, b.len);
		/* CRLF lines of exactly 76, the last one shorter (or 76) */
		for (k = 0, linelen = 0; k < b.len; k++) {
			if (b.data[k] == '\r') {
				assert_int_equal(b.data[k + 1], '\n');
				if (k + 2 < b.len)
					assert_int_equal(linelen, 76);
				assert_true(linelen > 0 && linelen <= 76);
				linelen = 0;
				k++;
			} else {
				assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
				    b.data[k]));
				linelen++;
			}
		}
		assert_int_equal(linelen, 0);	/* ends with CRLF */
		back = malloc(b.len + 4);
		b64_mime_decode_init(&d);
		assert_int_equal(b64_mime_decode(&d, b.data ? b.data : "", b.len, back), (long)n);
		assert_memory_equal(back, data, n);
		/* the file is shorter than announced: refused */
		if (n > 0) {
			buf_reset(&b);
			fd = open(path, O_RDONLY);
			assert_int_equal(mime_write_base64_fd(&w, fd, n + 1, err, sizeof(err)), -1);
			assert_non_null(strstr(err, "changed"));
			close(fd);
		}
		unlink(path);
		free(path);
		free(back);
		free(data);
		buf_free(&b);
	}
}

static void
test_boundary_and_date(void **state)
{
	char bnd[72], date[64];
	struct buf q;

	(void)state;
	mime_boundary_make(bnd, sizeof(bnd), "mixed", 0xff);
	assert_string_equal(bnd, "=_correio_mixed_00000000000000ff");
	assert_true(strlen(bnd) <= 70);	/* RFC 2046 5.1.1 */
	assert_true(mime_boundary_is_safe(bnd, "text with =_correio_alt but not the other", 41));
	assert_false(mime_boundary_is_safe(bnd, "--=_correio_mixed_00000000000000ff\r\n", 36));
	/* QP of a text holding the boundary cannot contain it */
	buf_init(&q, 4096);
	assert_int_equal(qp_encode("--=_correio_mixed_00000000000000ff\n", 35, &q), 0);
	assert_true(mime_boundary_is_safe(bnd, q.data, q.len));
	buf_free(&q);

	mime_date(0, true, date, sizeof(date));
	assert_string_equal(date, "Thu, 01 Jan 1970 00:00:00 +0000");
	mime_date(1700000000, true, date, sizeof(date));
	assert_string_equal(date, "Tue, 14 Nov 2023 22:13:20 +0000");
	setenv("TZ", "BRT3", 1);
	tzset();
	mime_date(1700000000, false, date, sizeof(date));
	assert_string_equal(date, "Tue, 14 Nov 2023 19:13:20 -0300");
	setenv("TZ", "IST-5:30", 1);
	tzset();
	mime_date(1700000000, false, date, sizeof(date));
	assert_string_equal(date, "Wed, 15 Nov 2023 03:43:20 +0530");
	unsetenv("TZ");
	tzset();
}

/* ---- compose ---- */

static int
parse(struct compose_opts *o, int argc, const char *const *argv, char *err, size_t errlen)
{
	int i, r;

	for (i = 0; i < argc; i++) {
		r = compose_parse_arg(o, argc, (char **)argv, &i, err, errlen);
		if (r != 1)
			return r == 0 ? -2 : -1;
	}
	return 0;
}

static void
test_compose_refuses(void **state)
{
	static const struct { const char *argv[4]; int argc; const char *msg; } t[] = {
		{ { "--subject", "hi\r\nBcc: eve@evil.test" }, 2, "line break" },
		{ { "--subject=hi\nX: y" }, 1, "line break" },
		{ { "--to", "bob@lab.test\r\nRCPT TO:<eve@evil.test>" }, 2, "line break" },
		{ { "--from", "Ana\n <ana@lab.test>" }, 2, "line break" },
		{ { "--header", "X-A: b\r\nBcc: e@v.test" }, 2, "line break" },
		{ { "--attach", "/etc/hosts;name=a\nb" }, 2, "line break" },
		{ { "--to", "not an address" }, 2, "bad address" },
		{ { "--to", "bob@" }, 2, "bad address" },
		{ { "--to", "bob" }, 2, "bad address" },
		{ { "--to", "Bob <bob@lab.test" }, 2, "bad address" },
		{ { "--to", "bob@lab.test,,ana@lab.test" }, 2, "empty address" },
		{ { "--from", "a@lab.test, b@lab.test" }, 2, "exactly one" },
		{ { "--header", "Bcc: eve@evil.test" }, 2, "set by its own option" },
		{ { "--header", "Content-Type: text/html" }, 2, "set by its own option" },
		{ { "--header", "No colon" }, 2, "Name: value" },
		{ { "--header", "Bad Name: x" }, 2, "bad character" },
		{ { "--subject", "bell\x07" }, 2, "control" },
		{ { "--subject", "caf\xe9" }, 2, "UTF-8" },
		{ { "--attach", "x;type=nonsense" }, 2, "bad type" },
		{ { "--subject" }, 1, "needs a value" },
		{ { "--text", "a", "--body", "f" }, 4, "once" },
	};
	struct compose_opts o;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		compose_init(&o);
		err[0] = '\0';
		assert_int_equal(parse(&o, t[i].argc, t[i].argv, err, sizeof(err)), -1);
		if (strstr(err, t[i].msg) == NULL)
			fail_msg("case %zu: error '%s' does not say '%s'", i, err, t[i].msg);
		compose_free(&o);
	}
	/* not a compose option: 0, left for the caller (send's own options) */
	compose_init(&o);
	{
		char *argv[] = { "--server", "localhost" };
		int k = 0;
		assert_int_equal(compose_parse_arg(&o, 2, argv, &k, err, sizeof(err)), 0);
		assert_int_equal(k, 0);
	}
	compose_free(&o);
}

static void
test_compose_prepare_errors(void **state)
{
	static const struct { const char *argv[6]; int argc; const char *msg; } t[] = {
		{ { "--to", "bob@lab.test", "--text", "x" }, 4, "no sender" },
		{ { "--from", "ana@lab.test", "--text", "x" }, 4, "no recipient" },
		{ { "--from", "ana@lab.test", "--to", "b@lab.test", "--attach", "/nonexistent/file.pdf" }, 6,
		    "No such file" },
		{ { "--from", "ana@lab.test", "--to", "b@lab.test", "--attach", "/tmp" }, 6,
		    "not a regular file" },
		{ { "--from", "ana@lab.test", "--to", "b@lab.test", "--body", "/nonexistent/body" }, 6,
		    "No such file" },
	};
	struct compose_opts o;
	char err[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		compose_init(&o);
		assert_int_equal(parse(&o, t[i].argc, t[i].argv, err, sizeof(err)), 0);
		if (o.text == NULL && o.body_path == NULL)
			o.text = strdup("");
		err[0] = '\0';
		assert_int_equal(compose_prepare(&o, err, sizeof(err)), -1);
		if (strstr(err, t[i].msg) == NULL)
			fail_msg("case %zu: error '%s' does not say '%s'", i, err, t[i].msg);
		compose_free(&o);
	}
}

/* Compose with argv; returns the message (caller frees) and checks compose_size. */
static char *
compose(int argc, const char **argv, size_t *len, struct compose_opts *keep)
{
	struct compose_opts o;
	struct buf b;
	uint64_t size;
	char err[512];

	compose_init(&o);
	if (parse(&o, argc, argv, err, sizeof(err)) != 0)
		fail_msg("parse: %s", err);
	if (compose_prepare(&o, err, sizeof(err)) != 0)
		fail_msg("prepare: %s", err);
	assert_int_equal(compose_size(&o, &size), 0);
	buf_init(&b, 1 << 26);
	if (compose_write(&o, buf_sink, &b, err, sizeof(err)) != 0)
		fail_msg("write: %s", err);
	assert_int_equal(size, b.len);	/* SIZE= is exact */
	*len = b.len;
	if (keep != NULL)
		*keep = o;
	else
		compose_free(&o);
	return b.data;
}

static void
test_compose_messages(void **state)
{
	unsigned char bin[5000];
	char *att, *att0, spec[300], spec0[300];
	char *m1, *m2;
	size_t l1, l2, k;
	struct compose_opts o;

	(void)state;
	for (k = 0; k < sizeof(bin); k++)
		bin[k] = (unsigned char)(k * 7);
	att = temp_file(bin, sizeof(bin));
	att0 = temp_file(bin, 0);
	snprintf(spec, sizeof(spec), "%s;name=relatório final.bin;type=application/pdf", att);
	snprintf(spec0, sizeof(spec0), "%s;name=empty.dat", att0);
	setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
	{
		const char *argv[] = { "--from", "João Araújo <joao@lab.test>", "--to", "Bob <bob@lab.test>",
		    "--cc", "ana@lab.test", "--bcc", "eve@lab.test, BOB@LAB.TEST, bob@LAB.test",
		    "--subject", "Você gosta de chocolate?", "--text", "Olá!\nlinha 2\n",
		    "--attach", spec, "--attach", spec0, "--header", "X-Course: Redes" };
		int argc = sizeof(argv) / sizeof(argv[0]);
		m1 = compose(argc, argv, &l1, &o);
		m2 = compose(argc, argv, &l2, NULL);
		/* deterministic: byte-identical */
		assert_int_equal(l1, l2);
		assert_memory_equal(m1, m2, l1);
		/* Bcc nowhere in the message, but in the envelope (duplicates removed) */
		assert_null(strstr(m1, "eve@lab.test"));
		assert_null(strstr(m1, "Bcc"));
		assert_string_equal(o.env_from, "joao@lab.test");
		assert_int_equal(o.env_nrcpt, 4);	/* bob, ana, eve, BOB@LAB.TEST (local part differs) */
		assert_string_equal(o.env_rcpt[0], "bob@lab.test");
		assert_string_equal(o.env_rcpt[1], "ana@lab.test");
		assert_string_equal(o.env_rcpt[2], "eve@lab.test");
		assert_string_equal(o.env_rcpt[3], "BOB@LAB.TEST");
		/* headers */
		assert_non_null(strstr(m1, "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"));
		assert_non_null(strstr(m1, "@lab.test>\r\n"));
		assert_non_null(strstr(m1, "Message-ID: <1700000000."));
		assert_non_null(strstr(m1, "MIME-Version: 1.0\r\n"));
		assert_non_null(strstr(m1, "X-Course: Redes\r\n"));
		assert_non_null(strstr(m1, "Content-Type: multipart/mixed;"));
		assert_non_null(strstr(m1, "Content-Type: application/pdf;"));
		/* CRLF only: no bare LF, no line over 998 */
		for (k = 0; k < l1; k++)
			if (m1[k] == '\n')
				assert_true(k > 0 && m1[k - 1] == '\r');
		free(m1);
		free(m2);
		compose_free(&o);
	}
	unsetenv("SOURCE_DATE_EPOCH");
	{
		/* single part, 7bit; random boundaries/ids differ between runs */
		const char *argv[] = { "--from", "ana@lab.test", "--to", "bob@lab.test", "--text", "hello\n" };
		m1 = compose(6, argv, &l1, NULL);
		assert_non_null(strstr(m1, "Content-Type: text/plain; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: 7bit\r\n\r\nhello\r\n"));
		assert_null(strstr(m1, "multipart"));
		m2 = compose(6, argv, &l2, NULL);
		assert_true(strstr(m1, "Message-ID: ") != NULL);
		assert_false(strcmp(strstr(m1, "Message-ID: "), strstr(m2, "Message-ID: ")) == 0);
		free(m1);
		free(m2);
	}
	{
		/* --html: multipart/alternative; with an attachment, nested in mixed (size exact) */
		char *html = temp_file((const unsigned char *)"<p>Ol\xc3\xa1</p>\n", strlen("<p>Ol\xc3\xa1</p>\n"));
		const char *argv[] = { "--from", "ana@lab.test", "--to", "bob@lab.test", "--text", "oi\n",
		    "--html", html, "--attach", spec0 };
		m1 = compose(8, argv, &l1, NULL);
		assert_non_null(strstr(m1, "Content-Type: multipart/alternative;"));
		assert_null(strstr(m1, "multipart/mixed"));
		free(m1);
		m1 = compose(10, argv, &l1, NULL);
		assert_true(strstr(m1, "multipart/mixed") < strstr(m1, "multipart/alternative"));
		assert_non_null(strstr(m1, "Content-Type: text/html; charset=utf-8\r\n"
		    "Content-Transfer-Encoding: quoted-printable\r\n\r\n<p>Ol=C3=A1</p>\r\n"));
		free(m1);
		unlink(html);
		free(html);
	}
	{
		/* only Bcc: the undisclosed-recipients group */
		const char *argv[] = { "--from", "ana@lab.test", "--bcc", "bob@lab.test", "--text", "" };
		m1 = compose(6, argv, &l1, NULL);
		assert_non_null(strstr(m1, "To: undisclosed-recipients:;\r\n"));
		assert_null(strstr(m1, "bob@lab.test"));
		free(m1);
	}
	unlink(att);
	unlink(att0);
	free(att);
	free(att0);
}

/* A 7bit text that contains our boundary: compose picks another one. */
static void
test_compose_boundary_collision(void **state)
{
	struct compose_opts o;
	char text[200], *spec;
	const char *argv[] = { "--from", "ana@lab.test", "--to", "bob@lab.test", "--deterministic",
	    "--text", NULL, "--attach", NULL };
	unsigned char one = 'x';
	char *att = temp_file(&one, 1);
	size_t l;
	char *m;

	(void)state;
	unsetenv("SOURCE_DATE_EPOCH");
	spec = att;
	argv[8] = spec;
	/* a 7bit text holding "--=_correio_..." lines: the boundary chosen is not in it */
	snprintf(text, sizeof(text), "--=_correio_mixed_0000000000000000\n--=_correio_mixed_%s\n", "x");
	argv[6] = text;
	m = compose(9, argv, &l, &o);
	assert_true(mime_boundary_is_safe(o.boundary_mixed, text, strlen(text)));
	assert_string_equal(mime_text_encoding(text, strlen(text)), "7bit");
	assert_non_null(strstr(m, "\r\n--=_correio_mixed_0000000000000000\r\n--=_correio_mixed_x\r\n"));
	compose_free(&o);
	free(m);
	unlink(att);
	free(att);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fold_unstructured),
		cmocka_unit_test(test_fold_encoded),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_param_2231),
		cmocka_unit_test(test_text_encoding),
		cmocka_unit_test(test_base64_layout),
		cmocka_unit_test(test_boundary_and_date),
		cmocka_unit_test(test_compose_refuses),
		cmocka_unit_test(test_compose_prepare_errors),
		cmocka_unit_test(test_compose_messages),
		cmocka_unit_test(test_compose_boundary_collision),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
