/* probe.c - mailcli probe (work in progress, see issue 5). */
#include <stdio.h>
#include "mailcli.h"

int
probe_main(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "mailcli probe: not yet implemented\n");
	return 1;
}
