/* streaming.c — a long run's whole history on disk: every event is streamed
 * to a binary trace (argv[1], default memscope-stream.msb) while the
 * tracker's memory stays bounded, then the run is rebuilt from the file and
 * its report checked against the tracker's own figures. Returns non-zero if a
 * figure differs or an event is missing. */
#include <memscope.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

enum { LIVE = 1024, ROUNDS = 500000 };

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "memscope-stream.msb";
    ms_tracker *t = ms_tracker_with_streaming(ms_tracker_new(), path);
    if (!t || ms_last_error() != 0) {
        fprintf(stderr, "streaming: %s\n", ms_last_error_message());
        ms_tracker_free(t);
        return 1;
    }

    // A cache that replaces a random entry each round: a million events,
    // 40 blocks of it still live at the end.
    static void *cache[LIVE];
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (long i = 0; i < ROUNDS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        size_t k = (size_t)(x % LIVE);
        if (cache[k])
            MS_FREE(t, cache[k]);
        cache[k] = malloc(32 + (size_t)(x >> 57));
        TRACK(t, cache[k]);
    }
    for (size_t k = 40; k < LIVE; k++)
        if (cache[k])
            MS_FREE(t, cache[k]);

    ms_memory_stats live = ms_tracker_stats(t);
    ms_tracker_free(t); // finishes the trace: the rest of the events, the totals

    ms_tracker *r = ms_tracker_from_trace(path);
    if (!r) {
        fprintf(stderr, "streaming: %s\n", ms_last_error_message());
        return 1;
    }
    ms_memory_stats back = ms_tracker_stats(r);
    ms_analysis_report *rep = ms_analyze(r);
    int bad = !rep || back.total_allocations != live.total_allocations ||
              back.peak_memory != live.peak_memory ||
              back.active_allocations != live.active_allocations || back.stream_lost_events != 0;
    if (rep)
        printf("%s: %zu allocations, %zu frees, peak %llu B, %zu blocks live at the end; "
               "%llu events recorded\n",
               path, rep->total_allocations, rep->total_deallocations,
               (unsigned long long)rep->peak_memory_bytes, rep->active_allocations,
               (unsigned long long)back.retained_events + back.evicted_events);
    if (bad)
        fprintf(stderr, "streaming: the rebuilt run differs from the tracker's\n");
    ms_report_free(rep);
    ms_tracker_free(r);
    for (size_t k = 0; k < 40; k++)
        free(cache[k]);
    return bad;
}
