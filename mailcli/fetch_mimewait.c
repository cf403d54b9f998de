/*
 * fetch_mimewait.c - TEMPORARY weak fallbacks for the MIME reader (mime.h),
 * so that mailcli links while mime_read.c is being written. The real
 * (strong) definitions replace these at link time; this file is deleted as
 * soon as they land. Each fallback fails cleanly.
 */
#include <stdio.h>
#include "mime.h"

#define WEAK __attribute__((weak))

WEAK struct mime_part *mime_parse(const char *msg, size_t len) { (void)msg; (void)len; return NULL; }
WEAK void mime_free(struct mime_part **root) { *root = NULL; }
WEAK int mime_decode_body(const struct mime_part *p, struct buf *out) { (void)p; (void)out; return -1; }
WEAK int mime_header(const struct mime_part *p, const char *name, char *dst, size_t len)
{ (void)p; (void)name; (void)dst; (void)len; return -1; }
WEAK const struct mime_part *mime_text_part(const struct mime_part *root) { (void)root; return NULL; }
WEAK void mime_print_tree(FILE *out, const struct mime_part *root) { (void)out; (void)root; }
WEAK int mime_save_attachments(const struct mime_part *root, const char *dir, bool force, FILE *report)
{ (void)root; (void)dir; (void)force; (void)report; return -1; }
