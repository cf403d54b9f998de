/*
 * mailcli.h - the subcommands of mailcli. Each is a main-like function that
 * receives argv starting at the subcommand name and returns the exit status
 * (0 ok, 1 failure, 2 usage error). main.c holds the table.
 */
#ifndef CORREIO_MAILCLI_H
#define CORREIO_MAILCLI_H

int	admin_main(int argc, char **argv);	/* admin.c: accounts, domains, aliases, queue, transcripts */
struct store;
/* admin_sessions.c: `admin transcript list`; argv[0] is "list". */
int	admin_transcript_list(struct store *st, int argc, char **argv);
int	compose_main(int argc, char **argv);	/* compose.c: write an RFC 5322 message */
int	send_main(int argc, char **argv);	/* send.c: compose and send over SMTP */
int	probe_main(int argc, char **argv);	/* probe.c: what a server offers */
int	inbox_main(int argc, char **argv);	/* fetch.c: list messages over POP3 */
int	read_main(int argc, char **argv);	/* fetch.c: show one message */
int	save_main(int argc, char **argv);	/* fetch.c: save attachments of one message */
int	delete_main(int argc, char **argv);	/* fetch.c: delete one message */
int	fetch_main(int argc, char **argv);	/* fetch.c: download to mbox or maildir */
int	check_main(int argc, char **argv);	/* check_main.c: grade an SMTP or POP3 server */
int	check_client_main(int argc, char **argv);	/* check_client.c: grade an SMTP or POP3 client */
int	show_main(int argc, char **argv);	/* show.c: MIME tree of a file */
int	extract_main(int argc, char **argv);	/* show.c: extract attachments of a file */

#endif
