/*
 * sesslog.h - the session log: which sessions there were (protocol, client,
 * start, account, how they ended) and their C:/S: transcripts, written to the
 * store live, so a session can be watched and found while it goes on
 * (mailcli admin transcript, webd).
 *
 * The daemons only queue records here; one background thread with its own
 * store handle writes them in batches every SESSLOG_FLUSH_MS, with
 * synchronous=NORMAL: transcripts are lab data, not mail, so they never add a
 * transaction or an fsync to the delivery path. A crash may lose the last
 * batch (about SESSLOG_FLUSH_MS of lines); never a message.
 * Never: blocks a session on the store, or grows past SESSLOG_QUEUE_MAX.
 */
#ifndef CORREIO_SESSLOG_H
#define CORREIO_SESSLOG_H

#include <stddef.h>

/* How often queued records are written (ms), and the memory they may take
 * before new transcript lines are dropped (and the drop logged). */
#define SESSLOG_FLUSH_MS	200
/* After a session closes, the batch is written this long after the last
 * one began: soon, yet a bounded number of transactions however many
 * sessions a second close. */
#define SESSLOG_CLOSE_MS	50
#define SESSLOG_QUEUE_MAX	(8 * 1024 * 1024)

struct sesslog;

/* Start the writer thread on its own handle of the store at path. NULL with
 * the reason in err on failure (a start-up error). */
struct sesslog *sesslog_start(const char *store_path, char *err, size_t errlen);
/* Write what is queued, stop the thread, close its store handle. */
void	sesslog_stop(struct sesslog **slp);

/*
 * Queue a record for session id (thread-safe, never blocks on the store).
 * A NULL sesslog (transcripts off, or a test without the thread) ignores
 * everything. open: a session starts from client. lines: '\n'-separated
 * transcript lines. user: it logged in as account. account: it delivered
 * to account. close: it ended, because of outcome.
 */
void	sesslog_open(struct sesslog *sl, const char *id, const char *proto, const char *client);
void	sesslog_lines(struct sesslog *sl, const char *id, const char *proto, const char *lines,
	    size_t len);
void	sesslog_user(struct sesslog *sl, const char *id, const char *proto, const char *account);
void	sesslog_account(struct sesslog *sl, const char *id, const char *proto, const char *account);
void	sesslog_close(struct sesslog *sl, const char *id, const char *proto, const char *outcome);
/* Write everything queued so far before returning (tests, shutdown). */
void	sesslog_sync(struct sesslog *sl);

#endif
