/* outside.c — a program outside the tree, built against the installed
 * memscope (pkg-config and find_package) by run.sh. Exits 0 if it works. */
#include <memscope.h>

#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    if (ms_version() != MS_VERSION_NUMBER) {
        fprintf(stderr, "outside: header %s, library %s\n", MS_VERSION_STRING, ms_version_string());
        return 1;
    }
    ms_tracker *t = TRACKER();
    int *data = malloc(5 * sizeof *data);
    if (t == NULL || data == NULL)
        return 1;
    TRACK(t, data);

    ms_analysis_report *r = ms_analyze(t);
    int ok = r != NULL && r->total_allocations == 1 && r->active_allocations == 1;
    if (r != NULL)
        printf("outside: %zu allocation(s), peak %llu bytes\n", r->total_allocations,
               (unsigned long long)r->peak_memory_bytes);
    ms_report_free(r);
    MS_FREE(t, data);
    ms_tracker_free(t);
    return ok ? 0 : 1;
}
