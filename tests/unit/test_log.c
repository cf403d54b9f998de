/*
 * test_log.c - the log line format ("YYYY-MM-DDTHH:MM:SSZ prog[pid]: level:
 * message"), one line per event with control bytes escaped, errno appended
 * by log_warn, debug lines only with verbosity, session ids, and lines
 * held by an event loop's thread until the end of its turn (log_hold).
 */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "log.h"

/* Run fn with stderr redirected to a temporary file; return what it wrote. */
static const char *
capture(void (*fn)(void))
{
	static char out[40960];
	FILE *f = tmpfile();
	int saved;
	long n;

	assert_non_null(f);
	saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_int_equal(dup2(fileno(f), STDERR_FILENO), STDERR_FILENO);
	fn();
	assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
	close(saved);
	rewind(f);
	n = (long)fread(out, 1, sizeof(out) - 1, f);
	out[n < 0 ? 0 : n] = '\0';
	fclose(f);
	return out;
}

/* Check "dddd-dd-ddTdd:dd:ddZ test_log[<pid>]: " and return the rest. */
static const char *
check_prefix(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:ddZ ";
	char want[64];
	size_t i;

	for (i = 0; i < sizeof(pat) - 1; i++) {
		if (pat[i] == 'd')
			assert_true(isdigit((unsigned char)s[i]));
		else
			assert_int_equal(s[i], pat[i]);
	}
	snprintf(want, sizeof(want), "test_log[%ld]: ", (long)getpid());
	assert_memory_equal(s + i, want, strlen(want));
	return s + i + strlen(want);
}

/* The line at s begins with the prefix, then want: what follows want. */
static const char *
expect_line(const char *s, const char *want)
{
	const char *rest = check_prefix(s);

	assert_memory_equal(rest, want, strlen(want));
	return rest + strlen(want);
}

/* The same for a line that begins with want: what follows its newline. */
static const char *
expect_line_start(const char *s, const char *want)
{
	const char *rest = expect_line(s, want);

	assert_non_null(rest = strchr(rest, '\n'));
	return rest + 1;
}

static void
emit_info(void)
{
	log_info("session=%s event=%s", "ab12", "accepted");
}

static void
emit_multi(void)
{
	log_info("one");
	log_debug("hidden");
	log_warnx("two k=v");
	errno = ENOENT;
	log_warn("open file=%s", "x");
}

static void
emit_debug(void)
{
	log_debug("shown n=%d", 5);
}

static void
emit_inject(void)
{
	log_info("user=%s", "ana\r\n2026-01-01T00:00:00Z smtpd[1]: info: forged\x7f");
}

static void
test_format(void **state)
{
	const char *s, *rest;

	(void)state;
	log_init("/usr/sbin/test_log", false, 0);
	s = capture(emit_info);
	rest = check_prefix(s);
	assert_string_equal(rest, "info: session=ab12 event=accepted\n");

	s = capture(emit_multi);
	rest = expect_line(s, "info: one\n");
	rest = expect_line(rest, "warning: two k=v\n");
	rest = check_prefix(rest);
	assert_string_equal(rest, "warning: open file=x: No such file or directory\n");
	assert_null(strstr(s, "hidden"));

	assert_string_equal(capture(emit_debug), "");
	log_set_verbosity(1);
	rest = check_prefix(capture(emit_debug));
	assert_string_equal(rest, "debug: shown n=5\n");
	log_set_verbosity(0);
}

static void
test_one_line(void **state)
{
	const char *s, *rest;

	(void)state;
	log_init("test_log", false, 0);
	s = capture(emit_inject);
	rest = check_prefix(s);
	assert_string_equal(rest,
	    "info: user=ana\\x0d\\x0a2026-01-01T00:00:00Z smtpd[1]: info: forged\\x7f\n");
}

static void
emit_long(void)
{
	char big[10000];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	log_info("big=%s", big);
}

static void
test_long_line(void **state)
{
	const char *s;

	(void)state;
	log_init("test_log", false, 0);
	s = capture(emit_long);
	check_prefix(s);
	/* cut, but still exactly one line */
	assert_int_equal(s[strlen(s) - 1], '\n');
	assert_ptr_equal(strchr(s, '\n'), s + strlen(s) - 1);
}

static int wakes;

static void
count_wake(void *arg)
{
	assert_ptr_equal(arg, &wakes);
	wakes++;
}

/* Size of what stderr (a file) holds now. */
static long
stderr_size(void)
{
	struct stat sb;

	assert_int_equal(fstat(STDERR_FILENO, &sb), 0);
	return (long)sb.st_size;
}

static void
emit_held(void)
{
	char big[600], huge[PIPE_BUF + 100];
	int i;

	wakes = 0;
	log_hold(count_wake, &wakes);
	log_info("first n=1");
	log_info("second n=2");
	/* held: nothing written yet, and one wake-up for the batch */
	assert_int_equal(stderr_size(), 0);
	assert_int_equal(wakes, 1);
	log_flush();
	assert_true(stderr_size() > 0);
	log_info("third n=3");
	assert_int_equal(wakes, 2);
	/* more than PIPE_BUF of lines: written in whole-line pieces as it fills */
	memset(big, 'y', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (i = 0; i < 20; i++)
		log_info("line=%d big=%s", i, big);
	assert_true(stderr_size() > (long)PIPE_BUF);
	/* a line longer than PIPE_BUF: what is held goes first, then it, alone */
	log_info("held n=4");
	memset(huge, 'z', sizeof(huge) - 1);
	huge[sizeof(huge) - 1] = '\0';
	log_info("huge=%s", huge);
	log_info("after n=5");
	log_hold(NULL, NULL);	/* writes the rest, and stops holding */
	log_info("last");	/* written at once */
}

static void
test_held_lines(void **state)
{
	const char *s, *rest;
	char want[32];
	int i;

	(void)state;
	log_init("test_log", false, 0);
	s = capture(emit_held);
	rest = expect_line(s, "info: first n=1\n");
	rest = expect_line(rest, "info: second n=2\n");
	rest = expect_line(rest, "info: third n=3\n");
	for (i = 0; i < 20; i++) {
		snprintf(want, sizeof(want), "info: line=%d big=yyy", i);
		rest = expect_line_start(rest, want);
	}
	rest = expect_line(rest, "info: held n=4\n");
	rest = expect_line_start(rest, "info: huge=zzz");
	rest = expect_line(rest, "info: after n=5\n");
	rest = check_prefix(rest);
	assert_string_equal(rest, "info: last\n");
}

static void
test_session_id(void **state)
{
	char a[21], b[21], small[5];
	size_t i;

	(void)state;
	log_session_id(a, sizeof(a));
	log_session_id(b, sizeof(b));
	assert_int_equal(strlen(a), 20);
	for (i = 0; i < 20; i++)
		assert_true(isdigit((unsigned char)a[i]) || (a[i] >= 'a' && a[i] <= 'f'));
	assert_string_not_equal(a, b);
	memset(small, 'Z', sizeof(small));
	log_session_id(small, 4);
	assert_int_equal(strlen(small), 3);
	assert_int_equal(small[4], 'Z');
}

/* The random part comes from a pool: 1,000 ids (refills included) are all
 * different, and a child process does not hand out its parent's next one. */
static void
test_session_id_pool(void **state)
{
	static char ids[1000][21];
	char parent[21], child[21] = "";
	int fds[2], status;
	size_t i, j;
	pid_t pid;

	(void)state;
	for (i = 0; i < 1000; i++)
		log_session_id(ids[i], sizeof(ids[i]));
	for (i = 0; i < 1000; i++)
		for (j = i + 1; j < 1000; j++)
			assert_string_not_equal(ids[i], ids[j]);

	assert_int_equal(pipe(fds), 0);
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		log_session_id(child, sizeof(child));
		_exit(write(fds[1], child, sizeof(child)) == (ssize_t)sizeof(child) ? 0 : 1);
	}
	log_session_id(parent, sizeof(parent));
	assert_int_equal(read(fds[0], child, sizeof(child)), (ssize_t)sizeof(child));
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fds[0]);
	close(fds[1]);
	assert_int_equal(strlen(child), 20);
	assert_string_not_equal(child, parent);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_one_line),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_held_lines),
		cmocka_unit_test(test_session_id),
		cmocka_unit_test(test_session_id_pool),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
