/* report.c — `memscope report FILE.msb`: reads a binary trace
 * (docs/binary-format.md) through the library's reader, replays its events
 * and prints what the trace holds: the traced program, whether the file is
 * whole, the events by kind, peak and live memory from the replay, the largest
 * live sites, and the tracker's own figures from the trailer. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <memscope.h>

#include "report.h"

void memscope_human(char *out, size_t n, double b)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024.0 && u < 4) {
        b /= 1024.0;
        u++;
    }
    snprintf(out, n, u ? "%.1f %s" : "%.0f %s", b, unit[u]);
}

typedef struct site_sum {
    const ms_site *site;
    size_t count;
    uint64_t bytes;
} site_sum;

static int by_site(const void *a, const void *b)
{
    const ms_active_allocation *x = a, *y = b;
    return (x->site > y->site) - (x->site < y->site);
}
static int by_bytes(const void *a, const void *b)
{
    const site_sum *x = a, *y = b;
    return (x->bytes < y->bytes) - (x->bytes > y->bytes);
}

/* Replay the events and print the live state they leave. */
static void print_replay(const ms_memory_event *ev, size_t n)
{
    ms_memory_snapshot *s = ms_snapshot_build_from_events(ev, n);
    if (!s) {
        fprintf(stderr, "memscope: cannot replay the events: %s\n", ms_last_error_message());
        return;
    }
    ms_memory_stats st = ms_snapshot_stats(s);
    char peak[32], cur[32];
    memscope_human(peak, sizeof peak, (double)st.peak_memory);
    memscope_human(cur, sizeof cur, (double)st.current_memory);
    printf("  replayed: peak %s, %s live in %zu blocks at the end", peak, cur,
           st.active_allocations);
    if (st.unmatched_deallocations)
        printf(" (%zu frees of blocks the trace does not hold)", st.unmatched_deallocations);
    printf("\n");
    size_t na;
    const ms_active_allocation *a = ms_snapshot_allocations(s, &na);
    ms_active_allocation *sorted = na ? malloc(na * sizeof *sorted) : NULL;
    site_sum *sums = na ? calloc(na, sizeof *sums) : NULL;
    size_t ns = 0;
    if (sorted && sums) {
        memcpy(sorted, a, na * sizeof *sorted);
        qsort(sorted, na, sizeof *sorted, by_site);
        for (size_t i = 0; i < na; i++) {
            if (ns == 0 || sums[ns - 1].site != sorted[i].site)
                sums[ns++].site = sorted[i].site;
            sums[ns - 1].count++;
            sums[ns - 1].bytes += sorted[i].size;
        }
        qsort(sums, ns, sizeof *sums, by_bytes);
        for (size_t i = 0; i < ns && i < 5; i++) {
            char b[32];
            memscope_human(b, sizeof b, (double)sums[i].bytes);
            const ms_site *site = sums[i].site;
            if (site)
                printf("  %10s in %6zu blocks  %s %s %s:%u\n", b, sums[i].count,
                       site->name ? site->name : "?", site->func ? site->func : "?",
                       site->file ? site->file : "?", site->line);
            else
                printf("  %10s in %6zu blocks  (not named)\n", b, sums[i].count);
        }
    }
    free(sorted);
    free(sums);
    ms_snapshot_free(s);
}

#define USAGE "usage: memscope report FILE.msb [--json OUT] [--html OUT] [--summary]\n"

/* Write the reports of the run the trace holds. @return 0, or 1 on failure. */
static int write_reports(const char *path, const char *json, const char *html)
{
    ms_tracker *t = ms_tracker_from_trace(path);
    if (!t) {
        fprintf(stderr, "memscope: %s\n", ms_last_error_message());
        return 1;
    }
    int rc = 0;
    if (json && ms_export_json(t, json) < 0) {
        fprintf(stderr, "memscope: %s\n", ms_last_error_message());
        rc = 1;
    } else if (json) {
        printf("memscope: report written to %s\n", json);
    }
    if (html && ms_export_html(t, html) < 0) {
        fprintf(stderr, "memscope: %s\n", ms_last_error_message());
        rc = 1;
    } else if (html) {
        printf("memscope: dashboard written to %s\n", html);
    }
    ms_tracker_free(t);
    return rc;
}

int memscope_cmd_report(int argc, char **argv)
{
    const char *path = NULL, *json = NULL, *html = NULL;
    bool summary = false;
    for (int i = 0; i < argc; i++) {
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--summary") == 0) {
            summary = true;
        } else if (strcmp(argv[i], "--json") == 0 && next) {
            json = argv[++i];
        } else if (strcmp(argv[i], "--html") == 0 && next) {
            html = argv[++i];
        } else if (argv[i][0] == '-' || path) {
            fprintf(stderr, USAGE);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (!path) {
        fprintf(stderr, USAGE);
        return 2;
    }
    if (json || html) {
        int rc = write_reports(path, json, html);
        if (rc || !summary)
            return rc;
    }
    ms_trace *tr;
    if (ms_trace_open(path, &tr) < 0) {
        fprintf(stderr, "memscope: %s\n", ms_last_error_message());
        return 1;
    }
    size_t cap = 1024, n = 0, samples = 0, by_type[3] = {0};
    ms_memory_event *ev = malloc(cap * sizeof *ev);
    ms_trace_item it;
    int rc;
    while (ev && (rc = ms_trace_next(tr, &it)) == 1) {
        if (it.kind == MS_TRACE_SAMPLE) {
            samples++;
            continue;
        }
        if (n == cap) {
            ms_memory_event *grown = realloc(ev, 2 * cap * sizeof *ev);
            if (!grown) {
                free(ev);
                ev = NULL;
                break;
            }
            ev = grown;
            cap *= 2;
        }
        ev[n++] = it.event;
        by_type[it.event.type]++;
    }
    if (!ev) {
        fprintf(stderr, "memscope: out of memory reading %s\n", path);
        ms_trace_close(tr);
        return 1;
    }
    const ms_trace_info *info = ms_trace_get_info(tr);
    printf("memscope: %s: a trace of %s (pid %llu), format %u, %s\n", path,
           info->program[0] ? info->program : "?", (unsigned long long)info->pid, info->version,
           rc < 0           ? "unreadable past a damaged block"
           : info->complete ? "complete"
                            : "TRUNCATED: read to its last whole block");
    printf("  %zu events (%zu allocations, %zu frees, %zu reallocations), %zu system samples\n", n,
           by_type[MS_EVENT_ALLOCATE], by_type[MS_EVENT_DEALLOCATE], by_type[MS_EVENT_REALLOCATE],
           samples);
    if (info->sampling.sample_rate < 1.0)
        printf("  sampled at %g: the figures of the sampled blocks only\n",
               info->sampling.sample_rate);
    print_replay(ev, n);
    if (info->complete) {
        const ms_memory_stats *st = &info->stats;
        char peak[32];
        memscope_human(peak, sizeof peak, (double)st->peak_memory);
        printf("  the tracker's figures: %zu allocations, %zu frees, peak %s, %zu live blocks\n",
               st->total_allocations, st->total_deallocations, peak, st->active_allocations);
        if (st->evicted_events)
            printf("  %llu older events had left the tracker's retained log: the replay "
                   "starts after them\n",
                   (unsigned long long)st->evicted_events);
        if (st->dropped_events)
            printf("  %llu events could not be recorded at all\n",
                   (unsigned long long)st->dropped_events);
    }
    if (rc < 0)
        fprintf(stderr, "memscope: %s\n", ms_last_error_message());
    free(ev);
    ms_trace_close(tr);
    return rc < 0 ? 1 : 0;
}
