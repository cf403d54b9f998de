/*
 * main.c - smtpd: command line, configuration, listeners, privilege drop,
 * the worker threads and the event loop (see docs/smtpd.8).
 *
 *   smtpd [-c FILE] [--store PATH|URI] [--listen ADDR:PORT [ROLE]]... [-v] [-h]
 *
 * Owns: the order of start-up and shutdown; the process set-up, privilege
 * drop and signals are common/daemon.c. Start-up failures are fatal
 * (HACKING.md C10); nothing after the loop starts may end the process but
 * SIGTERM/SIGINT. Order matters: bind the listeners (may need root), drop
 * privileges to the configured user, then open the store so its files
 * belong to that user.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <event2/event.h>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "sesslog.h"
#include "net.h"
#include "relay.h"
#include "smtp_session.h"
#include "store.h"
#include "tls.h"

/* Seconds the sessions get to take their 421 at shutdown. */
#define SMTPD_SHUTDOWN_GRACE	2

static void
loop_noop(void *arg)
{
	(void)arg;
}

int
main(int argc, char **argv)
{
	static struct config cfg;
	struct smtp_server srv;
	size_t i;
	struct daemon_stop *stop;
	struct net_server *netsrv;
	struct relay *relay = NULL;
	char err[512], msg[1024], spool_dir[PATH_MAX], shown[PATH_MAX];
	int rc;

	if ((rc = daemon_init("smtpd", CONFIG_SMTPD, &cfg, argc, argv)) >= 0)
		return rc;	/* --help, --version, or a usage error */

	memset(&srv, 0, sizeof(srv));
	srv.cfg = &cfg;
	srv.inflight_max = SMTP_INFLIGHT_MAX;
	/* Large bodies spool in [store] spool: by default beside a store file
	 * (same disk, same owner); the room check at MAIL looks there too. */
	config_store_spool(&cfg, spool_dir, sizeof(spool_dir));
	srv.spool_dir = spool_dir;
	config_store_display(cfg.store_path, shown, sizeof(shown));
	srv.submit = smtp_worker_submit;
	if (cfg.tls_cert[0] != '\0') {
		if ((srv.ssl_ctx = tls_server_ctx(cfg.tls_cert, cfg.tls_key, err, sizeof(err))) == NULL)
			fatalx("TLS: %s", err);
	}
	if ((srv.base = net_base_new()) == NULL)
		fatalx("cannot create the event loop");
	if ((netsrv = net_server_new(srv.base, &cfg.limits, &smtp_conn_handler, &srv,
	    srv.ssl_ctx)) == NULL)
		fatalx("out of memory");
	for (i = 0; i < cfg.smtp_nlisten; i++) {
		const struct listen_spec *ls = &cfg.smtp_listen[i];
		if (ls->role == ROLE_SMTPS && srv.ssl_ctx == NULL)
			fatalx("listener %s:%s is smtps but [tls] cert/key are not set", ls->host, ls->port);
		if (net_server_listen(netsrv, ls, err, sizeof(err)) == -1)
			fatalx("listen %s:%s: %s", ls->host, ls->port, err);
		log_info("event=listening addr=%s port=%d role=%s", ls->host,
		    net_server_port(netsrv, i), config_role_name(ls->role));
	}
	daemon_drop_privileges(cfg.user, "[smtpd]");

	/* A spool named in the config, or any for a store with no directory of
	 * its own (a database): a missing or unwritable one fails here, not at
	 * the first large message. */
	if ((cfg.store_spool[0] != '\0' || cfg.store_is_url) &&
	    access(spool_dir, W_OK | X_OK) == -1)
		fatalx("[store] spool %s: %s (smtpd keeps message bodies over 64 KiB there "
		    "while it receives them)", spool_dir, strerror(errno));
	if (store_open(&srv.store, cfg.store_path, err, sizeof(err)) == -1) {
		config_store_open_error(&cfg, err, msg, sizeof(msg));
		fatalx("%s", msg);
	}
	/* What a crash left beside the database: body files no message owns. */
	if (store_tidy(srv.store) == -1)
		log_warnx("event=store-tidy-failed error=\"%s\"", store_errmsg(srv.store));
	if ((srv.writer = smtp_worker_start(srv.base, cfg.store_path, "writer",
	    &srv.in_tx, &srv.tx_begun, err, sizeof(err))) == NULL)
		fatalx("store writer: %s", err);
	if ((srv.checker = authpool_start(srv.base, cfg.store_path, 0, err, sizeof(err))) == NULL)
		fatalx("password checks: %s", err);
	if ((srv.guard = loginguard_new()) == NULL)
		fatalx("out of memory");
	if (cfg.transcripts && (srv.sesslog = sesslog_start(cfg.store_path, err,
	    sizeof(err))) == NULL)
		fatalx("session log: %s", err);
	/* Create net's cross-thread event now, on the loop thread. */
	if (net_run_in_loop(srv.base, loop_noop, NULL) == -1)
		fatalx("cannot set up the worker hand-back");

	/* The queue runner delivers what RCPT accepted for other domains. */
	if (relay_start(&relay, srv.base, &cfg, err, sizeof(err)) == -1)
		fatalx("relay: %s", err);

	/* SIGTERM/SIGINT: each session is told 421 (RFC 5321 3.8) and closed; a
	 * message being committed gets its 250 first. */
	stop = daemon_stop_on_signals(srv.base, netsrv, SMTPD_SHUTDOWN_GRACE, &srv.sessions,
	    smtp_session_shutdown, &srv.stopping);
	log_info("event=started hostname=%s store=%s spool=%s tls=%s transcripts=%s",
	    cfg.hostname, shown, spool_dir, srv.ssl_ctx ? "yes" : "no", cfg.transcripts ? "yes" : "no");

	daemon_ready();
	event_base_dispatch(srv.base);

	relay_stop(&relay);
	/* Commits in flight finish (their clients get no 250 and will retry). */
	smtp_worker_stop(&srv.writer);
	authpool_stop(&srv.checker);
	/* Deliver the workers' hand-backs so no session is left waiting. */
	event_base_loop(srv.base, EVLOOP_NONBLOCK);
	/* Sessions whose clients did not take their 421 within the grace. */
	smtp_session_free_all(&srv);
	sesslog_stop(&srv.sesslog);	/* writes the last lines */
	daemon_stop_free(&stop);
	net_server_free(&netsrv);
	store_close(&srv.store);
	loginguard_free(&srv.guard);
	net_base_free(srv.base);
	if (srv.ssl_ctx != NULL)
		SSL_CTX_free(srv.ssl_ctx);
	log_info("event=stopped");
	return 0;
}
