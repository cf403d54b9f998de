/*
 * main.c - webd: the lab's web console over the correio store (mailboxes,
 * session transcripts, the teachers' live view, a JSON API, Thunderbird
 * autoconfig).
 *
 * Owns: the order of start-up (command line, configuration, TLS context,
 * listeners, privilege drop, the store, the password-check threads) and of
 * shutdown. The process set-up, the privilege drop and the signals are
 * common/daemon.c, as for smtpd and pop3d; the HTTP side is http.c.
 * Never: dies after start-up.
 */
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/http.h>

#include "authpool.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "loginguard.h"
#include "net.h"
#include "store.h"
#include "tls.h"
#include "webd.h"

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: webd [-c FILE] [--store PATH] [--listen ADDR:PORT]... [-v] [-h]\n"
	    "  -c, --config FILE  configuration file (correio.conf(5))\n"
	    "  --store PATH       the SQLite store (overrides [store] path)\n"
	    "  --listen ADDR:PORT listen there (HTTPS with [tls] cert and key, else HTTP on\n"
	    "                     loopback only); repeatable; replaces the [webd] listen lines\n"
	    "  -v, --verbose      debug logging (repeat for more)\n"
	    "  -h, --help         this help\n"
	    "  -V, --version      print the version and exit\n");
}

/* SIGTERM/SIGINT: requests are short; leave at once. */
static void
stop_http(void *arg)
{
	(void)arg;
}

int
main(int argc, char *argv[])
{
	static struct config cfg;
	static struct webd w;
	struct daemon_stop *stop;
	char err[512];
	int rc, verbose = 0;

	log_init("webd", false, 0);
	if ((rc = config_daemon_args(&cfg, CONFIG_WEBD, argc, argv, usage, &verbose, err,
	    sizeof(err))) == -1)
		fatalx("%s", err);
	if (rc > 0)
		return rc == 1 ? 0 : 2;
	log_set_verbosity(verbose);
	daemon_prepare();

	w.cfg = &cfg;
	if (cfg.tls_cert[0] != '\0' &&
	    (w.ssl = tls_server_ctx(cfg.tls_cert, cfg.tls_key, err, sizeof(err))) == NULL)
		fatalx("TLS: %s", err);
	if ((w.base = net_base_new()) == NULL)
		fatalx("cannot create the event loop");
	webd_http_start(&w);
	/* [webd] user, else the [smtpd] one: every program shares the store. */
	if (cfg.webd_user[0] != '\0')
		daemon_drop_privileges(cfg.webd_user, "[webd]");
	else
		daemon_drop_privileges(cfg.user, cfg.user[0] != '\0' ? "[smtpd]" : "[webd]");
	if (store_open(&w.store, cfg.store_path, err, sizeof(err)) == -1)
		fatalx("store %s: %s", cfg.store_path, err);
	if ((w.auth = authpool_start(w.base, cfg.store_path, 0, err, sizeof(err))) == NULL)
		fatalx("password checks: %s", err);
	if ((w.guard = loginguard_new()) == NULL)
		fatalx("out of memory");

	stop = daemon_stop_on_signals(w.base, NULL, 0, stop_http, &w);
	log_info("event=started store=%s tls=%s", cfg.store_path, w.ssl ? "yes" : "no");
	daemon_ready();
	event_base_dispatch(w.base);

	authpool_stop(&w.auth);
	evhttp_free(w.http);
	daemon_stop_free(&stop);
	store_close(&w.store);
	loginguard_free(&w.guard);
	if (w.ssl != NULL)
		SSL_CTX_free(w.ssl);
	log_info("event=stopped requests=%llu", (unsigned long long)w.nrequests);
	return 0;
}
