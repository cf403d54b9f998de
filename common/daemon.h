/*
 * daemon.h - the start-up and the stop that smtpd and pop3d share: process
 * set-up (SIGPIPE, the descriptor limit), dropping root after the listeners
 * are bound (refusing to go on as uid 0), and SIGTERM/SIGINT: stop
 * accepting, let the daemon tell each session, then leave the event loop
 * once the last connection has gone or after a grace period.
 * Never: runs after start-up except for the signal and its stop timer.
 */
#ifndef CORREIO_DAEMON_H
#define CORREIO_DAEMON_H

#include <event2/event.h>

#include <stdbool.h>

#include "config.h"
#include "net.h"
#include "session.h"

/*
 * The first steps of both daemons: logging as name, the command line over
 * the config file and the defaults into cfg (config_daemon_args), the
 * verbosity, then daemon_prepare(). Returns -1 to go on, or the exit status
 * to leave with (--help, --version: 0; a usage error: 2). A bad config is a
 * fatal start-up error.
 */
int	daemon_init(const char *name, enum config_daemon which, struct config *cfg,
	    int argc, char **argv);

/* Before anything else: ignore SIGPIPE (a write to a closed socket is an
 * error, not a death) and raise RLIMIT_NOFILE to its hard limit (thousands
 * of idle sessions need thousands of descriptors). */
void	daemon_prepare(void);

/*
 * Started as root: become user (the config key `user` of section, e.g.
 * "[pop3d]", named in the messages) once the ports are bound. fatal when the
 * user is unknown or is root, or when uid 0 is still there afterwards.
 * With no user configured it warns that it keeps running as root, naming
 * section. Does nothing when not started as root.
 */
void	daemon_drop_privileges(const char *user, const char *section);

/* Start-up is over (listening, privileges dropped, store open): tell the
 * service manager (READY=1 over $NOTIFY_SOCKET, units of Type=notify). */
void	daemon_ready(void);

struct daemon_stop;

/*
 * On SIGTERM or SIGINT: log, tell the service manager (STOPPING=1), stop
 * accepting on net, set *stopping_r (a session accepted from now on is told
 * at once), call shutdown(owner) for each session in sessions (the daemon's
 * goodbye: 421, -ERR), then leave base's loop once net_server_nconns(net) is
 * 0 or grace_secs have passed. net, sessions and stopping_r may be NULL
 * (webd: evhttp owns its connections): the loop is left at once. Never
 * NULL: failing to install the handlers is a fatal start-up error.
 */
struct daemon_stop *daemon_stop_on_signals(struct event_base *base, struct net_server *net,
	    long grace_secs, struct session_list *sessions, void (*shutdown)(void *owner),
	    bool *stopping_r);
/* Free the signal events and the stop timer (after the loop). */
void	daemon_stop_free(struct daemon_stop **dsp);

#endif
