/*
 * esc.h - the SMTP enhanced status codes correio sends or records (RFC 3463;
 * RFC 4954 6 for AUTH, RFC 6531 3.7.4.1 for SMTPUTF8), named once so that a
 * reply, a queue item and a DSN say the same thing the same way. A code
 * taken from a remote server's reply is copied as it came, never from here.
 */
#ifndef CORREIO_ESC_H
#define CORREIO_ESC_H

/* 2.X.X: success */
#define ESC_OK			"2.0.0"		/* other or undefined success */
#define ESC_SENDER_OK		"2.1.0"		/* originator address valid */
#define ESC_RCPT_OK		"2.1.5"		/* destination address valid */
#define ESC_PROTO_OK		"2.5.0"		/* protocol status: other */
#define ESC_AUTH_OK		"2.7.0"		/* authentication succeeded (RFC 4954) */

/* 4.X.X: temporary failure */
#define ESC_TEMP		"4.0.0"		/* other or undefined */
#define ESC_SYSTEM_TEMP		"4.3.0"		/* mail system: other (store, memory) */
#define ESC_SYSTEM_FULL		"4.3.1"		/* mail system full */
#define ESC_NOT_ACCEPTING	"4.3.2"		/* system not accepting network messages */
#define ESC_NO_ANSWER		"4.4.1"		/* no answer from host */
#define ESC_BAD_CONNECTION	"4.4.2"		/* bad connection */
#define ESC_DNS_TEMP		"4.4.3"		/* directory server (DNS) failure */
#define ESC_EXPIRED		"4.4.7"		/* delivery time expired */
#define ESC_TOO_MANY_RCPTS	"4.5.3"		/* too many recipients */
#define ESC_SECURITY_TEMP	"4.7.0"		/* security: other */
#define ESC_NO_SECURITY		"4.7.4"		/* security features not supported */
#define ESC_CRYPTO_FAILED	"4.7.5"		/* cryptographic failure */
#define ESC_BAD_CREDENTIALS	"4.7.8"		/* authentication credentials invalid */

/* 5.X.X: permanent failure */
#define ESC_BAD_MAILBOX		"5.1.1"		/* bad destination mailbox address */
#define ESC_BAD_SYSTEM		"5.1.2"		/* bad destination system address */
#define ESC_NULL_MX		"5.1.10"	/* recipient address has a null MX (RFC 7505) */
#define ESC_BAD_ADDR_SYNTAX	"5.1.3"		/* bad destination mailbox address syntax */
#define ESC_BAD_SENDER		"5.1.7"		/* bad sender's mailbox address syntax */
#define ESC_TOO_BIG		"5.3.4"		/* message too big for system */
#define ESC_LOOP		"5.4.6"		/* routing loop detected */
#define ESC_BAD_COMMAND		"5.5.1"		/* invalid command */
#define ESC_SYNTAX		"5.5.2"		/* syntax error */
#define ESC_BAD_ARGS		"5.5.4"		/* invalid command arguments */
#define ESC_AUTH_TOO_LONG	"5.5.6"		/* authentication exchange line too long */
#define ESC_NEEDS_UTF8		"5.6.7"		/* non-ASCII address without SMTPUTF8 */
#define ESC_SECURITY		"5.7.0"		/* security: other (authentication required) */
#define ESC_NOT_AUTHORIZED	"5.7.1"		/* delivery not authorized, message refused */
#define ESC_AUTH_FAILED		"5.7.8"		/* authentication credentials invalid (RFC 4954) */
#define ESC_NEEDS_TLS		"5.7.11"	/* encryption required for the mechanism */

#endif
