/*
 * autoconfig.h - the settings a mail client needs to use this server (the
 * POP3/POP3S and submission/SMTPS listeners of the running config, the
 * host name, socket types, login names), and Mozilla's autoconfig document
 * (clientConfig version 1.1) that Thunderbird fetches from
 * /.well-known/autoconfig/mail/config-v1.1.xml. webd serves the document;
 * mailcli setup-client prints the same settings for people, mutt and
 * msmtp/mpop.
 * Never: invents a listener the config does not have.
 */
#ifndef CORREIO_AUTOCONFIG_H
#define CORREIO_AUTOCONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "config.h"

#define AUTOCONFIG_MAX	4	/* servers of each kind listed */

struct autoconfig_server {
	char	 host[256];
	char	 port[8];
	const char *socket;	/* Mozilla's socketType: "plain", "STARTTLS" or "SSL" */
	enum listen_role role;
};

struct autoconfig {
	char	 domain[256];	/* the address's domain, lower case */
	struct autoconfig_server in[AUTOCONFIG_MAX];	/* POP3: pop3s first */
	size_t	 nin;
	struct autoconfig_server out[AUTOCONFIG_MAX];	/* SMTP: submission, smtps, else inbound */
	size_t	 nout;
};

/*
 * The settings for email (an address "local@domain", or NULL / "" for the
 * server's own host name as the domain) from cfg. Returns 0, or -1 when
 * email is not a plausible address.
 */
int	autoconfig_from_config(const struct config *cfg, const char *email, struct autoconfig *ac_r);
/* Append the clientConfig XML document of ac to out. 0 or -1 (out full). */
int	autoconfig_xml(const struct autoconfig *ac, struct buf *out);

#endif
