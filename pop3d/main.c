/*
 * main.c - pop3d: the correio POP3 server (RFC 1939, RFC 2449, RFC 2595
 * STLS, RFC 5034 SASL, RFC 8314 implicit TLS on pop3s listeners).
 *
 * Owns: the order of start-up (command line, configuration, TLS context,
 * listeners, privilege drop, the store, the verification threads) and of
 * shutdown. The process set-up, the privilege drop and the signals are
 * common/daemon.c; the sessions are pop3_session.c, handed their
 * connections by net.c. Never: dies after start-up (sessions fail alone).
 */
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
#include "pop3_session.h"
#include "store.h"
#include "tls.h"

/* Seconds given to sessions to flush their goodbye at shutdown. */
#define POP3_SHUTDOWN_GRACE	2
/* Loop turns given to net.c to finish the connections left after it. */
#define POP3_SHUTDOWN_SPINS	10

int
main(int argc, char *argv[])
{
	static struct config cfg;
	static struct pop3_server server;
	struct net_server *netsrv;
	struct daemon_stop *stop;
	struct event_base *base;
	SSL_CTX *ssl = NULL;
	char err[512], msg[1024], shown[PATH_MAX];
	int rc;
	size_t i;

	if ((rc = daemon_init("pop3d", CONFIG_POP3D, &cfg, argc, argv)) >= 0)
		return rc;	/* --help, --version, or a usage error */

	if (cfg.tls_cert[0] != '\0') {
		if ((ssl = tls_server_ctx(cfg.tls_cert, cfg.tls_key, err, sizeof(err))) == NULL)
			fatalx("TLS: %s", err);
	}
	for (i = 0; i < cfg.pop3_nlisten; i++) {
		if (cfg.pop3_listen[i].role == ROLE_POP3S && ssl == NULL)
			fatalx("listen %s:%s pop3s needs [tls] cert and key", cfg.pop3_listen[i].host,
			    cfg.pop3_listen[i].port);
	}

	if ((base = net_base_new()) == NULL)
		fatalx("cannot create the event loop");
	server.cfg = &cfg;
	server.base = base;
	server.tls_available = ssl != NULL;
	if ((netsrv = net_server_new(base, &cfg.limits, &pop3_conn_handler, &server, ssl)) == NULL)
		fatalx("cannot create the server");
	for (i = 0; i < cfg.pop3_nlisten; i++) {
		if (net_server_listen(netsrv, &cfg.pop3_listen[i], err, sizeof(err)) == -1)
			fatalx("listen %s:%s: %s", cfg.pop3_listen[i].host, cfg.pop3_listen[i].port, err);
		log_info("event=listening addr=%s port=%d role=%s", cfg.pop3_listen[i].host,
		    net_server_port(netsrv, i), config_role_name(cfg.pop3_listen[i].role));
	}
	/* [pop3d] user, else the [smtpd] one: both daemons share the store. */
	if (cfg.pop3_user[0] != '\0')
		daemon_drop_privileges(cfg.pop3_user, "[pop3d]");
	else
		daemon_drop_privileges(cfg.user, cfg.user[0] != '\0' ? "[smtpd]" : "[pop3d]");
	/* Opened after dropping privileges so that any file it creates belongs
	 * to the service user. */
	if (store_open(&server.store, cfg.store_path, err, sizeof(err)) == -1) {
		config_store_open_error(&cfg, err, msg, sizeof(msg));
		fatalx("%s", msg);
	}
	/* RETR streams bodies through this handle. */
	if (store_map_bodies(server.store) == -1)
		log_warnx("event=mmap-failed error=\"%s\"", store_errmsg(server.store));
	/* Room for deletions on a full disk (store.h, "the reserve"). */
	if ((rc = store_reserve_make(server.store)) == -1)
		log_warnx("event=reserve-failed error=\"%s\"", store_errmsg(server.store));
	else if (rc == 1)
		log_info("event=reserve-made size=%lld", (long long)STORE_RESERVE_SIZE);

	if ((server.auth = authpool_start(base, cfg.store_path, 0, err, sizeof(err))) == NULL)
		fatalx("password checks: %s", err);
	if ((server.guard = loginguard_new()) == NULL)
		fatalx("out of memory");
	if (cfg.transcripts && (server.sesslog = sesslog_start(cfg.store_path, err,
	    sizeof(err))) == NULL)
		fatalx("session log: %s", err);

	/* SIGTERM/SIGINT: each session is told and closed (nothing is deleted
	 * without QUIT). */
	stop = daemon_stop_on_signals(base, netsrv, POP3_SHUTDOWN_GRACE, &server.sessions,
	    pop3_session_shutdown, &server.stopping);
	log_info("event=started store=%s tls=%s max_connections=%ld idle_timeout=%ld",
	    config_store_display(cfg.store_path, shown, sizeof(shown)), ssl ? "yes" : "no",
	    cfg.limits.max_connections, cfg.limits.pop3_idle_timeout);

	daemon_ready();
	event_base_dispatch(base);

	/* Sessions that did not finish in the grace period (a client that
	 * does not read, a QUIT whose store job still runs): close their
	 * connections and let net.c finish them on the loop, so that each
	 * session's close releases its lock (nothing is deleted) and nothing
	 * of a connection is left behind. */
	server.stopping = true;
	session_list_each(&server.sessions, pop3_session_abort);
	for (i = 0; i < POP3_SHUTDOWN_SPINS && session_list_first(&server.sessions) != NULL; i++)
		event_base_loop(base, EVLOOP_NONBLOCK);
	while (session_list_first(&server.sessions) != NULL)
		pop3_session_closed(session_list_first(&server.sessions), "shutdown");
	sesslog_stop(&server.sesslog);	/* writes the last lines */
	/* The jobs in flight and the releases just queued finish (a store
	 * locked by another program: up to the busy timeout), then their
	 * results are taken here; a release they ask for now is left to the
	 * next pop3d, which takes a dead process's lock over at once. */
	authpool_stop(&server.auth);
	server.pool_gone = true;
	net_run_queued(base);
	pop3_store_stop(&server);
	daemon_stop_free(&stop);
	net_server_free(&netsrv);
	store_close(&server.store);
	loginguard_free(&server.guard);
	if (ssl != NULL)
		SSL_CTX_free(ssl);
	log_info("event=stopped sessions=%llu", (unsigned long long)server.sessions.served);
	/* A connection still open here (net.c did not finish it within the
	 * spins) dies with the process; its bufferevent refers to a freed
	 * session, so the base is not freed or run again. */
	return 0;
}
