/* bench_html.c — the dashboard of a large run: 10 million events (TRACK and
 * UNTRACK of real heap blocks, with call stacks) from 2000 named sites at 8
 * stack depths, 200 000 blocks alive at the end, system monitoring on. Writes
 * the page and prints the export's time and the page's size; bench/html_render.mjs
 * then times its rendering in headless chromium (scripts/bench.sh runs both).
 * Usage: bench_html OUT.html [EVENTS] */
#define _POSIX_C_SOURCE 200809L
#include <memscope.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "bench_util.h"

enum { SITES = 2000, LIVE = 200000, DEPTHS = 8 };

static ms_tracker *t;
static ms_site sites[SITES];
static char names[SITES][32], types[SITES][40], files[SITES][40], funcs[SITES][32];
static void *live[LIVE];

/* Name the block from `depth` frames further down, so stacks differ by depth. */
__attribute__((noinline)) static void track_at(int depth, void *p, size_t size, const ms_site *s)
{
    if (depth > 0) {
        track_at(depth - 1, p, size, s);
        __asm__ volatile("" ::: "memory"); // keep the call a call, not a jump
        return;
    }
    ms_track_as(t, p, size, s);
}

int main(int argc, char **argv)
{
    bench_init_output();
    if (argc < 2) {
        fprintf(stderr, "usage: bench_html OUT.html [EVENTS]\n");
        return 2;
    }
    uint64_t events = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000000u;
    for (int i = 0; i < SITES; i++) {
        snprintf(names[i], sizeof names[i], "buffer_%d", i);
        snprintf(types[i], sizeof types[i], "struct chunk_%d *", i % 97);
        snprintf(files[i], sizeof files[i], "src/module_%d.c", i % 211);
        snprintf(funcs[i], sizeof funcs[i], "make_%d", i);
        sites[i] = (ms_site){names[i], types[i], files[i], (unsigned)(10 + i), funcs[i]};
    }
    t = ms_tracker_new();
    if (!t)
        return 1;
    ms_sampling_config cfg = {
        .sample_rate = 1.0, .capture_call_stack = true, .max_stack_depth = 16};
    ms_tracker_with_sampling(t, cfg);
    ms_tracker_with_system_monitoring(t);

    uint64_t rng = 0x2545F4914F6CDD1Du, n = 0;
    uint64_t start = bench_now_ns();
    while (n < events) {
        uint64_t r = bench_rng_next(&rng);
        size_t slot = (size_t)(r % LIVE);
        if (live[slot]) {
            ms_untrack(t, live[slot]);
            free(live[slot]);
            live[slot] = NULL;
            n++;
        }
        size_t size = 16 + (size_t)((r >> 20) % ((r >> 60) ? 256u : 8192u));
        void *p = malloc(size);
        if (!p)
            return 1;
        track_at((int)((r >> 40) % DEPTHS), p, size, &sites[(r >> 24) % SITES]);
        live[slot] = p;
        n++;
    }
    uint64_t recorded = bench_now_ns();
    ms_memory_stats st = ms_tracker_stats(t);
    uint64_t before = bench_now_ns();
    if (ms_export_html(t, argv[1]) < 0) {
        fprintf(stderr, "bench_html: %s\n", ms_last_error_message());
        return 1;
    }
    uint64_t after = bench_now_ns();
    struct stat sb;
    if (stat(argv[1], &sb) != 0)
        return 1;
    bench_metric_u64("html_run_events", st.total_allocations + st.total_deallocations);
    bench_metric_u64("html_run_live_blocks", st.active_allocations);
    bench_metric("html_run_record_s", (double)(recorded - start) / 1e9, 2);
    bench_metric("html_export_ms", (double)(after - before) / 1e6, 1);
    bench_metric("html_page_mib", (double)sb.st_size / (1024.0 * 1024.0), 2);
    for (size_t i = 0; i < LIVE; i++) {
        if (live[i]) {
            ms_untrack(t, live[i]);
            free(live[i]);
        }
    }
    ms_tracker_free(t);
    return 0;
}
