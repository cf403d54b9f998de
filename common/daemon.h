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

#include "net.h"

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
 * accepting on net, call stop(arg) (the
 * daemon says goodbye to each session), then leave base's loop once
 * net_server_nconns(net) is 0 or grace_secs have passed. net may be NULL
 * (webd: evhttp owns its connections; stop() ends them): the loop is left
 * once stop() has run. Never NULL:
 * failing to install the handlers is a fatal start-up error.
 */
struct daemon_stop *daemon_stop_on_signals(struct event_base *base, struct net_server *net,
	    long grace_secs, void (*stop)(void *arg), void *arg);
/* Free the signal events and the stop timer (after the loop). */
void	daemon_stop_free(struct daemon_stop **dsp);

#endif
