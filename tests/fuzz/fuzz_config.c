/*
 * fuzz_config.c - the configuration parser (common/config.c over inih):
 * config_load on a scratch file holding the input, and config_parse_listen
 * on its first line.
 *
 * Oracles: a refused file gives an error message naming the file; an accepted
 * one has every [limits] value within its documented minimum and maximum,
 * NUL-terminated strings, listener and route counts within their arrays and
 * at least one retry interval.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "store.h"
#include "fuzz_common.h"

static char path[64];

static void
cleanup(void)
{
	if (path[0] != '\0')
		unlink(path);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int fd;

	(void)argc;
	(void)argv;
	snprintf(path, sizeof(path), "/tmp/correio-fuzz-config-XXXXXX");
	FUZZ_CHECK((fd = mkstemp(path)) != -1);
	close(fd);
	atexit(cleanup);
	return 0;
}

static void
check_limits(const struct config *cfg)
{
	long def, min, max;
	const char *desc;

#define CHECK_LIMIT(name, d, mn, mx, ds)					\
	FUZZ_CHECK(config_limit_info(#name, &def, &min, &max, &desc) == 0);	\
	FUZZ_CHECK(cfg->limits.name >= min && cfg->limits.name <= max);
	CORREIO_LIMITS(CHECK_LIMIT)
#undef CHECK_LIMIT
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct config cfg;
	struct listen_spec ls;
	char err[1024], spec[256];
	const char *nl;
	FILE *f;
	size_t n;

	if (size > 256 * 1024)
		return 0;
	FUZZ_CHECK((f = fopen(path, "wb")) != NULL);
	FUZZ_CHECK(fwrite(data, 1, size, f) == size);
	FUZZ_CHECK(fclose(f) == 0);

	config_defaults(&cfg);
	err[0] = '\0';
	if (config_load(&cfg, path, err, sizeof(err)) == -1) {
		FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
	} else {
		check_limits(&cfg);
		FUZZ_CHECK(cfg.smtp_nlisten <= CONFIG_MAX_LISTEN);
		FUZZ_CHECK(cfg.pop3_nlisten <= CONFIG_MAX_LISTEN);
		FUZZ_CHECK(cfg.nroutes <= CONFIG_MAX_ROUTES);
		FUZZ_CHECK(cfg.ntrusted <= CONFIG_MAX_NETS);
		FUZZ_CHECK(cfg.nretry >= 1 && cfg.nretry <= 16);
		FUZZ_CHECK(memchr(cfg.hostname, '\0', sizeof(cfg.hostname)) != NULL);
		FUZZ_CHECK(memchr(cfg.store_path, '\0', sizeof(cfg.store_path)) != NULL);
		FUZZ_CHECK(memchr(cfg.store_spool, '\0', sizeof(cfg.store_spool)) != NULL);
		FUZZ_CHECK(cfg.store_is_url == store_is_url(cfg.store_path));
		{	/* a store the file accepts never shows a password in a log */
			char shown[PATH_MAX];
			config_store_display(cfg.store_path, shown, sizeof(shown));
			FUZZ_CHECK(strcmp(shown, cfg.store_path) == 0);
		}
		for (size_t i = 0; i < cfg.smtp_nlisten; i++)
			FUZZ_CHECK(cfg.smtp_listen[i].role <= ROLE_SMTPS);
		for (size_t i = 0; i < cfg.pop3_nlisten; i++)
			FUZZ_CHECK(cfg.pop3_listen[i].role == ROLE_POP3 ||
			    cfg.pop3_listen[i].role == ROLE_POP3S);
		for (size_t i = 0; i < cfg.nretry; i++)
			FUZZ_CHECK(cfg.retry_schedule[i] > 0);
	}

	/* the command-line form of a listener */
	nl = memchr(data, '\n', size);
	n = nl != NULL ? (size_t)(nl - (const char *)data) : size;
	if (n < sizeof(spec)) {
		memcpy(spec, data, n);
		spec[n] = '\0';
		err[0] = '\0';
		if (strlen(spec) == n) {
			if (config_parse_listen(spec, ROLE_INBOUND, &ls, err, sizeof(err)) == 0) {
				FUZZ_CHECK(memchr(ls.host, '\0', sizeof(ls.host)) != NULL);
				FUZZ_CHECK(memchr(ls.port, '\0', sizeof(ls.port)) != NULL);
				FUZZ_CHECK(ls.port[0] != '\0');
			} else {
				FUZZ_CHECK(err[0] != '\0');
			}
		}
	}
	return 0;
}
