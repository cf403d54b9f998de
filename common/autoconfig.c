/*
 * autoconfig.c - client settings from the running config and Mozilla's
 * autoconfig XML (autoconfig.h). The document follows the fields of
 * https://wiki.mozilla.org/Thunderbird:Autoconfiguration:ConfigFileFormat:
 * emailProvider, domain, displayName, incomingServer type="pop3" and
 * outgoingServer type="smtp", each with hostname, port, socketType,
 * username (%EMAILLOCALPART%: "ana" logs in as ana) and authentication.
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "autoconfig.h"
#include "markup.h"

static const char *
socket_type(const struct config *cfg, enum listen_role role)
{
	bool tls = cfg->tls_cert[0] != '\0';

	if (role == ROLE_SMTPS || role == ROLE_POP3S)
		return "SSL";
	return tls ? "STARTTLS" : "plain";
}

/* Add the listeners of role from ls[0..n) to v (no port twice). */
static void
add_role(const struct config *cfg, const struct listen_spec *ls, size_t n, enum listen_role role,
    struct autoconfig_server *v, size_t *nv)
{
	size_t i, j;

	for (i = 0; i < n; i++) {
		if (ls[i].role != role || *nv >= AUTOCONFIG_MAX)
			continue;
		for (j = 0; j < *nv; j++)
			if (strcmp(v[j].port, ls[i].port) == 0)
				break;
		if (j < *nv)
			continue;
		snprintf(v[*nv].host, sizeof(v[*nv].host), "%s", cfg->hostname);
		snprintf(v[*nv].port, sizeof(v[*nv].port), "%s", ls[i].port);
		v[*nv].socket = socket_type(cfg, role);
		v[*nv].role = role;
		(*nv)++;
	}
}

int
autoconfig_from_config(const struct config *cfg, const char *email, struct autoconfig *ac_r)
{
	const char *at, *d;
	char *p;

	memset(ac_r, 0, sizeof(*ac_r));
	if (email != NULL && *email != '\0') {
		if ((at = strrchr(email, '@')) == NULL || at == email || at[1] == '\0')
			return -1;
		for (d = at + 1; *d; d++)
			if (!isalnum((unsigned char)*d) && *d != '.' && *d != '-')
				return -1;
		if (snprintf(ac_r->domain, sizeof(ac_r->domain), "%s", at + 1) >=
		    (int)sizeof(ac_r->domain))
			return -1;
	} else
		snprintf(ac_r->domain, sizeof(ac_r->domain), "%s", cfg->hostname);
	for (p = ac_r->domain; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	add_role(cfg, cfg->pop3_listen, cfg->pop3_nlisten, ROLE_POP3S, ac_r->in, &ac_r->nin);
	add_role(cfg, cfg->pop3_listen, cfg->pop3_nlisten, ROLE_POP3, ac_r->in, &ac_r->nin);
	add_role(cfg, cfg->smtp_listen, cfg->smtp_nlisten, ROLE_SUBMISSION, ac_r->out, &ac_r->nout);
	add_role(cfg, cfg->smtp_listen, cfg->smtp_nlisten, ROLE_SMTPS, ac_r->out, &ac_r->nout);
	if (ac_r->nout == 0)
		add_role(cfg, cfg->smtp_listen, cfg->smtp_nlisten, ROLE_INBOUND, ac_r->out,
		    &ac_r->nout);
	return 0;
}

/* <name>escaped value</name> at indent. */
static int
element(struct buf *out, const char *indent, const char *name, const char *value)
{
	if (buf_printf(out, "%s<%s>", indent, name) == -1 || markup_html_str(out, value) == -1)
		return -1;
	return buf_printf(out, "</%s>\n", name);
}

static int
server(struct buf *out, const char *tag, const char *type, const struct autoconfig_server *s)
{
	const char *in = "      ";

	if (buf_printf(out, "    <%s type=\"%s\">\n", tag, type) == -1 ||
	    element(out, in, "hostname", s->host) == -1 ||
	    element(out, in, "port", s->port) == -1 ||
	    element(out, in, "socketType", s->socket) == -1 ||
	    element(out, in, "username", "%EMAILLOCALPART%") == -1 ||
	    element(out, in, "authentication", "password-cleartext") == -1)
		return -1;
	return buf_printf(out, "    </%s>\n", tag);
}

int
autoconfig_xml(const struct autoconfig *ac, struct buf *out)
{
	char name[300];
	size_t i;

	snprintf(name, sizeof(name), "correio mail (%s)", ac->domain);
	if (buf_puts(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<clientConfig version=\"1.1\">\n  <emailProvider id=\"") == -1 ||
	    markup_html_str(out, ac->domain) == -1 || buf_puts(out, "\">\n") == -1 ||
	    element(out, "    ", "domain", ac->domain) == -1 ||
	    element(out, "    ", "displayName", name) == -1 ||
	    element(out, "    ", "displayShortName", "correio") == -1)
		return -1;
	for (i = 0; i < ac->nin; i++)
		if (server(out, "incomingServer", "pop3", &ac->in[i]) == -1)
			return -1;
	for (i = 0; i < ac->nout; i++)
		if (server(out, "outgoingServer", "smtp", &ac->out[i]) == -1)
			return -1;
	return buf_puts(out, "  </emailProvider>\n</clientConfig>\n");
}
