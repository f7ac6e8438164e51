/* analyze.c — ms__analyze_snapshot, ms_report_free, ms_report_print. */
#include "analyze/analyze.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "stack/stack.h"
#include "store/live.h"

/* ------------------------------------------------------------ symbols
 *
 * Code addresses named once per report; the report owns the text. */

typedef struct sym_entry {
    uintptr_t pc;              /* 0: empty */
    char *text;                /* "function (file.c:42)" */
    char *function, *location; /* NULL when unknown */
} sym_entry;

typedef struct sym_cache {
    sym_entry *v;
    size_t cap, n;
} sym_cache;

/* The report and what it owns beyond the public struct. */
typedef struct report_impl {
    ms_analysis_report pub; /* first: the public pointer is this struct's */
    sym_cache syms;
    const char **frames; /* every leak's frames, one array */
    char **locs;         /* the leaks' own "file:line" strings (NULL: none), leak_count */
} report_impl;

static void sym_free(sym_cache *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        ms__free(c->v[i].text);
        ms__free(c->v[i].function);
        ms__free(c->v[i].location);
    }
    ms__free(c->v);
}

static char *dup_or_null(const char *s) { return s && *s ? ms__strdup(s) : NULL; }

static sym_entry *sym_slot(sym_entry *v, size_t cap, uintptr_t pc)
{
    size_t i = ms__hash_ptr(pc, cap);
    while (v[i].pc && v[i].pc != pc)
        i = (i + 1) & (cap - 1);
    return &v[i];
}

/* @return the entry for pc, symbolizing it on first sight; NULL if out of memory. */
static const sym_entry *sym_get(sym_cache *c, uintptr_t pc)
{
    if ((c->n + 1) * 2 > c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 256;
        sym_entry *nv = ms__calloc(ncap, sizeof *nv);
        if (!nv)
            return NULL;
        for (size_t i = 0; i < c->cap; i++)
            if (c->v[i].pc)
                *sym_slot(nv, ncap, c->v[i].pc) = c->v[i];
        ms__free(c->v);
        c->v = nv;
        c->cap = ncap;
    }
    sym_entry *e = sym_slot(c->v, c->cap, pc);
    if (e->pc)
        return e;
    ms__symbol sym;
    ms__symbolize_pc(pc, &sym);
    char text[1024], loc[1024];
    ms__symbol_format(&sym, pc, text, sizeof text);
    if (sym.file[0])
        snprintf(loc, sizeof loc, "%s:%u", sym.file, sym.line);
    else if (sym.module[0])
        snprintf(loc, sizeof loc, "%s+0x%zx", sym.module, (size_t)sym.offset);
    else
        loc[0] = 0;
    e->text = ms__strdup(text);
    e->function = dup_or_null(sym.function);
    e->location = dup_or_null(loc);
    if (!e->text)
        return NULL;
    e->pc = pc;
    c->n++;
    return e;
}

static uint64_t scale(uint64_t v, double f);

/* -------------------------------------------------------------- leaks */

typedef struct leak_key {
    const ms_site *site;
    uint32_t stack;
    uint64_t size;
} leak_key;

static int cmp_leak_key(const void *a, const void *b)
{
    const leak_key *x = a, *y = b;
    if (x->site != y->site)
        return (uintptr_t)x->site < (uintptr_t)y->site ? -1 : 1;
    return (x->stack > y->stack) - (x->stack < y->stack);
}

static int cmp_leak(const void *a, const void *b)
{
    const ms_leak *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return (x->stack_id > y->stack_id) - (x->stack_id < y->stack_id);
}

/* Group the live blocks by (site, stack), most bytes first. */
static int build_leaks(report_impl *ri, const ms_memory_snapshot *s, double f)
{
    ms_analysis_report *r = &ri->pub;
    if (s->nallocs == 0)
        return 0;
    leak_key *k = ms__malloc(s->nallocs * sizeof *k);
    if (!k)
        return MS_ENOMEM;
    for (size_t i = 0; i < s->nallocs; i++)
        k[i] = (leak_key){s->allocs[i].site, s->allocs[i].stack_id, s->allocs[i].size};
    qsort(k, s->nallocs, sizeof *k, cmp_leak_key);
    size_t groups = 0, nframes = 0;
    for (size_t i = 0; i < s->nallocs; i++) {
        if (i > 0 && cmp_leak_key(&k[i - 1], &k[i]) == 0)
            continue;
        groups++;
        const uintptr_t *fr;
        nframes += ms__stack_get(k[i].stack, &fr);
    }
    r->leaks = ms__calloc(groups, sizeof *r->leaks);
    ri->frames = ms__calloc(nframes, sizeof *ri->frames);
    ri->locs = ms__calloc(groups, sizeof *ri->locs);
    if (!r->leaks || !ri->frames || !ri->locs) {
        ms__free(k);
        return MS_ENOMEM;
    }
    size_t at = 0;
    for (size_t i = 0; i < s->nallocs;) {
        size_t j = i;
        uint64_t bytes = 0;
        for (; j < s->nallocs && cmp_leak_key(&k[i], &k[j]) == 0; j++)
            bytes += k[j].size;
        ms_leak *l = &r->leaks[r->leak_count++];
        l->count = (size_t)scale(j - i, f);
        l->bytes = scale(bytes, f);
        l->stack_id = k[i].stack;
        const ms_site *site = k[i].site;
        if (site) {
            l->var_name = site->name;
            l->type_name = site->type;
            l->function = site->func;
            if (site->file) { // the site's own line: two sites may share name and function
                size_t n = strlen(site->file) + 24;
                char *loc = ri->locs[r->leak_count - 1] = ms__malloc(n);
                if (!loc) {
                    ms__free(k);
                    return MS_ENOMEM;
                }
                snprintf(loc, n, "%s:%u", site->file, site->line);
                l->location = loc;
            }
        }
        const uintptr_t *fr = NULL;
        size_t depth = ms__stack_get(k[i].stack, &fr);
        l->frames = ri->frames + at;
        bool placed = site != NULL; // else the first frame that is not operator new or such
        for (size_t d = 0; d < depth; d++) {
            const sym_entry *e = sym_get(&ri->syms, fr[d]);
            if (!e) {
                ms__free(k);
                return MS_ENOMEM;
            }
            ri->frames[at++] = e->text;
            if (!placed && (d + 1 == depth || !ms__symbol_is_allocator(e->function))) {
                l->function = e->function;
                l->location = e->location;
                placed = true;
            }
        }
        l->frame_count = depth;
        i = j;
    }
    ms__free(k);
    qsort(r->leaks, r->leak_count, sizeof *r->leaks, cmp_leak);
    for (size_t i = 0; i < r->leak_count; i++) {
        r->leaked_blocks += r->leaks[i].count;
        r->leaked_bytes += r->leaks[i].bytes;
    }
    return 0;
}

static int cmp_hotspot(const void *a, const void *b)
{
    const ms_allocation_hotspot *x = a, *y = b;
    if (x->total_size != y->total_size)
        return x->total_size < y->total_size ? 1 : -1;
    if (x->allocation_count != y->allocation_count)
        return x->allocation_count < y->allocation_count ? 1 : -1;
    // Stable across runs: then by location text.
    if (x->location && y->location)
        return strcmp(x->location, y->location);
    return (x->location == NULL) - (y->location == NULL);
}

static uint64_t scale(uint64_t v, double f)
{
    return f == 1.0 ? v : (uint64_t)((double)v * f + 0.5);
}

ms_analysis_report *ms__analyze_snapshot(const ms_memory_snapshot *s, const ms__analyze_opts *o)
{
    report_impl *ri = ms__calloc(1, sizeof *ri);
    if (!ri) {
        ms__free(o->system);
        ms__fail(MS_ENOMEM, "out of memory building a report");
        return NULL;
    }
    ms_analysis_report *r = &ri->pub;
    r->system_snapshots = o->system; // ms_report_free frees it from here on
    r->system_snapshot_count = o->system_count;
    double f = o->sample_rate > 0.0 && o->sample_rate < 1.0 ? 1.0 / o->sample_rate : 1.0;
    const ms_memory_stats *st = &s->stats;
    r->sample_rate = o->sample_rate;
    r->is_estimate = f != 1.0;
    r->total_allocations = (size_t)scale(st->total_allocations, f);
    r->total_deallocations = (size_t)scale(st->total_deallocations, f);
    r->active_allocations = (size_t)scale(st->active_allocations, f);
    r->peak_memory_bytes = scale(st->peak_memory, f);
    r->current_memory_bytes = scale(st->current_memory, f);
    r->total_allocated_bytes = scale(st->total_allocated, f);
    r->total_deallocated_bytes = scale(st->total_deallocated, f);
    r->unmatched_deallocations = st->unmatched_deallocations;
    r->dropped_events = st->dropped_events;
    r->evicted_events = o->evicted_events;
    r->duration_sec = (double)o->duration_ns / 1e9;
    r->thread_count = s->nthreads;
    if (r->duration_sec > 0) {
        r->allocation_rate_per_sec = (double)r->total_allocations / r->duration_sec;
        r->deallocation_rate_per_sec = (double)r->total_deallocations / r->duration_sec;
    }

    r->hotspots = ms__calloc(s->nsites, sizeof *r->hotspots);
    if (!r->hotspots)
        goto oom;
    for (size_t i = 0; i < s->nsites; i++) {
        const ms__site_summary *ss = &s->sites[i];
        ms_allocation_hotspot *h = &r->hotspots[r->hotspot_count++];
        const ms_site *site = ms__public_site(ss->site);
        h->var_name = site && site->name ? site->name : "?";
        h->type_name = site && site->type ? site->type : "?";
        h->function = site ? site->func : NULL;
        uintptr_t pc = ms__site_pc(ss->site);
        if (pc) { // capture: blocks with no name, counted where they were allocated
            const sym_entry *e = sym_get(&ri->syms, pc);
            if (!e)
                goto oom;
            h->function = e->function;
            if (e->location && !(h->location = ms__strdup(e->location)))
                goto oom;
        }
        h->total_size = (size_t)scale(ss->bytes, f);
        h->allocation_count = (size_t)scale(ss->allocs, f);
        h->active_count = (size_t)scale(ss->live_count, f);
        h->active_size = (size_t)scale(ss->live_bytes, f);
        if (site && site->file) {
            size_t n = strlen(site->file) + 24;
            char *loc = ms__malloc(n);
            if (!loc)
                goto oom;
            snprintf(loc, n, "%s:%u", site->file, site->line);
            h->location = loc;
        }
    }
    qsort(r->hotspots, r->hotspot_count, sizeof *r->hotspots, cmp_hotspot);
    r->system_snapshots_overwritten = o->system_overwritten;
    if (build_leaks(ri, s, f) != 0)
        goto oom;
    return r;
oom:
    ms_report_free(r);
    ms__fail(MS_ENOMEM, "out of memory building a report");
    return NULL;
}

void ms_report_free(ms_analysis_report *r)
{
    if (!r)
        return;
    report_impl *ri = (report_impl *)r;
    for (size_t i = 0; i < r->hotspot_count; i++)
        ms__free((void *)(uintptr_t)r->hotspots[i].location);
    ms__free(r->hotspots);
    ms__free(r->system_snapshots);
    ms__free(r->leaks);
    ms__free(ri->frames);
    for (size_t i = 0; ri->locs && i < r->leak_count; i++)
        ms__free(ri->locs[i]);
    ms__free(ri->locs);
    sym_free(&ri->syms);
    ms__free(ri);
}

static void human_bytes(char *out, size_t n, uint64_t b)
{
    static const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)b;
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(out, n, "%" PRIu64 " B", b);
    else
        snprintf(out, n, "%.1f %s", v, unit[u]);
}

static void human_duration(char *out, size_t n, double sec)
{
    if (sec < 1e-3)
        snprintf(out, n, "%.0f us", sec * 1e6);
    else if (sec < 1.0)
        snprintf(out, n, "%.1f ms", sec * 1e3);
    else
        snprintf(out, n, "%.2f s", sec);
}

/* A location relative to the working directory when it lies below it. */
static const char *short_location(const char *loc, const char *cwd, size_t cwd_len)
{
    if (cwd_len > 0 && strncmp(loc, cwd, cwd_len) == 0 && loc[cwd_len] == '/')
        return loc + cwd_len + 1;
    return loc;
}

/* The system monitor's samples in two lines: CPU and memory, then I/O. */
static void print_system(const ms_analysis_report *r, FILE *out)
{
    size_t n = r->system_snapshot_count;
    if (n == 0)
        return;
    const ms_system_snapshot *s = r->system_snapshots, *last = &s[n - 1];
    double cpu_sum = 0, cpu_peak = 0, window = 0;
    uint64_t rss_peak = 0, io_peak = 0, net_peak = 0;
    for (size_t i = 0; i < n; i++) {
        double w = (double)s[i].interval_ns / 1e9;
        cpu_sum += s[i].cpu_usage_percent * w;
        window += w;
        cpu_peak = s[i].cpu_usage_percent > cpu_peak ? s[i].cpu_usage_percent : cpu_peak;
        rss_peak = s[i].memory_usage_bytes > rss_peak ? s[i].memory_usage_bytes : rss_peak;
        uint64_t io = s[i].disk_read_bps + s[i].disk_write_bps;
        uint64_t net = s[i].network_rx_bps + s[i].network_tx_bps;
        io_peak = io > io_peak ? io : io_peak;
        net_peak = net > net_peak ? net : net_peak;
    }
    char span[32], rss[32], peak[32], total[32], io[32], net[32];
    human_duration(span, sizeof span, window);
    human_bytes(rss, sizeof rss, last->memory_usage_bytes);
    human_bytes(peak, sizeof peak, rss_peak);
    human_bytes(total, sizeof total, last->machine_memory_total);
    human_bytes(io, sizeof io, io_peak);
    human_bytes(net, sizeof net, net_peak);
    fprintf(out, "  system     %zu sample%s over %s", n, n == 1 ? "" : "s", span);
    if (r->system_snapshots_overwritten)
        fprintf(out, " (%" PRIu64 " older overwritten)", r->system_snapshots_overwritten);
    fprintf(out, ": CPU mean %.1f%%, peak %.1f%% of one core (%u CPUs)\n",
            window > 0 ? cpu_sum / window : 0.0, cpu_peak, last->cpu_count);
    fprintf(out,
            "             RSS %s (%.2f%% of %s), peak %s; %zu threads; peak I/O %s/s, "
            "network %s/s\n",
            rss, last->memory_usage_percent, total, peak, last->thread_count, io, net);
    if (last->gpu_available)
        fprintf(out, "             GPU %.1f%% busy, %.1f of %.1f GiB (%u device%s)\n",
                last->gpu_usage_percent, (double)last->gpu_memory_used / (1u << 30),
                (double)last->gpu_memory_total / (1u << 30), last->gpu_count,
                last->gpu_count == 1 ? "" : "s");
}

/* A row of the summary's live blocks: the leak groups (one per site and
 * stack) that print alike, added up. */
typedef struct place {
    const char *var, *func, *loc;
    size_t count;
    uint64_t bytes;
} place;

static int cmp_place_text(const void *a, const void *b)
{
    const place *x = a, *y = b;
    int c = strcmp(x->var, y->var);
    if (c == 0)
        c = strcmp(x->func, y->func);
    return c ? c : strcmp(x->loc, y->loc);
}

static int cmp_place_bytes(const void *a, const void *b)
{
    const place *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return cmp_place_text(a, b);
}

/* The report's leak groups merged by what a row shows (name, function and
 * location: a recursive function's blocks have a stack per depth, one place),
 * most bytes first. @return how many (0 when there are none or no memory, and
 * then *out is NULL). */
static size_t leak_places(const ms_analysis_report *r, place **out)
{
    *out = NULL;
    if (r->leak_count == 0)
        return 0;
    place *p = ms__malloc(r->leak_count * sizeof *p);
    if (!p)
        return 0;
    for (size_t i = 0; i < r->leak_count; i++) {
        const ms_leak *l = &r->leaks[i];
        // As printed: an empty name is none, an unknown function "?".
        p[i] =
            (place){l->var_name ? l->var_name : "", l->function && *l->function ? l->function : "?",
                    l->location ? l->location : "", l->count, l->bytes};
    }
    qsort(p, r->leak_count, sizeof *p, cmp_place_text);
    size_t n = 0;
    for (size_t i = 0; i < r->leak_count; i++) {
        if (n > 0 && cmp_place_text(&p[n - 1], &p[i]) == 0) {
            p[n - 1].count += p[i].count;
            p[n - 1].bytes += p[i].bytes;
        } else {
            p[n++] = p[i];
        }
    }
    qsort(p, n, sizeof *p, cmp_place_bytes);
    *out = p;
    return n;
}

static int print_report(const ms_analysis_report *r, FILE *out)
{
    char cur[32], peak[32], tot[32], dur[32], cwd[4096];
    human_bytes(cur, sizeof cur, r->current_memory_bytes);
    human_bytes(peak, sizeof peak, r->peak_memory_bytes);
    human_bytes(tot, sizeof tot, r->total_allocated_bytes);
    human_duration(dur, sizeof dur, r->duration_sec);
    size_t cwd_len = getcwd(cwd, sizeof cwd) ? strlen(cwd) : 0;
    fprintf(out, "memscope: %zu allocation%s (%zu freed, %zu live) in %zu thread%s over %s%s\n",
            r->total_allocations, r->total_allocations == 1 ? "" : "s", r->total_deallocations,
            r->active_allocations, r->thread_count, r->thread_count == 1 ? "" : "s", dur,
            r->is_estimate ? ", estimated" : "");
    fprintf(out, "  memory     current %s, peak %s, %s allocated in all\n", cur, peak, tot);
    if (r->is_estimate)
        fprintf(out, "  sampling   rate %.4g: counts and bytes are scaled estimates\n",
                r->sample_rate);
    if (r->unmatched_deallocations)
        fprintf(out, "  unmatched  %zu free%s of blocks never tracked\n",
                r->unmatched_deallocations, r->unmatched_deallocations == 1 ? "" : "s");
    if (r->dropped_events)
        fprintf(out, "  DROPPED    %" PRIu64 " events could not be recorded: figures miss them\n",
                r->dropped_events);
    print_system(r, out);
    size_t n = r->hotspot_count < 5 ? r->hotspot_count : 5;
    if (n > 0)
        fprintf(out, "  top call sites by bytes allocated:\n");
    for (size_t i = 0; i < n; i++) {
        const ms_allocation_hotspot *h = &r->hotspots[i];
        char sz[32], live[32];
        human_bytes(sz, sizeof sz, h->total_size);
        human_bytes(live, sizeof live, h->active_size);
        fprintf(out, "    %10s in %5zu block%s  %10s live  %-12s %-18s %s\n", sz,
                h->allocation_count, h->allocation_count == 1 ? " " : "s", live, h->var_name,
                h->type_name, h->location ? short_location(h->location, cwd, cwd_len) : "?");
    }
    place *places;
    size_t nplaces = leak_places(r, &places);
    if (r->leak_count > 0) {
        bool stacks = false;
        for (size_t i = 0; i < r->leak_count && !stacks; i++)
            stacks = r->leaks[i].frame_count > 1;
        human_bytes(cur, sizeof cur, r->leaked_bytes);
        fprintf(out, "  live blocks: %zu (%s)", r->leaked_blocks, cur);
        if (places)
            fprintf(out, " from %zu call site%s", nplaces, nplaces == 1 ? "" : "s");
        if (stacks)
            fprintf(out, ", %zu call stack%s", r->leak_count, r->leak_count == 1 ? "" : "s");
        fprintf(out, "%s\n", nplaces > 5 ? "; the largest 5:" : ":");
    }
    for (size_t i = 0; i < nplaces && i < 5; i++) {
        const place *l = &places[i];
        char sz[32];
        human_bytes(sz, sizeof sz, l->bytes);
        fprintf(out, "    %10s in %5zu block%s  %s%s%s%s%s\n", sz, l->count,
                l->count == 1 ? " " : "s", l->var, *l->var ? " " : "", l->func, *l->loc ? " " : "",
                *l->loc ? short_location(l->loc, cwd, cwd_len) : "");
    }
    if (nplaces > 5)
        fprintf(out, "    ... and %zu more call site%s\n", nplaces - 5,
                nplaces - 5 == 1 ? "" : "s");
    if (r->leak_count > 0 && !places)
        fprintf(out, "    (no memory to list them)\n");
    ms__free(places);
    return ferror(out) ? ms__fail(MS_EIO, "cannot write the report") : 0;
}

int ms_report_print(const ms_analysis_report *r, FILE *out)
{
    if (!r || !out)
        return ms__fail(MS_EINVAL, "ms_report_print: report or stream is NULL");
    ms__internal_enter(); // its memory (qsort's, the list's) is not the program's
    int rc = print_report(r, out);
    ms__internal_leave();
    return rc;
}
