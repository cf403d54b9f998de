/*
 * check_report.c - the results of `mailcli check` and `mailcli check-client`:
 * verdicts and explanations of one check run, --only and --list, and the
 * output: a report card grouped by id (colour only on a terminal, a score at
 * the end) or one JSON document whose shape never changes:
 *   {"target": ..., "checks": [{"id", "verdict", "title", "rfc", "detail"}],
 *    "summary": {"pass", "fail", "warn", "skip"}}
 * Never prints anything a peer sent without making it harmless first.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define WHY_MAX		(64 * 1024)

static const char *verdict_names[] = {
	[CHECK_PASS] = "pass", [CHECK_FAIL] = "fail", [CHECK_WARN] = "warn", [CHECK_SKIP] = "skip"
};

int64_t
check_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
check_left_ms(const struct check_run *r)
{
	int64_t left = r->deadline - check_now_ms();

	return left < 1 ? 1 : (int)left;
}

static void
why_add(struct check_run *r, const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);	/* a cut explanation is still useful */
	clientconn_defang(line);
	if (r->why.len > 0)
		(void)buf_append(&r->why, "\n", 1);
	(void)buf_append(&r->why, line, strlen(line));
}

static void
set_verdict(struct check_run *r, enum check_verdict v)
{
	if (v == CHECK_FAIL || !r->decided)
		r->verdict = v;
	r->decided = true;
}

void
check_pass(struct check_run *r)
{
	set_verdict(r, CHECK_PASS);
}

#define VERDICT_FN(name, v)						\
void									\
name(struct check_run *r, const char *fmt, ...)				\
{									\
	va_list ap;							\
									\
	if (r->verdict != CHECK_FAIL || !r->decided || (v) == CHECK_FAIL) { \
		va_start(ap, fmt);					\
		why_add(r, fmt, ap);					\
		va_end(ap);						\
	}								\
	set_verdict(r, v);						\
}

VERDICT_FN(check_fail, CHECK_FAIL)
VERDICT_FN(check_warn, CHECK_WARN)
VERDICT_FN(check_skip, CHECK_SKIP)

void
check_note(struct check_run *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	why_add(r, fmt, ap);
	va_end(ap);
}

/* ---- the report ---- */

struct check_result {
	const struct check_def *def;
	enum check_verdict verdict;
	char	*detail;
};

struct check_report {
	char	*target;
	struct check_result *v;
	size_t	 n, cap;
};

struct check_report *
check_report_new(const char *target)
{
	struct check_report *rep = calloc(1, sizeof(*rep));

	if (rep == NULL || (rep->target = strdup(target)) == NULL) {
		free(rep);
		return NULL;
	}
	return rep;
}

void
check_report_free(struct check_report **repp)
{
	struct check_report *rep = *repp;
	size_t i;

	if (rep == NULL)
		return;
	for (i = 0; i < rep->n; i++)
		free(rep->v[i].detail);
	free(rep->v);
	free(rep->target);
	free(rep);
	*repp = NULL;
}

/* The last CHECK_TRACE_LINES lines of the trace, appended to b. */
static void
trace_tail(struct buf *b, const char *t, size_t len)
{
	size_t lines = 0, i = len;

	while (i > 0) {
		i--;
		if (t[i] == '\n' && i + 1 < len && ++lines >= CHECK_TRACE_LINES) {
			i++;
			break;
		}
	}
	if (i > 0)
		(void)buf_append(b, "   [...]\n", 9);
	(void)buf_append(b, t + i, len - i);
	while (b->len > 0 && b->data[b->len - 1] == '\n')
		b->len--;
}

void
check_report_add(struct check_report *rep, const struct check_run *r)
{
	struct check_result *res, *nv;
	struct buf d;

	if (rep->n == rep->cap) {
		size_t ncap = rep->cap ? rep->cap * 2 : 64;

		nv = realloc(rep->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return;
		rep->v = nv;
		rep->cap = ncap;
	}
	res = &rep->v[rep->n++];
	res->def = r->def;
	res->verdict = r->decided ? r->verdict : CHECK_FAIL;
	buf_init(&d, WHY_MAX * 2);
	if (r->why.len > 0)
		(void)buf_append(&d, r->why.data, r->why.len);
	else if (!r->decided)
		(void)buf_append(&d, "the check reached no verdict", 28);
	/* The dialog is what a student needs to see on a failure or a warning. */
	if ((res->verdict == CHECK_FAIL || res->verdict == CHECK_WARN) && r->tracelen > 0) {
		if (d.len > 0)
			(void)buf_append(&d, "\n", 1);
		trace_tail(&d, r->tracebuf, r->tracelen);
	}
	(void)buf_append(&d, "", 1);
	res->detail = d.data != NULL ? strdup(d.data) : strdup("");
	buf_free(&d);
}

void
check_run_one(struct check_report *rep, const struct check_def *d,
    const struct check_opts *o, struct check_state *st)
{
	struct check_run r;

	memset(&r, 0, sizeof(r));
	r.def = d;
	r.o = o;
	r.st = st;
	buf_init(&r.why, WHY_MAX);
	r.trace = open_memstream(&r.tracebuf, &r.tracelen);
	r.deadline = check_now_ms() + (int64_t)o->timeout * 1000;
	d->run(&r);
	if (r.trace != NULL)
		fclose(r.trace);
	check_report_add(rep, &r);
	free(r.tracebuf);
	buf_free(&r.why);
}

void
check_json_string(FILE *f, const char *s)
{
	const unsigned char *p;

	fputc('"', f);
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p == '"' || *p == '\\')
			fprintf(f, "\\%c", *p);
		else if (*p == '\n')
			fputs("\\n", f);
		else if (*p == '\t')
			fputs("\\t", f);
		else if (*p < 0x20 || *p == 0x7f)
			fprintf(f, "\\u%04x", *p);
		else
			fputc(*p, f);
	}
	fputc('"', f);
}

/* The group of an id: everything before its last dot ("smtp.rcpt"). */
static size_t
group_len(const char *id)
{
	const char *dot = strrchr(id, '.');

	return dot != NULL ? (size_t)(dot - id) : strlen(id);
}

static bool
same_group(const char *a, const char *b)
{
	size_t gl = group_len(a);

	return group_len(b) == gl && strncmp(a, b, gl) == 0;
}

static void
print_result(const struct check_result *x, bool colour)
{
	static const char *col[] = {
		[CHECK_PASS] = "\033[32m", [CHECK_FAIL] = "\033[1;31m",
		[CHECK_WARN] = "\033[33m", [CHECK_SKIP] = "\033[2m"
	};
	static const char *word[] = {
		[CHECK_PASS] = "PASS", [CHECK_FAIL] = "FAIL", [CHECK_WARN] = "WARN", [CHECK_SKIP] = "SKIP"
	};
	const char *p, *e;

	printf("  %s%s%s  %-32s %s (%s)\n", colour ? col[x->verdict] : "", word[x->verdict],
	    colour ? "\033[0m" : "", x->def->id, x->def->title, x->def->rfc);
	if (x->verdict == CHECK_PASS || x->detail[0] == '\0')
		return;
	for (p = x->detail; *p != '\0'; p = *e ? e + 1 : e) {
		e = strchr(p, '\n');
		if (e == NULL)
			e = p + strlen(p);
		printf("        %.*s\n", (int)(e - p), p);
	}
}

/* Grouped by the id's prefix ("smtp.rcpt"), groups in order of first appearance. */
static void
print_card(const struct check_report *rep, bool colour)
{
	unsigned count[4] = { 0 };
	size_t i, j, k;

	printf("correio check report for %s\n", rep->target);
	for (i = 0; i < rep->n; i++) {
		const struct check_result *x = &rep->v[i];

		count[x->verdict]++;
		for (k = 0; k < i && !same_group(rep->v[k].def->id, x->def->id); k++)
			;
		if (k < i)
			continue;	/* the group was printed with its first member */
		printf("\n%s%.*s%s\n", colour ? "\033[1m" : "", (int)group_len(x->def->id),
		    x->def->id, colour ? "\033[0m" : "");
		for (j = i; j < rep->n; j++)
			if (same_group(rep->v[j].def->id, x->def->id))
				print_result(&rep->v[j], colour);
	}
	printf("\nscore: %u/%u passed", count[CHECK_PASS],
	    count[CHECK_PASS] + count[CHECK_FAIL] + count[CHECK_WARN]);
	printf(" (%u failed, %u warnings, %u skipped)\n", count[CHECK_FAIL], count[CHECK_WARN],
	    count[CHECK_SKIP]);
}

static void
print_json(const struct check_report *rep)
{
	unsigned count[4] = { 0 };
	size_t i;

	printf("{\"target\": ");
	check_json_string(stdout, rep->target);
	printf(", \"checks\": [");
	for (i = 0; i < rep->n; i++) {
		const struct check_result *x = &rep->v[i];

		count[x->verdict]++;
		printf("%s\n  {\"id\": ", i ? "," : "");
		check_json_string(stdout, x->def->id);
		printf(", \"verdict\": \"%s\", \"title\": ", verdict_names[x->verdict]);
		check_json_string(stdout, x->def->title);
		printf(", \"rfc\": ");
		check_json_string(stdout, x->def->rfc);
		printf(", \"detail\": ");
		check_json_string(stdout, x->detail);
		printf("}");
	}
	printf("\n], \"summary\": {\"pass\": %u, \"fail\": %u, \"warn\": %u, \"skip\": %u}}\n",
	    count[CHECK_PASS], count[CHECK_FAIL], count[CHECK_WARN], count[CHECK_SKIP]);
}

int
check_report_print(const struct check_report *rep, bool json)
{
	const char *nc = getenv("NO_COLOR");
	size_t i;

	if (json)
		print_json(rep);
	else
		print_card(rep, isatty(STDOUT_FILENO) && (nc == NULL || nc[0] == '\0'));
	fflush(stdout);
	for (i = 0; i < rep->n; i++)
		if (rep->v[i].verdict == CHECK_FAIL)
			return 1;
	return 0;
}

/* ---- --only and --list ---- */

/* Does name (an id or an id prefix ending at a dot) select id? */
static bool
name_selects(const char *name, size_t nl, const char *id)
{
	if (strncmp(name, id, nl) != 0)
		return false;
	return id[nl] == '\0' || id[nl] == '.';
}

bool
check_only_wants(const char *list, const char *id)
{
	const char *p = list, *e;

	if (list == NULL)
		return true;
	while (*p != '\0') {
		e = strchr(p, ',');
		if (e == NULL)
			e = p + strlen(p);
		if (e > p && name_selects(p, (size_t)(e - p), id))
			return true;
		p = *e ? e + 1 : e;
	}
	return false;
}

size_t
check_table_len(const struct check_def *t)
{
	size_t n = 0;

	while (t[n].id != NULL)
		n++;
	return n;
}

int
check_only_parse(const char *list, const struct check_def *const *tables,
    char *err, size_t errlen)
{
	const char *p = list, *e;
	size_t t, i;
	bool found;

	while (*p != '\0') {
		e = strchr(p, ',');
		if (e == NULL)
			e = p + strlen(p);
		found = e == p;
		for (t = 0; tables[t] != NULL && !found; t++)
			for (i = 0; tables[t][i].id != NULL && !found; i++)
				found = name_selects(p, (size_t)(e - p), tables[t][i].id);
		if (!found) {
			snprintf(err, errlen, "--only: no check is called '%.*s' (see --list)",
			    (int)(e - p > 200 ? 200 : e - p), p);
			return -1;
		}
		p = *e ? e + 1 : e;
	}
	return 0;
}

void
check_list_print(FILE *out, const struct check_def *const *tables)
{
	size_t t, i;

	for (t = 0; tables[t] != NULL; t++)
		for (i = 0; tables[t][i].id != NULL; i++)
			fprintf(out, "%-32s %-22s %s\n", tables[t][i].id, tables[t][i].rfc,
			    tables[t][i].title);
}
