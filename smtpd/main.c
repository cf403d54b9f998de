/*
 * main.c - smtpd: command line, configuration, listeners, privilege drop,
 * the worker threads and the event loop (see docs/smtpd.8).
 *
 *   smtpd [-c FILE] [--store PATH] [--listen ADDR:PORT [ROLE]]... [-v] [-h]
 *
 * Owns: start-up and shutdown. Start-up failures are fatal (HACKING.md C10);
 * nothing after the loop starts may end the process but SIGTERM/SIGINT.
 * Order matters: bind the listeners (may need root), drop privileges to the
 * configured user, then open the store so its files belong to that user.
 */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <event2/event.h>

#include "config.h"
#include "log.h"
#include "sdnotify.h"
#include "net.h"
#include "relay.h"
#include "smtp_session.h"
#include "store.h"
#include "tls.h"

/* Seconds the sessions get to take their 421 at shutdown. */
#define SMTPD_SHUTDOWN_GRACE	2

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: smtpd [-c FILE] [--store PATH] [--listen ADDR:PORT [ROLE]]... [-v] [-h]\n"
	    "  -c, --config FILE   read FILE (default: built-in defaults)\n"
	    "      --store PATH    the SQLite store (overrides [store] path)\n"
	    "      --listen SPEC   \"ADDR:PORT [inbound|submission|smtps]\", repeatable;\n"
	    "                      replaces the file's listen lines\n"
	    "  -v, --verbose       debug logging (repeat for more)\n"
	    "  -h, --help          this text\n"
	    "  -V, --version       print the version and exit\n");
}

/* Check every this often whether the last session has gone. */
#define SMTPD_STOP_POLL_MS	50

static struct event *stop_ev;
static struct timeval stop_deadline;

/* Stop the loop once every session has closed, or when the grace is over. */
static void
stop_poll(evutil_socket_t fd, short what, void *arg)
{
	struct smtp_server *srv = arg;
	struct timeval now, tv = { 0, SMTPD_STOP_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	evutil_gettimeofday(&now, NULL);
	if (net_server_nconns(srv->net) == 0 || evutil_timercmp(&now, &stop_deadline, >=)) {
		event_base_loopexit(srv->base, NULL);
		return;
	}
	evtimer_add(stop_ev, &tv);
}

/*
 * SIGTERM/SIGINT: accept nothing more, tell every session 421 (RFC 5321 3.8)
 * and close it; a message being committed gets its 250 first. The loop stops
 * when the last connection has gone, or after SMTPD_SHUTDOWN_GRACE seconds.
 */
static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct smtp_server *srv = arg;
	struct smtp_session *s, *next;
	struct timeval now, grace = { SMTPD_SHUTDOWN_GRACE, 0 };

	(void)what;
	if (srv->stopping)
		return;
	srv->stopping = true;
	log_info("event=stopping signal=%d sessions=%zu", (int)sig, net_server_nconns(srv->net));
	(void)sdnotify("STOPPING=1");
	net_server_stop_accepting(srv->net);
	for (s = srv->sessions; s != NULL; s = next) {
		next = s->next;
		smtp_session_shutdown(s);
	}
	evutil_gettimeofday(&now, NULL);
	evutil_timeradd(&now, &grace, &stop_deadline);
	if ((stop_ev = evtimer_new(srv->base, stop_poll, srv)) == NULL) {
		event_base_loopexit(srv->base, NULL);
		return;
	}
	stop_poll(-1, 0, srv);
}

/* Started as root: become cfg->user (RFC-less, but every MTA does it). */
static void
drop_privileges(const struct config *cfg)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return;
	if (cfg->user[0] == '\0') {
		log_warnx("event=running-as-root hint=\"set [smtpd] user to an unprivileged account\"");
		return;
	}
	if ((pw = getpwnam(cfg->user)) == NULL)
		fatalx("unknown user %s in [smtpd] user", cfg->user);
	if (pw->pw_uid == 0)
		fatalx("[smtpd] user %s is root; choose an unprivileged account", cfg->user);
	if (setgroups(1, &pw->pw_gid) == -1 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", cfg->user);
	if (setuid(0) != -1)
		fatalx("privileges were not dropped: setuid(0) still works");
	log_info("event=privileges-dropped user=%s uid=%u", cfg->user, (unsigned)pw->pw_uid);
}

/* Thousands of idle sessions need thousands of descriptors. */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

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
	struct event *sigterm, *sigint;
	struct relay *relay = NULL;
	char err[512];
	int rc, verbose = 0;

	log_init("smtpd", false, 0);
	if ((rc = config_daemon_args(&cfg, CONFIG_SMTPD, argc, argv, usage, &verbose, err,
	    sizeof(err))) == -1)
		fatalx("%s", err);
	if (rc > 0)
		return rc == 1 ? 0 : 2;
	log_set_verbosity(verbose);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	memset(&srv, 0, sizeof(srv));
	srv.cfg = &cfg;
	srv.inflight_max = SMTP_INFLIGHT_MAX;
	if (cfg.tls_cert[0] != '\0') {
		if ((srv.ssl_ctx = tls_server_ctx(cfg.tls_cert, cfg.tls_key, err, sizeof(err))) == NULL)
			fatalx("TLS: %s", err);
	}
	if ((srv.base = net_base_new()) == NULL)
		fatalx("cannot create the event loop");
	if ((srv.net = net_server_new(srv.base, &cfg.limits, &smtp_net_callbacks, &srv,
	    srv.ssl_ctx)) == NULL)
		fatalx("out of memory");
	for (i = 0; i < cfg.smtp_nlisten; i++) {
		const struct listen_spec *ls = &cfg.smtp_listen[i];
		if (ls->role == ROLE_SMTPS && srv.ssl_ctx == NULL)
			fatalx("listener %s:%s is smtps but [tls] cert/key are not set", ls->host, ls->port);
		if (net_server_listen(srv.net, ls, err, sizeof(err)) == -1)
			fatalx("listen %s:%s: %s", ls->host, ls->port, err);
		log_info("event=listening addr=%s port=%d role=%s", ls->host,
		    net_server_port(srv.net, i), config_role_name(ls->role));
	}
	drop_privileges(&cfg);

	if (store_open(&srv.store, cfg.store_path, err, sizeof(err)) == -1)
		fatalx("store %s: %s", cfg.store_path, err);
	if ((srv.writer = smtp_worker_start(srv.base, cfg.store_path, "writer", err,
	    sizeof(err))) == NULL)
		fatalx("store writer: %s", err);
	if ((srv.checker = authpool_start(srv.base, cfg.store_path, 0, err, sizeof(err))) == NULL)
		fatalx("password checks: %s", err);
	if ((srv.guard = loginguard_new()) == NULL)
		fatalx("out of memory");
	/* Create net's cross-thread event now, on the loop thread. */
	if (net_run_in_loop(srv.base, loop_noop, NULL) == -1)
		fatalx("cannot set up the worker hand-back");

	/* The queue runner delivers what RCPT accepted for other domains. */
	if (relay_start(&relay, srv.base, &cfg, err, sizeof(err)) == -1)
		fatalx("relay: %s", err);

	sigterm = evsignal_new(srv.base, SIGTERM, on_signal, &srv);
	sigint = evsignal_new(srv.base, SIGINT, on_signal, &srv);
	if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm, NULL) == -1 ||
	    evsignal_add(sigint, NULL) == -1)
		fatalx("cannot install signal handlers");
	log_info("event=started hostname=%s store=%s tls=%s transcripts=%s", cfg.hostname,
	    cfg.store_path, srv.ssl_ctx ? "yes" : "no", cfg.transcripts ? "yes" : "no");

	if (sdnotify("READY=1") == -1)
		log_warn("event=sdnotify-failed");
	event_base_dispatch(srv.base);

	relay_stop(&relay);
	/* Commits in flight finish (their clients get no 250 and will retry). */
	smtp_worker_stop(&srv.writer);
	authpool_stop(&srv.checker);
	/* Deliver the workers' hand-backs so no session is left waiting. */
	event_base_loop(srv.base, EVLOOP_NONBLOCK);
	/* Sessions whose clients did not take their 421 within the grace. */
	smtp_session_free_all(&srv);
	if (stop_ev != NULL)
		event_free(stop_ev);
	net_server_free(&srv.net);
	store_close(&srv.store);
	loginguard_free(&srv.guard);
	event_free(sigterm);
	event_free(sigint);
	event_base_free(srv.base);
	if (srv.ssl_ctx != NULL)
		SSL_CTX_free(srv.ssl_ctx);
	log_info("event=stopped");
	return 0;
}
