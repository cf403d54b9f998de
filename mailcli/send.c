/* send.c - mailcli send (work in progress, see issue 5). */
#include <stdio.h>
#include "mailcli.h"

int
send_main(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "mailcli send: not yet implemented\n");
	return 1;
}
