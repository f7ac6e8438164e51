/* report.h — `memscope report` (report.c), and the byte format both commands print. */
#ifndef MEMSCOPE_TOOL_REPORT_H
#define MEMSCOPE_TOOL_REPORT_H

#include <stddef.h>

/* b bytes as "3.6 KiB" (whole bytes below 1 KiB) in out. */
void memscope_human(char *out, size_t n, double b);

/* `memscope report ARGS...` (argv after "report"). @return the exit status. */
int memscope_cmd_report(int argc, char **argv);

#endif
