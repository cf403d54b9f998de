/*
 * test_auth.c - password hashing (yescrypt from libxcrypt: "$y$", salted,
 * never the password, verify right/wrong/empty/garbage hashes, the dummy
 * hash) and SASL decoding (PLAIN per RFC 4616 2, LOGIN fields): valid input,
 * invalid base64, missing or extra NULs, empty fields, over-long fields.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "auth.h"
#include "b64.h"

static void
test_hash_format(void **state)
{
	static const char *const passwords[] = {
		"ana-secret-1", "p", "with space and ünïcödé", "$y$looks-like-a-hash",
		"0123456789012345678901234567890123456789012345678901234567890123456789",
	};
	char h1[AUTH_HASH_MAX], h2[AUTH_HASH_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(passwords) / sizeof(passwords[0]); i++) {
		const char *pw = passwords[i];

		assert_int_equal(auth_hash_password(pw, h1, sizeof(h1)), 0);
		assert_int_equal(auth_hash_password(pw, h2, sizeof(h2)), 0);
		assert_memory_equal(h1, "$y$", 3);		/* yescrypt */
		assert_string_not_equal(h1, pw);
		if (strlen(pw) >= 6)	/* a 1-letter password may occur by chance */
			assert_null(strstr(h1, pw));		/* not even inside */
		assert_string_not_equal(h1, h2);		/* fresh salt each time */
		assert_true(auth_verify_password(pw, h1));
		assert_true(auth_verify_password(pw, h2));
	}
}

static void
test_verify_wrong(void **state)
{
	char h[AUTH_HASH_MAX], small[10];
	static const char *const wrong[] = {
		"ana-secret-2", "ana-secret-", "ana-secret-11", "ANA-SECRET-1", "", " ana-secret-1",
	};
	size_t i;

	(void)state;
	assert_int_equal(auth_hash_password("ana-secret-1", h, sizeof(h)), 0);
	for (i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++)
		assert_false(auth_verify_password(wrong[i], h));
	/* broken or locked hashes never verify */
	assert_false(auth_verify_password("ana-secret-1", ""));
	assert_false(auth_verify_password("ana-secret-1", "*"));
	assert_false(auth_verify_password("ana-secret-1", "!$y$abc"));
	assert_false(auth_verify_password("ana-secret-1", "$y$garbage"));
	assert_false(auth_verify_password("ana-secret-1", NULL));
	assert_false(auth_verify_password(NULL, h));
	/* a truncated hash does not verify */
	h[strlen(h) - 1] = '\0';
	assert_false(auth_verify_password("ana-secret-1", h));
	/* a buffer too small is an error, not a truncated hash */
	assert_int_equal(auth_hash_password("x", small, sizeof(small)), -1);
	assert_string_equal(small, "");
}

static void
test_dummy_hash(void **state)
{
	const char *d = auth_dummy_hash();

	(void)state;
	assert_non_null(d);
	assert_memory_equal(d, "$y$", 3);
	assert_ptr_equal(d, auth_dummy_hash());		/* made once */
	assert_false(auth_verify_password("", d));
	assert_false(auth_verify_password("password", d));
}

static double
seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* An unknown user (checked against the dummy hash) costs about as much as a
 * known one: same method, same cost parameters. Medians of 5, loose bounds. */
static void
test_dummy_timing(void **state)
{
	char h[AUTH_HASH_MAX];
	double known[5], unknown[5], t;
	int i;

	(void)state;
	assert_int_equal(auth_hash_password("ana-secret-1", h, sizeof(h)), 0);
	(void)auth_dummy_hash();
	for (i = 0; i < 5; i++) {
		t = seconds();
		assert_false(auth_verify_password("wrong", h));
		known[i] = seconds() - t;
		t = seconds();
		assert_false(auth_verify_password("wrong", auth_dummy_hash()));
		unknown[i] = seconds() - t;
	}
	qsort(known, 5, sizeof(double), cmp_double);
	qsort(unknown, 5, sizeof(double), cmp_double);
	if (unknown[2] < known[2] / 3 || unknown[2] > known[2] * 3)
		fail_msg("known user %.4fs, unknown user %.4fs", known[2], unknown[2]);
	/* and the hashing does real work (yescrypt, not a fast hash) */
	assert_true(known[2] > 0.0005);
}

/* auth.c's mmap() passes every call through and advises huge pages only for
 * the anonymous scratch area that libxcrypt maps inside a hash. */
static void
test_scratch_hugepages(void **state)
{
	char h[AUTH_HASH_MAX], path[] = "/tmp/test_auth.XXXXXX", *p;
	unsigned long n0;
	int fd;

	(void)state;
	n0 = auth_scratch_advised();
	/* Outside a hash: a large anonymous map works and is not advised. */
	p = mmap(NULL, 4u << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(p != MAP_FAILED);
	p[0] = 'a';
	p[(4u << 20) - 1] = 'z';
	assert_int_equal(p[0] + p[(4u << 20) - 1], 'a' + 'z');
	assert_int_equal(munmap(p, 4u << 20), 0);
	assert_int_equal(auth_scratch_advised(), n0);
	/* A file map shows the file; a bad call fails as the C library's. */
	assert_true((fd = mkstemp(path)) != -1);
	assert_int_equal(write(fd, "correio", 7), 7);
	p = mmap(NULL, 7, PROT_READ, MAP_SHARED, fd, 0);
	assert_true(p != MAP_FAILED);
	assert_memory_equal(p, "correio", 7);
	assert_int_equal(munmap(p, 7), 0);
	errno = 0;
	assert_true(mmap(NULL, 0, PROT_READ, MAP_SHARED, fd, 0) == MAP_FAILED);
	assert_int_equal(errno, EINVAL);
	close(fd);
	unlink(path);
	/* A hash: libxcrypt's yescrypt maps its scratch through this mmap()
	 * (if a later libxcrypt stops doing so, this fails: see auth.c). */
	if (!auth_scratch_hooked() || access("/sys/kernel/mm/transparent_hugepage", F_OK) != 0)
		skip();		/* the C library's mmap(), or no huge pages to advise */
	assert_int_equal(auth_hash_password("ana-secret-1", h, sizeof(h)), 0);
	assert_true(auth_scratch_advised() > n0);
	assert_true(auth_verify_password("ana-secret-1", h));
	assert_int_equal(auth_scratch_advised(), n0 + 2);
}

/* ---- SASL ---------------------------------------------------------------------- */

static void
b64(const void *raw, size_t n, char *out)
{
	b64_encode(raw, n, out);
}

static void
test_sasl_plain(void **state)
{
	static const struct {
		const char *name;
		const char *raw;	/* decoded form; NULL: use b64 as is */
		size_t rawlen;
		const char *b64;
		int rc;
		const char *authzid, *user, *pass, *err;
	} cases[] = {
		{ "plain", "\0ana\0ana-secret-1", 17, NULL, 0, "", "ana", "ana-secret-1", NULL },
		{ "authzid", "ana\0ana\0pw", 10, NULL, 0, "ana", "ana", "pw", NULL },
		{ "rfc4616 example", NULL, 0, "AHRpbQB0YW5zdGFhZnRhbnN0YWFm", 0, "", "tim",
		  "tanstaaftanstaaf", NULL },
		{ "utf-8 password", "\0ana\0p\xc3\xa4ss", 10, NULL, 0, "", "ana", "p\xc3\xa4ss", NULL },
		{ "one NUL", "ana\0pw", 6, NULL, -1, NULL, NULL, NULL, "NUL" },
		{ "no NUL", "anapw", 5, NULL, -1, NULL, NULL, NULL, "NUL" },
		{ "three NULs", "\0ana\0pw\0x", 9, NULL, -1, NULL, NULL, NULL, "more than two" },
		{ "empty user", "\0\0pw", 4, NULL, -1, NULL, NULL, NULL, "empty user" },
		{ "empty password", "\0ana\0", 5, NULL, -1, NULL, NULL, NULL, "empty password" },
		{ "not base64", NULL, 0, "AGFuYQBwdw*=", -1, NULL, NULL, NULL, "base64" },
		{ "bad padding", NULL, 0, "AGFuYQBwdw=", -1, NULL, NULL, NULL, "base64" },
		{ "whitespace", NULL, 0, "AGFu YQBwdw==", -1, NULL, NULL, NULL, "base64" },
		{ "empty", NULL, 0, "", -1, NULL, NULL, NULL, NULL },
		{ "star (cancel)", NULL, 0, "*", -1, NULL, NULL, NULL, "base64" },
	};
	char enc[256], authzid[AUTH_FIELD_MAX], user[AUTH_FIELD_MAX], pass[AUTH_FIELD_MAX], err[128];
	size_t i;
	int rc;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].raw)
			b64(cases[i].raw, cases[i].rawlen, enc);
		else
			snprintf(enc, sizeof(enc), "%s", cases[i].b64);
		err[0] = '\0';
		rc = auth_sasl_plain(enc, authzid, user, pass, AUTH_FIELD_MAX, err, sizeof(err));
		if (rc != cases[i].rc)
			fail_msg("%s: rc %d, want %d (%s)", cases[i].name, rc, cases[i].rc, err);
		if (rc == 0) {
			assert_string_equal(authzid, cases[i].authzid);
			assert_string_equal(user, cases[i].user);
			assert_string_equal(pass, cases[i].pass);
		} else {
			assert_string_equal(pass, "");
			if (cases[i].err && strstr(err, cases[i].err) == NULL)
				fail_msg("%s: error '%s' lacks '%s'", cases[i].name, err, cases[i].err);
		}
	}
}

static void
test_sasl_plain_long(void **state)
{
	char raw[700], enc[1000], a[AUTH_FIELD_MAX], u[AUTH_FIELD_MAX], p[AUTH_FIELD_MAX], err[128];
	char small_u[8];

	(void)state;
	/* a 300-octet password does not fit a 256-octet field */
	memset(raw, 'x', sizeof(raw));
	raw[0] = '\0';
	memcpy(raw + 1, "ana", 3);
	raw[4] = '\0';
	b64(raw, 5 + 300, enc);
	assert_int_equal(auth_sasl_plain(enc, a, u, p, AUTH_FIELD_MAX, err, sizeof(err)), -1);
	assert_string_equal(p, "");
	/* longer than anything we decode */
	b64(raw, sizeof(raw), enc);
	assert_int_equal(auth_sasl_plain(enc, a, u, p, AUTH_FIELD_MAX, err, sizeof(err)), -1);
	/* field length given by the caller is respected */
	b64("\0anabelle\0pw", 12, enc);
	assert_int_equal(auth_sasl_plain(enc, a, small_u, p, sizeof(small_u), err, sizeof(err)), -1);
	b64("\0ana\0pw", 7, enc);
	assert_int_equal(auth_sasl_plain(enc, a, small_u, p, sizeof(small_u), err, sizeof(err)), 0);
	assert_string_equal(small_u, "ana");
}

static void
test_sasl_login_field(void **state)
{
	char out[AUTH_FIELD_MAX], small[4];

	(void)state;
	assert_int_equal(auth_sasl_field("YW5h", out, sizeof(out)), 0);	/* "ana" */
	assert_string_equal(out, "ana");
	assert_int_equal(auth_sasl_field("YW5hLXNlY3JldC0x", out, sizeof(out)), 0);
	assert_string_equal(out, "ana-secret-1");
	assert_int_equal(auth_sasl_field("YW5h!", out, sizeof(out)), -1);
	assert_int_equal(auth_sasl_field("YW5", out, sizeof(out)), -1);		/* not a multiple of 4 */
	assert_int_equal(auth_sasl_field("YQBi", out, sizeof(out)), -1);	/* "a\0b": NUL inside */
	assert_int_equal(auth_sasl_field("YW5hYQ==", small, sizeof(small)), -1);	/* "anaa" too long */
	assert_int_equal(auth_sasl_field("YW5h", small, sizeof(small)), 0);
	assert_string_equal(small, "ana");
}

#ifndef __SANITIZE_ADDRESS__
/* VmSize of this process in bytes (0 when unknown). */
static size_t
vm_size(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long kb = 0;

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmSize: %lu kB", &kb) == 1)
			break;
	fclose(f);
	return (size_t)kb * 1024;
}

/* In a child whose address space ends 2 MiB past its size: -1 expected. */
static void
check_without_memory(const char *hash)
{
	struct rlimit rl;
	pid_t pid;
	int status;

	if ((pid = fork()) == 0) {
		rl.rlim_cur = rl.rlim_max = vm_size() + 2 * 1024 * 1024;
		if (rl.rlim_cur <= 2 * 1024 * 1024 || setrlimit(RLIMIT_AS, &rl) != 0)
			_exit(2);
		_exit(auth_check_password("pw", hash) == -1 ? 0 : 1);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}
#endif

/* A password check that finds no memory (yescrypt takes megabytes) is the
 * server's failure (-1), never "wrong password"; something that is not a
 * hash of a method crypt(3) knows is a mismatch (0). */
static void
test_check_out_of_memory(void **state)
{
	char hash[AUTH_HASH_MAX];

	(void)state;
	assert_int_equal(auth_hash_password("pw", hash, sizeof(hash)), 0);
	assert_int_equal(auth_check_password("pw", hash), 1);
	assert_int_equal(auth_check_password("no", hash), 0);
	assert_int_equal(auth_check_password("pw", "not a hash"), 0);
	assert_int_equal(auth_check_password("pw", "!locked"), 0);
	/* a damaged hash of a known method cannot be told from a lack of
	 * memory (libxcrypt says EINVAL for both): not checkable, -1 */
	assert_int_equal(auth_check_password("pw", "$y$garbage"), -1);
#ifdef __SANITIZE_ADDRESS__
	skip();		/* ASan's shadow memory cannot live under RLIMIT_AS */
#else
	check_without_memory(hash);
#endif
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_format),
		cmocka_unit_test(test_verify_wrong),
		cmocka_unit_test(test_check_out_of_memory),
		cmocka_unit_test(test_dummy_hash),
		cmocka_unit_test(test_dummy_timing),
		cmocka_unit_test(test_scratch_hugepages),
		cmocka_unit_test(test_sasl_plain),
		cmocka_unit_test(test_sasl_plain_long),
		cmocka_unit_test(test_sasl_login_field),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
