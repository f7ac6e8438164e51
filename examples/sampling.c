/* sampling.c — the seed's sampling example in C: with the high-performance
 * preset (1% of TRACK calls recorded) 10 000 allocations of 100 ints are
 * tracked and freed; the report's figures are estimates of the whole.
 * Returns non-zero if the exact figures do not add up. */
#include <memscope.h>

#include <stdio.h>
#include <stdlib.h>

#define ITERATIONS 10000

int main(void)
{
    ms_tracker *t = ms_tracker_with_sampling(ms_tracker_new(), ms_sampling_high_performance());
    if (t == NULL) {
        fprintf(stderr, "sampling: cannot create the tracker: %s\n", ms_strerror(ms_last_error()));
        return 1;
    }

    for (int i = 0; i < ITERATIONS; i++) {
        int *data = malloc(100 * sizeof *data);
        if (data == NULL) {
            fprintf(stderr, "sampling: out of memory\n");
            ms_tracker_free(t);
            return 1;
        }
        for (int j = 0; j < 100; j++)
            data[j] = i;
        TRACK(t, data);
        MS_FREE(t, data); /* a free of a block that was not sampled is ignored */
    }

    int failed = 0;
    ms_memory_stats s = ms_tracker_stats(t); /* exact: what was recorded */
    ms_analysis_report *r = ms_analyze(t);   /* scaled by 1 / sample_rate */
    if (r == NULL) {
        fprintf(stderr, "sampling: ms_analyze: %s\n", ms_last_error_message());
        ms_tracker_free(t);
        return 1;
    }

    printf("sample rate          %.2f\n", r->sample_rate);
    printf("TRACK calls          %d\n", ITERATIONS);
    printf("recorded             %zu (sampled out %llu)\n", s.total_allocations,
           (unsigned long long)s.sampled_out);
    printf("total allocations    %zu%s\n", r->total_allocations,
           r->is_estimate ? " (estimate)" : "");
    printf("peak memory          %llu bytes%s\n", (unsigned long long)r->peak_memory_bytes,
           r->is_estimate ? " (estimate)" : "");

    if (s.total_allocations + s.sampled_out != ITERATIONS) {
        fprintf(stderr, "sampling: recorded + sampled out = %llu, expected %d\n",
                (unsigned long long)(s.total_allocations + s.sampled_out), ITERATIONS);
        failed = 1;
    }
    if (s.total_deallocations != s.total_allocations || s.active_allocations != 0 ||
        s.ignored_deallocations != s.sampled_out || s.unmatched_deallocations != 0) {
        fprintf(stderr, "sampling: every recorded block should be freed and every other free "
                        "ignored\n");
        failed = 1;
    }
    if (!r->is_estimate || r->sample_rate != 0.01) {
        fprintf(stderr, "sampling: the report should be an estimate at rate 0.01\n");
        failed = 1;
    }

    ms_report_free(r);
    ms_tracker_free(t);
    return failed;
}
