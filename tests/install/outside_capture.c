/* outside_capture.c — a user's program linked with the installed capture
 * library: every malloc is recorded with no call to memscope but this check. */
#include <memscope.h>
#include <stdio.h>
#include <stdlib.h>

void *volatile sink;

int main(void)
{
    ms_memory_stats before = ms_tracker_stats(ms_tracker_global());
    for (int i = 0; i < 10; i++)
        sink = malloc(100);
    ms_memory_stats after = ms_tracker_stats(ms_tracker_global());
    if (!ms_capture_active() || after.total_allocations - before.total_allocations != 10) {
        fprintf(stderr, "capture did not record the 10 allocations\n");
        return 1;
    }
    puts("outside_capture: 10 allocations recorded");
    return 0;
}
