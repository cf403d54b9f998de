/* fetch.c - mailcli inbox/read/save/delete/fetch (work in progress, see issue 5). */
#include <stdio.h>
#include "mailcli.h"

static int
notyet(const char *what)
{
	fprintf(stderr, "mailcli %s: not yet implemented\n", what);
	return 1;
}

int inbox_main(int argc, char **argv) { (void)argc; (void)argv; return notyet("inbox"); }
int read_main(int argc, char **argv) { (void)argc; (void)argv; return notyet("read"); }
int save_main(int argc, char **argv) { (void)argc; (void)argv; return notyet("save"); }
int delete_main(int argc, char **argv) { (void)argc; (void)argv; return notyet("delete"); }
int fetch_main(int argc, char **argv) { (void)argc; (void)argv; return notyet("fetch"); }
