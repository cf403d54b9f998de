/*
 * sdnotify.h - tell systemd that a daemon is ready or stopping (Type=notify).
 *
 * The protocol is one datagram of "KEY=VALUE" lines on the AF_UNIX socket
 * named by $NOTIFY_SOCKET (a leading '@' is an abstract name); see
 * docs/INSTALL.md. Without $NOTIFY_SOCKET (not under systemd) nothing happens.
 * We speak it directly rather than link libsystemd for one sendto().
 */
#ifndef CORREIO_SDNOTIFY_H
#define CORREIO_SDNOTIFY_H

/*
 * Send STATE (e.g. "READY=1", "STOPPING=1") to the service manager.
 * Returns 1 if sent, 0 if there is no service manager, -1 on error (errno set;
 * the caller logs it and carries on: readiness is advisory).
 */
int	sdnotify(const char *state);

#endif
