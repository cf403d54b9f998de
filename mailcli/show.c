/*
 * show.c - mailcli show / extract (work in progress; real implementation follows).
 */
#include <stdio.h>

#include "mailcli.h"

int
show_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "mailcli show: not yet implemented\n");
	return 1;
}

int
extract_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fprintf(stderr, "mailcli extract: not yet implemented\n");
	return 1;
}
