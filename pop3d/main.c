/*
 * main.c - pop3d: the correio POP3 server (RFC 1939, RFC 2449, RFC 2595
 * STLS, RFC 5034 SASL, RFC 8314 implicit TLS on pop3s listeners).
 *
 * Owns: the command line, configuration, TLS context, listeners, dropping
 * privileges after binding, the store handle, signals and the event loop;
 * and the glue from net.c callbacks to pop3_session.c (struct pop3_io).
 * Never: dies after start-up (sessions fail alone), or runs as root once
 * the listeners are bound when [smtpd] user is set.
 */
#include <sys/types.h>
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "sdnotify.h"
#include "net.h"
#include "pop3_session.h"
#include "store.h"
#include "tls.h"

/* Seconds given to sessions to flush their goodbye at shutdown. */
#define POP3_SHUTDOWN_GRACE	2

static struct pop3_server server;
static struct net_server *netsrv;
static struct config cfg;
static bool shutting_down;

/* ---- struct pop3_io over net.c ------------------------------------------ */

static struct evbuffer *
io_input(void *conn)
{
	return net_conn_input(conn);
}

static struct evbuffer *
io_output(void *conn)
{
	return net_conn_output(conn);
}

static void
io_pause(void *conn, bool pause)
{
	net_conn_pause_read(conn, pause);
}

static void
io_close(void *conn, bool flush)
{
	if (flush)
		net_conn_close_after_flush(conn);
	else
		net_conn_close(conn);
}

static int
io_starttls(void *conn)
{
	return net_conn_starttls(conn);
}

static const struct pop3_io net_io = {
	.input = io_input,
	.output = io_output,
	.pause_read = io_pause,
	.close = io_close,
	.starttls = io_starttls,
};

/* ---- net.c callbacks ------------------------------------------------------ */

static void *
on_accept(struct net_conn *c, void *arg)
{
	struct pop3_server *srv = arg;
	const struct listen_spec *ls = net_conn_listener(c);
	struct pop3_session *s;

	if (shutting_down)
		return NULL;
	s = pop3_session_new(srv, &net_io, c, net_conn_peer(c), net_conn_peer_str(c),
	    ls != NULL && ls->role == ROLE_POP3S);
	if (s == NULL) {
		log_warnx("event=session-failed client=%s", net_conn_peer_str(c));
		return NULL;
	}
	net_conn_set_timeout(c, srv->cfg->limits.pop3_idle_timeout);
	net_conn_set_watermark(c, POP3_OUTBUF_HIGH);
	return s;
}

static void
on_read(void *session)
{
	pop3_session_input(session);
}

static void
on_drained(void *session)
{
	pop3_session_drained(session);
}

static void
on_closed(void *session, enum net_close_reason why)
{
	static const char *const names[] = {
		[NET_CLOSE_EOF] = "eof", [NET_CLOSE_ERROR] = "error",
		[NET_CLOSE_TIMEOUT] = "timeout", [NET_CLOSE_SERVER] = "server",
	};

	pop3_session_closed(session, shutting_down ? "shutdown" : names[why]);
}

static void
on_tls_ready(void *session)
{
	pop3_session_tls_ready(session);
}

static const struct net_callbacks callbacks = {
	.accept = on_accept,
	.read = on_read,
	.drained = on_drained,
	.closed = on_closed,
	.tls_ready = on_tls_ready,
	.busy_reply = "-ERR [SYS/TEMP] Too many connections, try again later\r\n",
};

/* ---- start-up --------------------------------------------------------------- */

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: pop3d [-c FILE] [--store PATH] [--listen ADDR:PORT [pop3|pop3s]]... [-v] [-h]\n"
	    "  -c, --config FILE  configuration file (correio.conf(5))\n"
	    "  --store PATH       the SQLite store (overrides [store] path)\n"
	    "  --listen SPEC      listen on ADDR:PORT, role pop3 (STLS) or pop3s (implicit TLS);\n"
	    "                     repeatable; replaces the [pop3d] listen lines\n"
	    "  -v, --verbose      debug logging (repeat for more)\n"
	    "  -h, --help         this help\n"
	    "  -V, --version      print the version and exit\n");
}

/* Started as root: give up root for cfg.user once the ports are bound. */
static void
drop_privileges(void)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return;
	if (cfg.user[0] == '\0') {
		log_warnx("event=running-as-root hint=\"set user = NAME in [smtpd] to drop privileges\"");
		return;
	}
	if ((pw = getpwnam(cfg.user)) == NULL)
		fatalx("user %s: no such user", cfg.user);
	if (setgroups(1, &pw->pw_gid) == -1 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", cfg.user);
	if (setuid(0) != -1)
		fatalx("privileges were not dropped");
	log_info("event=privileges-dropped user=%s uid=%u", cfg.user, (unsigned)pw->pw_uid);
}

/* Check every this often whether the last session has gone. */
#define POP3_STOP_POLL_MS	50

static struct event *stop_ev;
static struct timeval stop_deadline;

/* Stop the loop once every session has closed, or when the grace is over. */
static void
stop_poll(evutil_socket_t fd, short what, void *arg)
{
	struct timeval now, tv = { 0, POP3_STOP_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	evutil_gettimeofday(&now, NULL);
	if (net_server_nconns(netsrv) == 0 || evutil_timercmp(&now, &stop_deadline, >=)) {
		event_base_loopexit(arg, NULL);
		return;
	}
	evtimer_add(stop_ev, &tv);
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct event_base *base = arg;
	struct pop3_session *s, *next;
	struct timeval now, grace = { .tv_sec = POP3_SHUTDOWN_GRACE, .tv_usec = 0 };

	(void)what;
	if (shutting_down)
		return;
	shutting_down = true;
	log_info("event=shutdown signal=%d sessions=%zu", (int)sig, net_server_nconns(netsrv));
	(void)sdnotify("STOPPING=1");
	net_server_stop_accepting(netsrv);
	for (s = server.sessions; s != NULL; s = next) {
		next = s->next;
		pop3_session_shutdown(s);
	}
	/* Exit as soon as the sessions are gone, at the latest after the grace. */
	evutil_gettimeofday(&now, NULL);
	evutil_timeradd(&now, &grace, &stop_deadline);
	if ((stop_ev = evtimer_new(base, stop_poll, base)) == NULL) {
		event_base_loopexit(base, NULL);
		return;
	}
	stop_poll(-1, 0, base);
}

int
main(int argc, char *argv[])
{
	size_t i;
	struct event_base *base;
	struct event *sigterm, *sigint;
	SSL_CTX *ssl = NULL;
	char err[512];
	int rc, verbose = 0;

	log_init("pop3d", false, 0);
	if ((rc = config_daemon_args(&cfg, CONFIG_POP3D, argc, argv, usage, &verbose, err,
	    sizeof(err))) == -1)
		fatalx("%s", err);
	if (rc > 0)
		return rc == 1 ? 0 : 2;
	log_set_verbosity(verbose);

	if (cfg.tls_cert[0] != '\0') {
		if ((ssl = tls_server_ctx(cfg.tls_cert, cfg.tls_key, err, sizeof(err))) == NULL)
			fatalx("TLS: %s", err);
	}
	for (i = 0; i < cfg.pop3_nlisten; i++) {
		if (cfg.pop3_listen[i].role == ROLE_POP3S && ssl == NULL)
			fatalx("listen %s:%s pop3s needs [tls] cert and key", cfg.pop3_listen[i].host,
			    cfg.pop3_listen[i].port);
	}

	signal(SIGPIPE, SIG_IGN);
	if ((base = net_base_new()) == NULL)
		fatalx("cannot create the event loop");
	server.cfg = &cfg;
	server.base = base;
	server.tls_available = ssl != NULL;
	if ((netsrv = net_server_new(base, &cfg.limits, &callbacks, &server, ssl)) == NULL)
		fatalx("cannot create the server");
	for (i = 0; i < cfg.pop3_nlisten; i++) {
		if (net_server_listen(netsrv, &cfg.pop3_listen[i], err, sizeof(err)) == -1)
			fatalx("listen %s:%s: %s", cfg.pop3_listen[i].host, cfg.pop3_listen[i].port, err);
		log_info("event=listening addr=%s port=%d role=%s", cfg.pop3_listen[i].host,
		    net_server_port(netsrv, i), config_role_name(cfg.pop3_listen[i].role));
	}
	drop_privileges();
	/* Opened after dropping privileges so that any file it creates belongs
	 * to the service user. */
	if (store_open(&server.store, cfg.store_path, err, sizeof(err)) == -1)
		fatalx("store %s: %s", cfg.store_path, err);

	if ((server.auth = authpool_start(base, cfg.store_path, 0, err, sizeof(err))) == NULL)
		fatalx("password checks: %s", err);
	if ((server.guard = loginguard_new()) == NULL)
		fatalx("out of memory");

	sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	sigint = evsignal_new(base, SIGINT, on_signal, base);
	if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) == -1 ||
	    evsignal_add(sigint, NULL) == -1)
		fatalx("cannot install signal handlers");
	log_info("event=started store=%s tls=%s max_connections=%ld idle_timeout=%ld",
	    cfg.store_path, ssl ? "yes" : "no", cfg.limits.max_connections,
	    cfg.limits.pop3_idle_timeout);

	if (sdnotify("READY=1") == -1)
		log_warn("event=sdnotify-failed");
	event_base_dispatch(base);

	/* Sessions that did not finish in the grace period: release their
	 * locks (nothing is deleted) and free them. */
	while (server.sessions != NULL)
		pop3_session_closed(server.sessions, "shutdown");
	authpool_stop(&server.auth);
	if (stop_ev != NULL)
		event_free(stop_ev);
	net_server_free(&netsrv);
	event_free(sigterm);
	event_free(sigint);
	store_close(&server.store);
	loginguard_free(&server.guard);
	if (ssl != NULL)
		SSL_CTX_free(ssl);
	log_info("event=stopped sessions=%llu", (unsigned long long)server.nsessions);
	/* The connections still open die with the process; their bufferevents
	 * refer to freed sessions, so the base is not freed or run again. */
	return 0;
}
