/* report.h — `memscope report` (report.c). */
#ifndef MEMSCOPE_TOOL_REPORT_H
#define MEMSCOPE_TOOL_REPORT_H

/* `memscope report ARGS...` (argv after "report"). @return the exit status. */
int memscope_cmd_report(int argc, char **argv);

#endif
