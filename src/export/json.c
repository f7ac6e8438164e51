/* json.c — ms_export_json (schema: docs/json-format.md). cJSON builds and
 * escapes the document; the active allocations, which can number millions,
 * are streamed into the buffer with each call site's fields escaped once by
 * cJSON and reused. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "export/export.h"
#include "snapshot/snapshot.h"
#include "tracker/tracker.h"

#define JSON_FORMAT_VERSION 1

/* Integers as exact decimal text: a double would round values past 2^53. */
static void add_u64(cJSON *o, const char *k, uint64_t v)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRIu64, v);
    cJSON_AddRawToObject(o, k, text);
}

static cJSON *stats_json(const ms_memory_stats *s)
{
    cJSON *o = cJSON_CreateObject();
    add_u64(o, "total_allocations", s->total_allocations);
    add_u64(o, "total_deallocations", s->total_deallocations);
    add_u64(o, "active_allocations", s->active_allocations);
    add_u64(o, "total_allocated", s->total_allocated);
    add_u64(o, "total_deallocated", s->total_deallocated);
    add_u64(o, "current_memory", s->current_memory);
    add_u64(o, "peak_memory", s->peak_memory);
    add_u64(o, "unmatched_deallocations", s->unmatched_deallocations);
    add_u64(o, "dropped_events", s->dropped_events);
    add_u64(o, "evicted_events", s->evicted_events);
    add_u64(o, "retained_events", s->retained_events);
    add_u64(o, "ignored_deallocations", s->ignored_deallocations);
    add_u64(o, "replaced_allocations", s->replaced_allocations);
    add_u64(o, "track_errors", s->track_errors);
    add_u64(o, "sampled_out", s->sampled_out);
    add_u64(o, "unseen_deallocations", s->unseen_deallocations);
    add_u64(o, "null_deallocations", s->null_deallocations);
    add_u64(o, "failed_allocations", s->failed_allocations);
    add_u64(o, "stream_lost_events", s->stream_lost_events);
    return o;
}

static cJSON *report_json(const ms_analysis_report *r)
{
    cJSON *o = cJSON_CreateObject();
    add_u64(o, "total_allocations", r->total_allocations);
    add_u64(o, "total_deallocations", r->total_deallocations);
    add_u64(o, "active_allocations", r->active_allocations);
    add_u64(o, "peak_memory_bytes", r->peak_memory_bytes);
    add_u64(o, "current_memory_bytes", r->current_memory_bytes);
    add_u64(o, "total_allocated_bytes", r->total_allocated_bytes);
    add_u64(o, "total_deallocated_bytes", r->total_deallocated_bytes);
    cJSON_AddNumberToObject(o, "allocation_rate_per_sec", r->allocation_rate_per_sec);
    cJSON_AddNumberToObject(o, "deallocation_rate_per_sec", r->deallocation_rate_per_sec);
    add_u64(o, "unmatched_deallocations", r->unmatched_deallocations);
    cJSON_AddNumberToObject(o, "duration_sec", r->duration_sec);
    add_u64(o, "thread_count", r->thread_count);
    add_u64(o, "system_snapshots_overwritten", r->system_snapshots_overwritten);
    cJSON_AddBoolToObject(o, "is_estimate", r->is_estimate);
    cJSON_AddNumberToObject(o, "sample_rate", r->sample_rate);
    add_u64(o, "leaked_blocks", r->leaked_blocks);
    add_u64(o, "leaked_bytes", r->leaked_bytes);
    return o;
}

static cJSON *str_or_null(const char *s) { return s ? cJSON_CreateString(s) : cJSON_CreateNull(); }

static cJSON *hotspots_json(const ms_analysis_report *r, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        const ms_allocation_hotspot *h = &r->hotspots[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "var_name", h->var_name);
        cJSON_AddStringToObject(o, "type_name", h->type_name);
        cJSON_AddItemToObject(o, "location", str_or_null(h->location));
        cJSON_AddItemToObject(o, "function", str_or_null(h->function));
        add_u64(o, "total_size", h->total_size);
        add_u64(o, "allocation_count", h->allocation_count);
        add_u64(o, "active_count", h->active_count);
        add_u64(o, "active_size", h->active_size);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *leaks_json(const ms_tracker *t, const ms_analysis_report *r, size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++) {
        const ms_leak *l = &r->leaks[i];
        cJSON *o = cJSON_CreateObject();
        add_u64(o, "count", l->count);
        add_u64(o, "bytes", l->bytes);
        cJSON_AddItemToObject(o, "var_name", str_or_null(l->var_name));
        cJSON_AddItemToObject(o, "type_name", str_or_null(l->type_name));
        cJSON_AddItemToObject(o, "function", str_or_null(l->function));
        cJSON_AddItemToObject(o, "location", str_or_null(l->location));
        add_u64(o, "stack_id", ms__tracker_public_stack(t, l->stack_id));
        cJSON *f = cJSON_AddArrayToObject(o, "stack");
        for (size_t j = 0; j < l->frame_count; j++)
            cJSON_AddItemToArray(f, cJSON_CreateString(l->frames[j]));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *threads_json(const ms_memory_snapshot *s)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < s->nthreads; i++) {
        const ms_thread_memory_stats *t = &s->threads[i];
        cJSON *o = cJSON_CreateObject();
        add_u64(o, "thread_id", t->thread_id);
        add_u64(o, "allocation_count", t->allocation_count);
        add_u64(o, "deallocation_count", t->deallocation_count);
        add_u64(o, "total_allocated", t->total_allocated);
        add_u64(o, "total_deallocated", t->total_deallocated);
        add_u64(o, "current_memory", t->current_memory);
        add_u64(o, "peak_memory", t->peak_memory);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

static cJSON *timeline_json(const ms_memory_snapshot *s)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < s->npoints; i++) {
        cJSON *o = cJSON_CreateObject();
        add_u64(o, "timestamp_ns", s->timeline[i].timestamp_ns);
        add_u64(o, "max_bytes", s->timeline[i].max_bytes);
        add_u64(o, "current_bytes", s->timeline[i].current_bytes);
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* The non-empty power-of-two size buckets of every allocation, scaled by f
 * (1 / the sample rate) when the figures are estimates. */
static cJSON *histogram_json(const ms_memory_snapshot *s, double f)
{
    cJSON *a = cJSON_CreateArray();
    for (unsigned k = 0; k < MS__SIZE_BUCKETS; k++) {
        if (s->size_hist[k] == 0)
            continue;
        cJSON *o = cJSON_CreateObject();
        add_u64(o, "min_bytes", k ? UINT64_C(1) << (k - 1) : 0);
        add_u64(o, "max_bytes", k == 0 ? 0 : k == 64 ? UINT64_MAX : (UINT64_C(1) << k) - 1);
        add_u64(o, "count",
                f == 1.0 ? s->size_hist[k] : (uint64_t)((double)s->size_hist[k] * f + 0.5));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

/* The names of the MS_METRIC_* bits set in `missing`. */
static cJSON *missing_json(uint32_t missing)
{
    static const char *const names[] = {"process_cpu", "process_stat",   "process_io",
                                        "machine_cpu", "machine_memory", "machine_disk",
                                        "network"};
    cJSON *a = cJSON_CreateArray();
    for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++)
        if (missing & (1u << i))
            cJSON_AddItemToArray(a, cJSON_CreateString(names[i]));
    return a;
}

static cJSON *system_json(const ms_analysis_report *r)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; i < r->system_snapshot_count; i++) {
        const ms_system_snapshot *x = &r->system_snapshots[i];
        cJSON *o = cJSON_CreateObject();
        add_u64(o, "timestamp_ns", x->timestamp);
        cJSON_AddNumberToObject(o, "cpu_usage_percent", x->cpu_usage_percent);
        add_u64(o, "memory_usage_bytes", x->memory_usage_bytes);
        cJSON_AddNumberToObject(o, "memory_usage_percent", x->memory_usage_percent);
        add_u64(o, "thread_count", x->thread_count);
        add_u64(o, "disk_read_bps", x->disk_read_bps);
        add_u64(o, "disk_write_bps", x->disk_write_bps);
        add_u64(o, "network_rx_bps", x->network_rx_bps);
        add_u64(o, "network_tx_bps", x->network_tx_bps);
        cJSON_AddNumberToObject(o, "gpu_usage_percent", x->gpu_usage_percent);
        add_u64(o, "gpu_memory_used", x->gpu_memory_used);
        add_u64(o, "gpu_memory_total", x->gpu_memory_total);
        add_u64(o, "interval_ns", x->interval_ns);
        cJSON_AddNumberToObject(o, "machine_cpu_percent", x->machine_cpu_percent);
        add_u64(o, "machine_memory_used", x->machine_memory_used);
        add_u64(o, "machine_memory_total", x->machine_memory_total);
        add_u64(o, "machine_disk_read_bps", x->machine_disk_read_bps);
        add_u64(o, "machine_disk_write_bps", x->machine_disk_write_bps);
        add_u64(o, "loopback_rx_bps", x->loopback_rx_bps);
        add_u64(o, "loopback_tx_bps", x->loopback_tx_bps);
        add_u64(o, "cpu_count", x->cpu_count);
        add_u64(o, "gpu_count", x->gpu_count);
        cJSON_AddBoolToObject(o, "gpu_available", x->gpu_available);
        cJSON_AddItemToObject(o, "missing", missing_json(x->missing));
        cJSON_AddItemToArray(a, o);
    }
    return a;
}

void ms__program_name(char *out, size_t n)
{
    ssize_t len = readlink("/proc/self/exe", out, n - 1);
    out[len > 0 ? len : 0] = '\0';
    const char *slash = strrchr(out, '/');
    if (slash)
        memmove(out, slash + 1, strlen(slash + 1) + 1);
}

/* ---------------------------------------------------- active allocations */

typedef struct site_frag {
    const ms_site *site; /* key */
    char *json;          /* "name":...,"type":...,"file":...,"line":N,"function":... */
    size_t len;
} site_frag;

typedef struct frag_table {
    site_frag *v;
    size_t cap;
} frag_table;

static size_t frag_hash(const ms_site *s, size_t cap)
{
    return (size_t)(((uint64_t)(uintptr_t)s * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
}

/* The escaped fields of one site, made by cJSON once. */
static char *make_frag(const ms_site *site, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddItemToObject(o, "name", str_or_null(site ? site->name : NULL));
    cJSON_AddItemToObject(o, "type", str_or_null(site ? site->type : NULL));
    cJSON_AddItemToObject(o, "file", str_or_null(site ? site->file : NULL));
    add_u64(o, "line", site ? site->line : 0);
    cJSON_AddItemToObject(o, "function", str_or_null(site ? site->func : NULL));
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!text)
        return NULL;
    size_t n = strlen(text); // strip the braces: the fields go inside our object
    memmove(text, text + 1, n - 2);
    text[n - 2] = '\0';
    *len = n - 2;
    return text;
}

static const site_frag *frag_get(frag_table *t, const ms_site *site)
{
    size_t i = frag_hash(site, t->cap);
    while (t->v[i].json && t->v[i].site != site)
        i = (i + 1) & (t->cap - 1);
    if (!t->v[i].json) {
        t->v[i].json = make_frag(site, &t->v[i].len);
        t->v[i].site = site;
        if (!t->v[i].json)
            return NULL;
    }
    return &t->v[i];
}

static int cmp_alloc_size_desc(const void *a, const void *b)
{
    const ms_active_allocation *x = a, *y = b;
    if (x->size != y->size)
        return x->size < y->size ? 1 : -1;
    return (x->ptr > y->ptr) - (x->ptr < y->ptr);
}

static void put_hex(ms__buf *b, uintptr_t v)
{
    char tmp[2 + 2 * sizeof v];
    int i = (int)sizeof tmp;
    do {
        tmp[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    tmp[--i] = 'x';
    tmp[--i] = '0';
    ms__buf_put(b, tmp + i, sizeof tmp - (size_t)i);
}

/* The first n of s's active allocations (sorted largest first). */
static int write_allocations(ms__buf *b, const ms_tracker *tracker, ms_memory_snapshot *s, size_t n,
                             uint64_t now_ns)
{
    frag_table t = {NULL, 16};
    while (t.cap < 2 * (s->nsites + 1))
        t.cap *= 2;
    t.v = ms__calloc(t.cap, sizeof *t.v);
    if (!t.v)
        return ms__fail(MS_ENOMEM, "out of memory writing JSON");
    int rc = 0;
    ms__buf_puts(b, ",\n\t\"active_allocations\":\t[");
    for (size_t i = 0; i < n && rc == 0; i++) {
        const ms_active_allocation *a = &s->allocs[i];
        const site_frag *f = frag_get(&t, a->site);
        if (!f) {
            rc = ms__fail(MS_ENOMEM, "out of memory writing JSON");
            break;
        }
        ms__buf_puts(b, i ? ",\n\t\t{\"address\":\"" : "\n\t\t{\"address\":\"");
        put_hex(b, a->ptr);
        ms__buf_puts(b, "\",\"size\":");
        ms__buf_u64(b, a->size);
        ms__buf_put(b, ",", 1);
        ms__buf_put(b, f->json, f->len);
        ms__buf_puts(b, ",\"thread_id\":");
        ms__buf_u64(b, a->thread_id);
        if (a->stack_id) {
            ms__buf_puts(b, ",\"stack_id\":");
            ms__buf_u64(b, ms__tracker_public_stack(tracker, a->stack_id));
        }
        ms__buf_puts(b, ",\"allocated_at_ns\":");
        ms__buf_u64(b, a->allocated_at);
        ms__buf_puts(b, ",\"age_ns\":");
        ms__buf_u64(b, now_ns > a->allocated_at ? now_ns - a->allocated_at : 0);
        ms__buf_put(b, "}", 1);
    }
    ms__buf_puts(b, n ? "\n\t]\n}\n" : "]\n}\n");
    for (size_t i = 0; i < t.cap; i++)
        cJSON_free(t.v[i].json);
    ms__free(t.v);
    return rc;
}

/* ---------------------------------------------------------------- export */

static size_t capped(size_t n, size_t limit) { return limit && n > limit ? limit : n; }

/* What a limited document leaves out, so a reader can say so. */
static cJSON *omitted_json(const ms_analysis_report *r, const ms_memory_snapshot *s,
                           const ms__json_limits *lim)
{
    cJSON *o = cJSON_CreateObject();
    size_t na = capped(s->nallocs, lim->max_allocations);
    uint64_t bytes = 0;
    for (size_t i = na; i < s->nallocs; i++) // allocs are sorted largest first by now
        bytes += s->allocs[i].size;
    add_u64(o, "active_allocations", s->nallocs - na);
    add_u64(o, "active_allocation_bytes", bytes);
    size_t nl = capped(r->leak_count, lim->max_leaks);
    bytes = 0;
    uint64_t blocks = 0;
    for (size_t i = nl; i < r->leak_count; i++) {
        bytes += r->leaks[i].bytes;
        blocks += r->leaks[i].count;
    }
    add_u64(o, "leak_groups", r->leak_count - nl);
    add_u64(o, "leak_blocks", blocks);
    add_u64(o, "leak_bytes", bytes);
    add_u64(o, "hotspots", r->hotspot_count - capped(r->hotspot_count, lim->max_hotspots));
    return o;
}

int ms__json_build(ms_tracker *t, const ms__json_limits *lim, ms__buf *b)
{
    static const ms__json_limits none = {0, 0, 0};
    const ms__json_limits *L = lim ? lim : &none;
    ms_memory_snapshot *snap = NULL;
    ms_memory_stats stats;
    ms_analysis_report *r = ms__tracker_analyze(t, &snap, &stats);
    if (!r)
        return ms_last_error();
    ms_sampling_config cfg = ms__tracker_sampling(t);
    uint64_t now = ms__real_ns();
    double f = r->is_estimate && r->sample_rate > 0 ? 1.0 / r->sample_rate : 1.0;
    qsort(snap->allocs, snap->nallocs, sizeof *snap->allocs, cmp_alloc_size_desc);

    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", "memscope");
    cJSON_AddNumberToObject(root, "version", JSON_FORMAT_VERSION);
    cJSON_AddStringToObject(root, "library_version", MS_VERSION_STRING);
    add_u64(root, "generated_at_ns", now);
    add_u64(root, "started_at_ns", t->start_ns);
    cJSON *proc = cJSON_AddObjectToObject(root, "process");
    add_u64(proc, "pid", t->trace ? t->replay_pid : (uint64_t)getpid());
    char prog[512];
    if (t->trace)
        snprintf(prog, sizeof prog, "%s", t->replay_program);
    else
        ms__program_name(prog, sizeof prog);
    cJSON_AddStringToObject(proc, "program", prog);
    if (t->trace) { // rebuilt from a binary trace: how much of the run it held
        const ms_trace_info *ti = ms_trace_get_info(t->trace);
        cJSON *tr = cJSON_AddObjectToObject(root, "trace");
        cJSON_AddBoolToObject(tr, "complete", ti->complete);
        cJSON_AddBoolToObject(tr, "streamed", ti->streamed);
        add_u64(tr, "lost_events", ti->lost_events);
    }
    cJSON *sm = cJSON_AddObjectToObject(root, "sampling");
    cJSON_AddNumberToObject(sm, "sample_rate", cfg.sample_rate);
    cJSON_AddBoolToObject(sm, "capture_call_stack", cfg.capture_call_stack);
    add_u64(sm, "max_stack_depth", cfg.max_stack_depth);
    cJSON_AddBoolToObject(sm, "is_estimate", r->is_estimate);
    add_u64(sm, "stacks_dropped", ms_atomic_load_relaxed(&t->store->stackless));
    cJSON_AddItemToObject(root, "report", report_json(r));
    cJSON_AddItemToObject(root, "stats", stats_json(&stats));
    add_u64(root, "dropped_events", stats.dropped_events);
    cJSON_AddBoolToObject(root, "capture", ms_atomic_load_relaxed(&t->captured));
    if (lim)
        cJSON_AddItemToObject(root, "omitted", omitted_json(r, snap, L));
    cJSON_AddItemToObject(root, "hotspots",
                          hotspots_json(r, capped(r->hotspot_count, L->max_hotspots)));
    cJSON_AddItemToObject(root, "leaks", leaks_json(t, r, capped(r->leak_count, L->max_leaks)));
    cJSON_AddItemToObject(root, "threads", threads_json(snap));
    cJSON_AddItemToObject(root, "memory_timeline", timeline_json(snap));
    cJSON_AddItemToObject(root, "size_histogram", histogram_json(snap, f));
    cJSON_AddItemToObject(root, "system_snapshots", system_json(r));
    char *head = cJSON_Print(root);
    cJSON_Delete(root);

    int rc = 0;
    if (!head) {
        rc = ms__fail(MS_ENOMEM, "out of memory writing JSON");
    } else {
        // The head ends with "\n}": reopen it and stream the big array in.
        size_t n = strlen(head);
        while (n > 0 && head[n - 1] != '}')
            n--;
        ms__buf_put(b, head, n > 0 ? n - 1 : 0);
        while (b->len > 0 && b->data[b->len - 1] == '\n')
            b->len--;
        cJSON_free(head);
        rc = write_allocations(b, t, snap, capped(snap->nallocs, L->max_allocations), now);
    }
    if (rc == 0 && b->failed)
        rc = ms__fail(MS_ENOMEM, "out of memory writing JSON");
    ms_report_free(r);
    ms_snapshot_free(snap);
    return rc;
}

static int build_json(ms_tracker *t, ms__buf *b) { return ms__json_build(t, NULL, b); }

int ms_export_json(ms_tracker *t, const char *path)
{
    return ms__export_with(t, path, "ms_export_json", build_json);
}
