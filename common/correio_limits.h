/*
 * correio_limits.h - every limit correio enforces, named once, with its ini key in
 * the [limits] section, its default and its meaning. config.c fills struct
 * limits from this list; docs/correio.conf.5 documents each; a grep for the
 * field name finds the one place that enforces it.
 *
 *   X(field, default, minimum, maximum, description)
 */
#ifndef CORREIO_LIMITS_TABLE_H
#define CORREIO_LIMITS_TABLE_H

#define CORREIO_LIMITS(X) \
	X(max_connections,          1000,   1,  100000,   "concurrent connections per daemon; more get 421 / -ERR") \
	X(max_connections_per_addr, 50,     1,  100000,   "concurrent connections from one client address") \
	X(smtp_command_timeout,     300,    5,  86400,    "seconds an SMTP session may wait for a command (RFC 5321 4.5.3.2)") \
	X(smtp_data_timeout,        600,    5,  86400,    "seconds allowed between blocks of DATA (RFC 5321 4.5.3.2)") \
	X(pop3_idle_timeout,        600,    600, 86400,   "seconds a POP3 session may stay idle (RFC 1939: at least 10 minutes)") \
	X(max_message_size,         26214400, 1024, 1073741824, "largest message accepted, in octets (advertised with SIZE)") \
	X(max_recipients,           100,    100, 100000,  "RCPT commands per message (RFC 5321 4.5.3.1.8: at least 100)") \
	X(max_errors,               20,     1,  1000,     "bad commands before a session is closed") \
	X(smtp_line_max,            512,    512, 4096,    "octets in an SMTP command line, CRLF included (RFC 5321 4.5.3.1.4)") \
	X(smtp_data_line_max,       1000,   1000, 65536,  "octets in a line of message text, CRLF included (RFC 5321 4.5.3.1.6)") \
	X(pop3_line_max,            512,    255, 4096,    "octets in a POP3 command line (RFC 2449: 255 per argument)") \
	X(max_received_headers,     50,     10, 1000,     "Received: headers after which a message is refused as a loop") \
	X(auth_fail_delay_max,      30,     0,  600,      "seconds: the longest delay after a failed login (grows per failure)") \
	X(auth_max_failures,        5,      1,  1000,     "failed logins in one session before it is closed") \
	X(auth_fail_addr_ceiling,   50,     1,  100000,   "failed logins from one client address (any accounts) after which each waits auth_fail_delay_max") \
	X(auth_fail_window,         900,    10, 86400,    "seconds after its last failed login that an address or account's failures are forgotten") \
	X(pop3_lock_ttl,            1800,   60, 86400,    "seconds after which a crashed POP3 session's mailbox lock expires") \
	X(transcript_max_lines,     2000,   10, 1000000,  "lines of one session kept in a transcript")

struct limits {
#define LIMIT_FIELD(name, def, min, max, desc) long name;
	CORREIO_LIMITS(LIMIT_FIELD)
#undef LIMIT_FIELD
};

#endif
