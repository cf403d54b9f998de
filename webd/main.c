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


int
main(int argc, char *argv[])
{
	static struct config cfg;
	static struct webd w;
	struct daemon_stop *stop;
	char err[512], msg[1024], shown[PATH_MAX];
	int rc;

	if ((rc = daemon_init("webd", CONFIG_WEBD, &cfg, argc, argv)) >= 0)
		return rc;	/* --help, --version, or a usage error */

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
	if (store_open(&w.store, cfg.store_path, err, sizeof(err)) == -1) {
		config_store_open_error(&cfg, err, msg, sizeof(msg));
		fatalx("%s", msg);
	}
	if ((w.auth = authpool_start(w.base, cfg.store_path, 0, err, sizeof(err))) == NULL)
		fatalx("password checks: %s", err);
	if ((w.guard = loginguard_new()) == NULL)
		fatalx("out of memory");

	/* SIGTERM/SIGINT: requests are short; leave at once. */
	stop = daemon_stop_on_signals(w.base, NULL, 0, NULL, NULL, NULL);
	log_info("event=started store=%s tls=%s",
	    config_store_display(cfg.store_path, shown, sizeof(shown)), w.ssl ? "yes" : "no");
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
