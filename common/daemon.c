/*
 * daemon.c - start-up and graceful stop for smtpd and pop3d (daemon.h):
 * SIGPIPE, RLIMIT_NOFILE, the privilege drop and the SIGTERM/SIGINT stop
 * with its grace period. Start-up failures are fatal here (HACKING.md C10); once
 * the loop runs, nothing in this file ends the process but a signal.
 */
#include <sys/resource.h>
#include <sys/types.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "monotime.h"
#include "sdnotify.h"

/* How often the stop checks whether the last connection has gone. */
#define DAEMON_STOP_POLL_MS	50

struct daemon_stop {
	struct event_base	*base;
	struct net_server	*net;
	long			 grace;
	struct session_list	*sessions;
	void			(*shutdown)(void *owner);
	bool			*stopping_r;
	struct event		*sigterm, *sigint, *poll;
	int64_t			 deadline_ms;	/* monotonic: a clock step never cuts the grace */
	bool			 stopping;
};

int
daemon_init(const char *name, enum config_daemon which, struct config *cfg, int argc,
    char **argv)
{
	char err[512];
	int rc, verbose = 0;

	log_init(name, false, 0);
	if ((rc = config_daemon_args(cfg, which, argc, argv, NULL, &verbose, err,
	    sizeof(err))) == -1)
		fatalx("%s", err);
	if (rc > 0)
		return rc == 1 ? 0 : 2;
	log_set_verbosity(verbose);
	daemon_prepare();
	return -1;
}

void
daemon_prepare(void)
{
	struct rlimit rl;

	signal(SIGPIPE, SIG_IGN);
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

void
daemon_drop_privileges(const char *user, const char *section)
{
	struct passwd *pw;

	if (geteuid() != 0)
		return;
	if (user == NULL || user[0] == '\0') {
		log_warnx("event=running-as-root hint=\"set user = NAME in %s to drop privileges\"",
		    section);
		return;
	}
	if ((pw = getpwnam(user)) == NULL)
		fatalx("unknown user %s in %s user", user, section);
	if (pw->pw_uid == 0)
		fatalx("%s user %s is root; choose an unprivileged account", section, user);
	if (setgroups(1, &pw->pw_gid) == -1 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) == -1 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) == -1)
		fatal("cannot drop privileges to %s", user);
	if (getuid() == 0 || geteuid() == 0 || setuid(0) != -1)
		fatalx("privileges were not dropped: still able to be uid 0");
	log_info("event=privileges-dropped user=%s uid=%u", user, (unsigned)pw->pw_uid);
}

/* Leave the loop once every connection has gone, or when the grace is over. */
static void
stop_poll(evutil_socket_t fd, short what, void *arg)
{
	struct daemon_stop *ds = arg;
	struct timeval tv = { 0, DAEMON_STOP_POLL_MS * 1000 };

	(void)fd;
	(void)what;
	if (ds->net == NULL || net_server_nconns(ds->net) == 0 ||
	    monotime_ms() >= ds->deadline_ms) {
		event_base_loopexit(ds->base, NULL);
		/* The shutdown's own steps block this thread (workers
		 * joined, jobs waited for): their lines go out at once. */
		log_hold(NULL, NULL);
		return;
	}
	evtimer_add(ds->poll, &tv);
}

void
daemon_ready(void)
{
	/* What start-up logged is readable once the daemon says it is ready
	 * (the loop, which writes held lines, has not turned yet). */
	log_flush();
	if (sdnotify("READY=1") == -1)
		log_warn("event=sdnotify-failed state=READY");
}

static void
on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon_stop *ds = arg;

	(void)what;
	if (ds->stopping)
		return;
	ds->stopping = true;
	log_info("event=stopping signal=%d sessions=%zu", (int)sig,
	    ds->net != NULL ? net_server_nconns(ds->net) : 0);
	(void)sdnotify("STOPPING=1");
	if (ds->net != NULL)
		net_server_stop_accepting(ds->net);
	if (ds->stopping_r != NULL)
		*ds->stopping_r = true;		/* no session starts from now on */
	if (ds->sessions != NULL)
		session_list_each(ds->sessions, ds->shutdown);
	ds->deadline_ms = monotime_ms() + (int64_t)ds->grace * 1000;
	stop_poll(-1, 0, ds);
}

struct daemon_stop *
daemon_stop_on_signals(struct event_base *base, struct net_server *net, long grace_secs,
    struct session_list *sessions, void (*shutdown)(void *owner), bool *stopping_r)
{
	struct daemon_stop *ds;

	if ((ds = calloc(1, sizeof(*ds))) == NULL)
		fatalx("out of memory");
	ds->base = base;
	ds->net = net;
	ds->grace = grace_secs;
	ds->sessions = sessions;
	ds->shutdown = shutdown;
	ds->stopping_r = stopping_r;
	ds->sigterm = evsignal_new(base, SIGTERM, on_signal, ds);
	ds->sigint = evsignal_new(base, SIGINT, on_signal, ds);
	ds->poll = evtimer_new(base, stop_poll, ds);
	if (ds->sigterm == NULL || ds->sigint == NULL || ds->poll == NULL ||
	    evsignal_add(ds->sigterm, NULL) == -1 || evsignal_add(ds->sigint, NULL) == -1)
		fatalx("cannot install signal handlers");
	return ds;
}

void
daemon_stop_free(struct daemon_stop **dsp)
{
	struct daemon_stop *ds = *dsp;

	if (ds == NULL)
		return;
	event_free(ds->sigterm);
	event_free(ds->sigint);
	event_free(ds->poll);
	free(ds);
	*dsp = NULL;
}
