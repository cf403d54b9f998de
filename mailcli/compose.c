/*
 * compose.c - mailcli compose (work in progress; real implementation follows).
 */
#include <stdio.h>

#include "mailcli.h"

int
compose_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "mailcli compose: not yet implemented\n");
	return 1;
}
