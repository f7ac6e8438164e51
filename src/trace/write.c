/* write.c — ms_export_binary: the retained events, the system samples and
 * the sampling configuration as a binary trace (docs/binary-format.md).
 * Strings, sites and stacks are written once, in table blocks placed before
 * the first events block that uses them; stack frames are symbolized here,
 * since a reader has no access to this process's code. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "common/alloc.h"
#include "common/error.h"
#include "export/export.h"
#include "stack/stack.h"
#include "store/live.h"
#include "store/store.h"
#include "trace/trace.h"
#include "tracker/tracker.h"

bool ms__trace_put_block(ms__buf *out, unsigned kind, const void *prefix, size_t plen,
                         const void *payload, size_t len)
{
    size_t at = out->len;
    ms__put_u8(out, (uint8_t)kind);
    ms__put_le32(out, (uint32_t)(plen + len));
    if (plen)
        ms__buf_put(out, prefix, plen);
    ms__buf_put(out, payload, len);
    if (!out->failed)
        ms__put_le32(out, ms__trace_crc(out->data + at, out->len - at));
    return !out->failed;
}

uint32_t ms__trace_crc(const void *data, size_t len)
{
    uLong c = crc32(0L, Z_NULL, 0);
    const Bytef *p = data;
    while (len > 0) { // zlib's length is a uInt
        uInt n = len > (1u << 30) ? (1u << 30) : (uInt)len;
        c = crc32(c, p, n);
        p += n;
        len -= n;
    }
    return (uint32_t)c;
}

/* ------------------------------------------------------------ interning */

/* Open-addressing map from a 64-bit key to a 32-bit id (ids start at 1). */
typedef struct id_map {
    uint64_t *keys;
    uint32_t *ids;
    size_t cap, count;
} id_map;

static size_t map_hash(uint64_t k, size_t cap)
{
    return (size_t)((k * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
}

static bool map_grow(id_map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 256;
    uint64_t *nk = ms__calloc(ncap, sizeof *nk);
    uint32_t *ni = ms__calloc(ncap, sizeof *ni);
    if (!nk || !ni) {
        ms__free(nk);
        ms__free(ni);
        return false;
    }
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->ids[i])
            continue;
        size_t j = map_hash(m->keys[i], ncap);
        while (ni[j])
            j = (j + 1) & (ncap - 1);
        nk[j] = m->keys[i];
        ni[j] = m->ids[i];
    }
    ms__free(m->keys);
    ms__free(m->ids);
    m->keys = nk;
    m->ids = ni;
    m->cap = ncap;
    return true;
}

/* @return the slot for key (its id 0 when absent), or NULL out of memory. */
static uint32_t *map_slot(id_map *m, uint64_t key)
{
    if ((m->count + 1) * 2 > m->cap && !map_grow(m))
        return NULL;
    size_t i = map_hash(key, m->cap);
    while (m->ids[i] && m->keys[i] != key)
        i = (i + 1) & (m->cap - 1);
    m->keys[i] = key;
    return &m->ids[i];
}

static void map_free(id_map *m)
{
    ms__free(m->keys);
    ms__free(m->ids);
}

struct ms__tw {
    ms__buf out;                                  /* the file */
    ms__buf strings, symbols, sites, stacks, evs; /* blocks being filled */
    uint32_t nstrings, nsites, nsymbols;          /* ids given so far */
    uint32_t pending_strings, pending_symbols;    /* entries in the buffers */
    uint32_t pending_sites, pending_stacks;
    uint32_t nevents;   /* events in evs */
    id_map str_by_hash; /* string content hash -> id (content checked in str_text) */
    char **str_text;    /* id -> the string, to check hash collisions */
    size_t str_cap;
    id_map site_by_ptr, stack_seen, symbol_by_pc;
    uint64_t prev_tick, prev_tid;
    uintptr_t prev_ptr;
    const ms__tids *tids;
    uint64_t total_records, blocks, samples, lost;
    const ms_site *last_site; /* the last event's site and its id */
    uint32_t last_sid, last_stack;
    bool oom, too_big;
};
typedef struct ms__tw writer;

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = UINT64_C(1469598103934665603);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)s[i]) * UINT64_C(1099511628211);
    return h | 1; // never 0
}

/* @return the id of string s (0 for NULL), adding it to the next STRINGS block. */
static uint32_t string_id(writer *w, const char *s)
{
    if (!s)
        return 0;
    size_t n = strlen(s);
    uint64_t h = fnv1a(s, n);
    for (uint64_t probe = h;; probe += UINT64_C(0x9E3779B97F4A7C15)) { // rare collisions: rehash
        uint32_t *slot = map_slot(&w->str_by_hash, probe);
        if (!slot) {
            w->oom = true;
            return 0;
        }
        if (*slot && strcmp(w->str_text[*slot], s) == 0)
            return *slot;
        if (*slot)
            continue;
        if (w->nstrings + 2 > w->str_cap) {
            size_t ncap = w->str_cap ? w->str_cap * 2 : 256;
            char **nt = ms__calloc(ncap, sizeof *nt);
            if (!nt) {
                w->oom = true;
                return 0;
            }
            if (w->str_text)
                memcpy(nt, w->str_text, w->str_cap * sizeof *nt);
            ms__free(w->str_text);
            w->str_text = nt;
            w->str_cap = ncap;
        }
        char *copy = ms__malloc(n + 1);
        if (!copy) {
            w->oom = true;
            return 0;
        }
        memcpy(copy, s, n + 1);
        *slot = ++w->nstrings;
        w->pending_strings++;
        w->str_by_hash.count++;
        w->str_text[*slot] = copy;
        ms__put_varint(&w->strings, n);
        ms__buf_put(&w->strings, s, n);
        return *slot;
    }
}

static uint32_t site_id(writer *w, const ms_site *site)
{
    uint32_t *slot = map_slot(&w->site_by_ptr, (uint64_t)(uintptr_t)site);
    if (!slot) {
        w->oom = true;
        return 0;
    }
    if (*slot)
        return *slot;
    *slot = ++w->nsites;
    w->pending_sites++;
    w->site_by_ptr.count++;
    uint32_t name = string_id(w, site->name), type = string_id(w, site->type);
    uint32_t file = string_id(w, site->file), func = string_id(w, site->func);
    ms__put_varint(&w->sites, name);
    ms__put_varint(&w->sites, type);
    ms__put_varint(&w->sites, file);
    ms__put_varint(&w->sites, site->line);
    ms__put_varint(&w->sites, func);
    return *slot;
}

/* The number of code address pc in the SYMBOLS table, symbolized once. */
static uint32_t symbol_id(writer *w, uintptr_t pc)
{
    uint32_t *slot = map_slot(&w->symbol_by_pc, (uint64_t)pc);
    if (!slot) {
        w->oom = true;
        return 0;
    }
    if (*slot)
        return *slot;
    uint32_t id = *slot = ++w->nsymbols;
    w->symbol_by_pc.count++;
    ms__symbol sym;
    ms__symbolize_pc(pc, &sym);
    uint32_t fn = string_id(w, sym.function[0] ? sym.function : NULL);
    uint32_t file = string_id(w, sym.file[0] ? sym.file : NULL);
    uint32_t mod = string_id(w, sym.module[0] ? sym.module : NULL);
    ms__put_varint(&w->symbols, sym.shown ? sym.shown : pc); // a stand-in shows its original
    ms__put_varint(&w->symbols, fn);
    ms__put_varint(&w->symbols, file);
    ms__put_varint(&w->symbols, sym.line);
    ms__put_varint(&w->symbols, mod);
    ms__put_varint(&w->symbols, sym.offset);
    w->pending_symbols++;
    return id;
}

static void note_stack(writer *w, uint32_t stack)
{
    uint32_t *slot = map_slot(&w->stack_seen, stack);
    if (!slot) {
        w->oom = true;
        return;
    }
    if (*slot)
        return;
    *slot = 1;
    w->stack_seen.count++;
    const uintptr_t *frames;
    size_t depth = ms__stack_get(stack, &frames);
    ms__buf entry; // frames may add strings: write the entry after them
    ms__buf_init(&entry);
    ms__put_varint(&entry, stack);
    ms__put_varint(&entry, depth);
    for (size_t i = 0; i < depth; i++)
        ms__put_varint(&entry, symbol_id(w, frames[i]));
    ms__buf_put(&w->stacks, entry.data, entry.len);
    w->oom |= entry.failed;
    ms__buf_free(&entry);
    w->pending_stacks++;
}

/* ------------------------------------------------------------- blocks */

static void emit_block(writer *w, unsigned kind, const ms__buf *payload)
{
    if (payload->len > MS__TRACE_MAX_BLOCK) { // a reader would refuse it
        w->too_big = true;
        return;
    }
    if (ms__trace_put_block(&w->out, kind, NULL, 0, payload->data, payload->len))
        w->blocks++;
}

/* A table block: its entry count, then the entries. */
static void emit_table(writer *w, unsigned kind, ms__buf *entries, uint32_t *count)
{
    if (*count == 0)
        return;
    ms__buf b;
    ms__buf_init(&b);
    ms__put_varint(&b, *count);
    ms__buf_put(&b, entries->data, entries->len);
    w->oom |= b.failed;
    emit_block(w, kind, &b);
    ms__buf_free(&b);
    entries->len = 0;
    *count = 0;
}

/* The table entries made since the last: strings first, which the others name. */
static void emit_tables(writer *w)
{
    emit_table(w, MS__TB_STRINGS, &w->strings, &w->pending_strings);
    emit_table(w, MS__TB_SYMBOLS, &w->symbols, &w->pending_symbols);
    emit_table(w, MS__TB_SITES, &w->sites, &w->pending_sites);
    emit_table(w, MS__TB_STACKS, &w->stacks, &w->pending_stacks);
}

/* The tables the events use, then the events. */
static void flush_events(writer *w)
{
    emit_tables(w);
    emit_table(w, MS__TB_EVENTS, &w->evs, &w->nevents);
    w->prev_tick = 0; // each events block decodes on its own
    w->prev_tid = 0;
    w->prev_ptr = 0;
}

/* Encode one retained record (ms__store_visit_retained), as the store holds
 * it: its tick, not ns (the header has the timebase), and its flags, so a
 * replay rebuilds the same live state. */
void ms__tw_event(ms__tw *w, const ms__rec *r)
{
    unsigned type = ms__rec_type(r);
    uint64_t tid = ms__tids_get(w->tids, ms__rec_slot(r));
    const ms_site *site = ms__public_site(r->site);
    uint32_t stack = ms__rec_stack(r);
    uint64_t f = ms__rec_flags(r);
    uint8_t flags =
        (uint8_t)(((f & MS__RF_SOFT) ? MS__TF_SOFT : 0) | ((f & MS__RF_MOVE) ? MS__TF_MOVE : 0));
    uint8_t head = (uint8_t)type;
    if (tid != w->prev_tid)
        head |= MS__TE_THREAD;
    if (site)
        head |= MS__TE_SITE;
    if (stack)
        head |= MS__TE_STACK;
    if (f & MS__RF_CAPTURED)
        head |= MS__TE_CAPTURED;
    if (flags)
        head |= MS__TE_FLAGS;
    // Table entries first: they go in the blocks before this events block.
    // Runs of one site or one stack are common: the last is remembered.
    uint32_t sid = 0;
    if (site) {
        if (site != w->last_site) {
            w->last_sid = site_id(w, site);
            w->last_site = w->last_sid ? site : NULL; // 0: out of memory, not remembered
        }
        sid = w->last_sid;
    }
    if (stack && stack != w->last_stack) {
        note_stack(w, stack);
        w->last_stack = stack;
    }
    // A table near a block's limit goes out now: still before its events.
    if (w->strings.len + w->symbols.len + w->sites.len + w->stacks.len > MS__TRACE_MAX_BLOCK / 4)
        emit_tables(w);
    uint8_t *p = (uint8_t *)ms__buf_reserve(&w->evs, 72), *start = p; // head, flags, 7 varints
    if (!p)
        return;
    *p++ = head;
    if (flags)
        *p++ = flags;
    p = ms__varint_to(p, ms__zigzag((int64_t)(r->tick - w->prev_tick)));
    if (head & MS__TE_THREAD)
        p = ms__varint_to(p, tid);
    p = ms__varint_to(p, ms__zigzag((int64_t)(r->ptr - w->prev_ptr)));
    if (type != MS_EVENT_DEALLOCATE)
        p = ms__varint_to(p, ms__rec_size(r));
    if (type == MS_EVENT_REALLOCATE) {
        p = ms__varint_to(p, ms__zigzag((int64_t)(r->old_ptr - r->ptr)));
        p = ms__varint_to(p, ms__rec_old_size(r));
    }
    if (sid)
        p = ms__varint_to(p, sid);
    if (stack)
        p = ms__varint_to(p, stack);
    w->evs.len += (size_t)(p - start);
    w->prev_tick = r->tick;
    w->prev_tid = tid;
    w->prev_ptr = r->ptr;
    w->total_records++;
    if (++w->nevents == MS__TRACE_BLOCK_EVENTS)
        flush_events(w);
}

static void put_sample(ms__buf *b, const ms_system_snapshot *x)
{
    ms__put_varint(b, x->timestamp);
    ms__put_double(b, x->cpu_usage_percent);
    ms__put_varint(b, x->memory_usage_bytes);
    ms__put_double(b, x->memory_usage_percent);
    ms__put_varint(b, x->thread_count);
    ms__put_varint(b, x->disk_read_bps);
    ms__put_varint(b, x->disk_write_bps);
    ms__put_varint(b, x->network_rx_bps);
    ms__put_varint(b, x->network_tx_bps);
    ms__put_double(b, x->gpu_usage_percent);
    ms__put_varint(b, x->gpu_memory_used);
    ms__put_varint(b, x->gpu_memory_total);
    ms__put_varint(b, x->interval_ns);
    ms__put_double(b, x->machine_cpu_percent);
    ms__put_varint(b, x->machine_memory_used);
    ms__put_varint(b, x->machine_memory_total);
    ms__put_varint(b, x->machine_disk_read_bps);
    ms__put_varint(b, x->machine_disk_write_bps);
    ms__put_varint(b, x->loopback_rx_bps);
    ms__put_varint(b, x->loopback_tx_bps);
    ms__put_varint(b, x->cpu_count);
    ms__put_varint(b, x->gpu_count);
    ms__put_varint(b, x->missing);
    ms__put_u8(b, x->gpu_available);
}

/* The stats a trailer carries, in this order (docs/binary-format.md). */
static void put_stats(ms__buf *b, const ms_memory_stats *st)
{
    const uint64_t v[] = {st->total_allocations,    st->total_deallocations,
                          st->active_allocations,   st->total_allocated,
                          st->total_deallocated,    st->current_memory,
                          st->peak_memory,          st->unmatched_deallocations,
                          st->dropped_events,       st->evicted_events,
                          st->retained_events,      st->ignored_deallocations,
                          st->replaced_allocations, st->track_errors,
                          st->sampled_out,          st->unseen_deallocations,
                          st->null_deallocations,   st->failed_allocations,
                          st->stream_lost_events};
    ms__put_varint(b, sizeof v / sizeof v[0]);
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        ms__put_varint(b, v[i]);
}

void ms__tw_header(ms__tw *w, ms_tracker *t, uint8_t flags)
{
    char prog[256];
    if (t->trace) // a tracker rebuilt from a trace: the traced process
        snprintf(prog, sizeof prog, "%s", t->replay_program);
    else
        ms__program_name(prog, sizeof prog);
    size_t plen = strlen(prog);
    const ms__timebase *tb = ms__store_timebase(t->store);
    bool captured = ms_atomic_load_relaxed(&t->captured);
    ms__buf *b = &w->out;
    size_t at = b->len;
    ms__buf_put(b, MS__TRACE_MAGIC, 8);
    ms__put_u8(b, MS__TRACE_VERSION & 0xff);
    ms__put_u8(b, MS__TRACE_VERSION >> 8);
    ms__put_u8(b, 1); // little-endian
    ms__put_u8(b, (uint8_t)sizeof(void *));
    ms__put_le32(b, MS__TRACE_HEADER_FIXED + (uint32_t)plen + 4);
    // Events recorded while a fold thread runs carry its coarse clock (about
    // 1 ms); the others, capture's while it samples and TRACK's, the tick
    // counter's (docs/design.md §3).
    bool coarse = ms_atomic_load_relaxed(&t->store->coarse) != 0;
    ms__put_le64(b, coarse ? 1000000u : 1u);
    ms__put_le64(b, t->trace ? t->replay_pid : (uint64_t)getpid());
    ms__put_le64(b, t->start_ns);
    ms__put_double(b, tb->ns_per_tick);
    ms__put_le64(b, tb->tick0);
    ms__put_le64(b, tb->ns0);
    ms__put_le64(b, ms__store_series_width(t->store));
    ms__put_u8(b, (uint8_t)((captured ? MS__TH_CAPTURED : 0) | flags));
    ms__put_u8(b, 0);
    ms__put_u8(b, (uint8_t)plen);
    ms__put_u8(b, (uint8_t)(plen >> 8));
    ms__buf_put(b, prog, plen);
    if (!b->failed)
        ms__put_le32(b, ms__trace_crc(b->data + at, b->len - at));
}

void ms__tw_config(ms__tw *w, ms_sampling_config cfg, bool is_estimate)
{
    ms__buf b;
    ms__buf_init(&b);
    ms__put_double(&b, cfg.sample_rate);
    ms__put_u8(&b, cfg.capture_call_stack);
    ms__put_varint(&b, cfg.max_stack_depth);
    ms__put_u8(&b, is_estimate);
    w->oom |= b.failed;
    emit_block(w, MS__TB_CONFIG, &b);
    ms__buf_free(&b);
}

void ms__tw_flush(ms__tw *w) { flush_events(w); }

void ms__tw_lost(ms__tw *w, uint64_t n)
{
    if (n == 0)
        return;
    flush_events(w); // in its place among the events
    ms__buf b;
    ms__buf_init(&b);
    ms__put_varint(&b, n);
    w->oom |= b.failed;
    emit_block(w, MS__TB_LOST, &b);
    ms__buf_free(&b);
    w->lost += n;
}

void ms__tw_samples(ms__tw *w, const ms_system_snapshot *x, size_t count)
{
    ms__buf b;
    ms__buf_init(&b);
    for (size_t i = 0; i < count; i += 4096) {
        size_t n = count - i < 4096 ? count - i : 4096;
        b.len = 0;
        ms__put_varint(&b, n);
        for (size_t k = 0; k < n; k++)
            put_sample(&b, &x[i + k]);
        w->oom |= b.failed;
        emit_block(w, MS__TB_SAMPLES, &b);
    }
    ms__buf_free(&b);
    w->samples += count;
}

void ms__tw_trailer(ms__tw *w, uint64_t duration_ns, uint64_t samples_overwritten,
                    const ms_memory_stats *stats)
{
    flush_events(w);
    ms__buf b;
    ms__buf_init(&b);
    ms__put_varint(&b, w->total_records);
    ms__put_varint(&b, w->samples);
    ms__put_varint(&b, w->blocks + 1); // this one too
    ms__put_varint(&b, ms__real_ns());
    ms__put_varint(&b, duration_ns);
    ms__put_varint(&b, samples_overwritten);
    put_stats(&b, stats);
    ms__buf_put(&b, MS__TRACE_END_MAGIC, 8);
    w->oom |= b.failed;
    emit_block(w, MS__TB_TRAILER, &b);
    ms__buf_free(&b);
}

ms__buf *ms__tw_out(ms__tw *w) { return &w->out; }
uint64_t ms__tw_records(const ms__tw *w) { return w->total_records; }
uint64_t ms__tw_pending(const ms__tw *w) { return w->nevents; }

bool ms__tw_failed(const ms__tw *w)
{
    return w->oom || w->too_big || w->out.failed || w->evs.failed || w->strings.failed ||
           w->symbols.failed || w->sites.failed || w->stacks.failed;
}
uint64_t ms__tw_lost_written(const ms__tw *w) { return w->lost; }

int ms__tw_status(const ms__tw *w)
{
    bool oom = w->oom || w->out.failed || w->evs.failed || w->strings.failed || w->symbols.failed ||
               w->sites.failed || w->stacks.failed;
    return oom          ? ms__fail(MS_ENOMEM, "out of memory writing the binary trace")
           : w->too_big ? ms__fail(MS_ERANGE, "a block of the trace outgrew the format's 16 MiB")
                        : 0;
}

ms__tw *ms__tw_new(const ms__tids *tids)
{
    ms__tw *w = ms__calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->tids = tids;
    ms__buf_init(&w->out);
    ms__buf_init(&w->strings);
    ms__buf_init(&w->symbols);
    ms__buf_init(&w->sites);
    ms__buf_init(&w->stacks);
    ms__buf_init(&w->evs);
    return w;
}

void ms__tw_free(ms__tw *w)
{
    if (!w)
        return;
    ms__buf_free(&w->out);
    ms__buf_free(&w->strings);
    ms__buf_free(&w->symbols);
    ms__buf_free(&w->sites);
    ms__buf_free(&w->stacks);
    ms__buf_free(&w->evs);
    for (size_t i = 0; i <= w->nstrings && w->str_text; i++)
        ms__free(w->str_text[i]);
    ms__free(w->str_text);
    map_free(&w->str_by_hash);
    map_free(&w->site_by_ptr);
    map_free(&w->stack_seen);
    map_free(&w->symbol_by_pc);
    ms__free(w);
}

static void visit_event(const ms__rec *r, void *w) { ms__tw_event(w, r); }

/* The whole trace of t into out (ms__export_with). */
static int build_binary(ms_tracker *t, ms__buf *out)
{
    ms_memory_snapshot *snap = NULL;
    ms_memory_stats stats;
    ms_analysis_report *r = ms__tracker_analyze(t, &snap, &stats);
    if (!r)
        return ms_last_error();
    ms__tw *w = ms__tw_new(t->store->tids);
    if (!w) {
        ms_report_free(r);
        ms_snapshot_free(snap);
        return ms__fail(MS_ENOMEM, "out of memory writing the binary trace");
    }
    ms__tw_header(w, t, 0);
    size_t header_len = ms__tw_out(w)->len;
    ms__tw_config(w, ms__tracker_sampling(t), r->is_estimate);
    ms__store_lock_folded(t->store);
    ms__store_visit_retained_and_unlock(t->store, visit_event, w);
    ms__tw_flush(w);
    ms__tw_samples(w, r->system_snapshots, r->system_snapshot_count);
    ms__tw_trailer(w, (uint64_t)(r->duration_sec * 1e9 + 0.5), r->system_snapshots_overwritten,
                   &stats);
    int rc = ms__tw_status(w);
    int level = ms__trace_zstd_level();
    if (rc == 0 && level != 0) { // the blocks, compressed where that is smaller
        ms__zctx z = {0};
        ms__buf_put(out, w->out.data, header_len);
        rc = ms__trace_compress_blocks(&z, level, (const uint8_t *)w->out.data + header_len,
                                       w->out.len - header_len, out);
        ms__zctx_free(&z);
    } else if (rc == 0) { // the file is the caller's now
        ms__buf_free(out);
        *out = w->out;
        ms__buf_init(&w->out);
    }
    ms__tw_free(w);
    ms_report_free(r);
    ms_snapshot_free(snap);
    return rc;
}

int ms_export_binary(ms_tracker *t, const char *path)
{
    return ms__export_with(t, path, "ms_export_binary", build_binary);
}
