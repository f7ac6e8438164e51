/* report.c — `memscope report FILE.msb`: reads a binary trace
 * (docs/binary-format.md) through the library's reader, replays its events
 * and prints what the trace holds: the traced program, whether the file is
 * whole, the events by kind, peak and live memory from the rebuilt run, its
 * largest live groups and hotspots, and the tracker's own figures from the
 * trailer. Memory stays bounded however long the trace. */
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

/* The run the trace holds, as rebuilt by the library (bounded memory: the
 * replay keeps the live state, not every event): peak, what was live at the
 * end, where it came from, and the hotspots. */
static void print_replay(ms_tracker *t)
{
    ms_analysis_report *r = ms_analyze(t);
    if (!r) {
        fprintf(stderr, "memscope: cannot replay the trace: %s\n", ms_last_error_message());
        return;
    }
    char peak[32], cur[32];
    memscope_human(peak, sizeof peak, (double)r->peak_memory_bytes);
    memscope_human(cur, sizeof cur, (double)r->leaked_bytes);
    printf("  replayed: peak %s, %s live in %zu blocks at the end%s", peak, cur, r->leaked_blocks,
           r->is_estimate ? " (estimated from the sample)" : "");
    if (r->unmatched_deallocations)
        printf(" (%zu frees of blocks the trace does not hold)", r->unmatched_deallocations);
    printf("\n");
    for (size_t i = 0; i < r->leak_count && i < 5; i++) {
        const ms_leak *l = &r->leaks[i];
        char b[32];
        memscope_human(b, sizeof b, (double)l->bytes);
        printf("  %10s in %6zu blocks  %s%s%s%s%s\n", b, l->count, l->var_name ? l->var_name : "",
               l->var_name ? " " : "", l->function ? l->function : "(unknown function)",
               l->location ? " " : "", l->location ? l->location : "");
    }
    if (r->hotspot_count)
        printf("  hotspots (most bytes allocated):\n");
    for (size_t i = 0; i < r->hotspot_count && i < 5; i++) {
        const ms_allocation_hotspot *h = &r->hotspots[i];
        char b[32];
        memscope_human(b, sizeof b, (double)h->total_size);
        printf("  %10s in %6zu allocations  %s %s%s%s\n", b, h->allocation_count, h->var_name,
               h->function ? h->function : "?", h->location ? " " : "",
               h->location ? h->location : "");
    }
    ms_report_free(r);
}

#define USAGE "usage: memscope report FILE.msb [--json OUT] [--html OUT] [--summary]\n"

/* Write the reports of the run t rebuilt from the trace at path (`complete`:
 * the trace ended with its trailer; a trace cut short still rebuilds, from
 * its whole blocks, and the reports must say so). @return 0, or 1 on failure. */
static int write_reports(ms_tracker *t, const char *path, bool complete, const char *json,
                         const char *html)
{
    if (!complete)
        fprintf(stderr,
                "memscope: %s is TRUNCATED (no trailer): the reports hold what its whole "
                "blocks do, not the whole run\n",
                path);
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
    // The file is read twice, whatever is asked: once here for what it holds
    // (and whether it is whole), once by the library to rebuild the run.
    ms_trace *tr;
    if (ms_trace_open(path, &tr) < 0) {
        fprintf(stderr, "memscope: %s\n", ms_last_error_message());
        return 1;
    }
    size_t n = 0, samples = 0, by_type[3] = {0};
    ms_trace_item it;
    int rc;
    while ((rc = ms_trace_next(tr, &it)) == 1) {
        if (it.kind == MS_TRACE_SAMPLE) {
            samples++;
            continue;
        }
        n++;
        by_type[it.event.type]++;
    }
    const ms_trace_info *info = ms_trace_get_info(tr);
    if (rc < 0 && (json || html)) { // damaged: no reports
        fprintf(stderr, "memscope: %s\n", ms_last_error_message());
        ms_trace_close(tr);
        return 1;
    }
    ms_tracker *t = rc == 0 ? ms_tracker_from_trace(path) : NULL;
    bool replay_failed = rc == 0 && !t;
    if (replay_failed)
        fprintf(stderr, "memscope: cannot replay the trace: %s\n", ms_last_error_message());
    if (json || html) {
        int wrc = replay_failed ? 1 : write_reports(t, path, info->complete, json, html);
        if (wrc || !summary) {
            ms_tracker_free(t);
            ms_trace_close(tr);
            return wrc;
        }
    }
    printf("memscope: %s: a trace of %s (pid %llu), format %u%s, %s\n", path,
           info->program[0] ? info->program : "?", (unsigned long long)info->pid, info->version,
           info->streamed ? ", streamed" : "",
           rc < 0           ? "unreadable past a damaged block"
           : info->complete ? "complete"
                            : "TRUNCATED: read to its last whole block");
    printf("  %zu events (%zu allocations, %zu frees, %zu reallocations), %zu system samples\n", n,
           by_type[MS_EVENT_ALLOCATE], by_type[MS_EVENT_DEALLOCATE], by_type[MS_EVENT_REALLOCATE],
           samples);
    if (info->sampling.sample_rate < 1.0)
        printf("  sampled at %g: the figures of the sampled blocks only (the frees above include\n"
               "  some of blocks sampling left out, which the replay ignores)\n",
               info->sampling.sample_rate);
    if (info->lost_events)
        printf("  %llu events are missing: the writer fell behind (the disk did not keep up)\n",
               (unsigned long long)info->lost_events);
    if (t)
        print_replay(t);
    if (info->complete) {
        const ms_memory_stats *st = &info->stats;
        char peak[32];
        memscope_human(peak, sizeof peak, (double)st->peak_memory);
        printf("  the tracker's figures%s: %zu allocations, %zu frees, peak %s, %zu live blocks\n",
               info->sampling.sample_rate < 1.0 ? " (of the sampled blocks, not scaled)" : "",
               st->total_allocations, st->total_deallocations, peak, st->active_allocations);
        if (st->evicted_events)
            printf("  %llu events of the run are not in the trace (older than what it "
                   "holds, or lost): the replay lacks them\n",
                   (unsigned long long)st->evicted_events);
        if (st->dropped_events)
            printf("  %llu events could not be recorded at all\n",
                   (unsigned long long)st->dropped_events);
    }
    if (rc < 0)
        fprintf(stderr, "memscope: %s\n", ms_last_error_message());
    ms_tracker_free(t);
    ms_trace_close(tr);
    return rc < 0 || replay_failed ? 1 : 0;
}
