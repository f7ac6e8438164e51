/* read.c — the trace reader (ms_trace_*): one block at a time, each checked
 * (length bound, CRC, known kind) before it is decoded, and decoded through a
 * bounded cursor, so a damaged file gives an error naming its offset, never a
 * crash, an unbounded allocation or an endless loop. A file that ends inside
 * a block, or with no trailer, reads up to its last whole block and says it
 * was truncated. Format: docs/binary-format.md. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/error.h"
#include "stack/stack.h"
#include "trace/trace.h"

/* A decoded event record: the public item and what only a replay needs. */
/* The fuzz build skips CRCs, so mutated blocks reach the decoders. */
#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define MS__FUZZING 1
#else
#define MS__FUZZING 0
#endif

typedef struct rec_item {
    ms_trace_item pub;
    uint64_t tick;
    uint8_t type;  /* 0..3: ms_event_type, or 3 for a TRACK name of a captured block */
    uint8_t flags; /* MS__TF_* */
} rec_item;

typedef struct stack_entry {
    uint32_t id;
    uint32_t depth;
    const char **frames;
    uint32_t *syms; /* the frames' symbol numbers */
} stack_entry;

typedef struct sym_entry {
    uintptr_t pc;
    const char *function, *file, *module;
    unsigned line;
    uintptr_t offset;
} sym_entry;

struct ms_trace {
    FILE *f;
    uint64_t offset; /* of the next block */
    ms_trace_info info;
    char program[256];
    char **strings; /* id -> text; [0] unused (NULL) */
    size_t nstrings, strings_cap;
    ms_site **sites; /* id - 1 -> site: each its own allocation, so it never moves */
    size_t nsites, sites_cap;
    stack_entry *stacks; /* open addressing by id */
    size_t nstacks, stacks_cap;
    char **symbols; /* id - 1 -> the frame's text, as reports print it */
    size_t nsymbols, symbols_cap;
    sym_entry *syms; /* id - 1 -> the symbol */
    size_t syms_cap;
    ms__timebase tb;                  /* the traced process's ticks -> ns */
    uint64_t records, sample_records; /* decoded so far, for the trailer's check */
    uint64_t series_width;            /* ticks a series point spans at the start */
    bool captured;                    /* the traced tracker was capture's */
    bool configured;                  /* the CONFIG block was read */
    int error;                        /* the error reading stopped at, returned again */
    uint64_t bytes_read, text_bytes;  /* the symbols' text stays in proportion to the file */
    uint8_t *block;                   /* the current block's payload */
    size_t block_cap;
    ms__zctx z;      /* a compressed block's payload, decompressed */
    rec_item *items; /* decoded from the current events or samples block */
    size_t nitems, next_item, items_cap;
    bool done;
};

static int corrupt(uint64_t at, const char *why)
{
    return ms__fail(MS_ECORRUPT, "corrupt trace: %s (block at byte offset %" PRIu64 ")", why, at);
}

/* --------------------------------------------------------------- tables */

static bool grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t ncap = *cap ? *cap : 64;
    while (ncap < need)
        ncap *= 2;
    void *n = ms__realloc(*p, ncap * size);
    if (!n)
        return false;
    *p = n;
    *cap = ncap;
    return true;
}

static const char *string_at(ms_trace *tr, uint64_t id, bool *bad)
{
    if (id == 0)
        return NULL;
    if (id > tr->nstrings) {
        *bad = true;
        return NULL;
    }
    return tr->strings[id];
}

static stack_entry *stack_find(const ms_trace *tr, uint32_t id)
{
    if (!tr->stacks_cap)
        return NULL;
    for (size_t i = (id * 2654435761u) & (tr->stacks_cap - 1);;
         i = (i + 1) & (tr->stacks_cap - 1)) {
        if (tr->stacks[i].id == id)
            return &tr->stacks[i];
        if (tr->stacks[i].id == 0)
            return NULL;
    }
}

static bool stack_insert(ms_trace *tr, stack_entry e)
{
    if ((tr->nstacks + 1) * 2 > tr->stacks_cap) {
        size_t ncap = tr->stacks_cap ? tr->stacks_cap * 2 : 256;
        stack_entry *n = ms__calloc(ncap, sizeof *n);
        if (!n)
            return false;
        for (size_t i = 0; i < tr->stacks_cap; i++) {
            if (!tr->stacks[i].id)
                continue;
            size_t j = (tr->stacks[i].id * 2654435761u) & (ncap - 1);
            while (n[j].id)
                j = (j + 1) & (ncap - 1);
            n[j] = tr->stacks[i];
        }
        ms__free(tr->stacks);
        tr->stacks = n;
        tr->stacks_cap = ncap;
    }
    size_t i = (e.id * 2654435761u) & (tr->stacks_cap - 1);
    while (tr->stacks[i].id && tr->stacks[i].id != e.id)
        i = (i + 1) & (tr->stacks_cap - 1);
    if (tr->stacks[i].id) { // the same id twice: the first stays
        ms__free(e.frames);
        ms__free(e.syms);
        return true;
    }
    tr->stacks[i] = e;
    tr->nstacks++;
    return true;
}

/* ------------------------------------------------------------- decoding */

static int read_strings(ms_trace *tr, ms__cursor *c, uint64_t at)
{
    uint64_t n = ms__get_varint(c);
    if (n > (uint64_t)(c->end - c->p))
        return corrupt(at, "more strings than bytes");
    if (!grow((void **)&tr->strings, &tr->strings_cap, tr->nstrings + n + 1, sizeof(char *)))
        return ms__fail(MS_ENOMEM, "out of memory reading the trace");
    for (uint64_t i = 0; i < n; i++) {
        uint64_t len = ms__get_varint(c);
        if (c->bad || len > (uint64_t)(c->end - c->p))
            return corrupt(at, "a string runs past its block");
        char *s = ms__malloc(len + 1);
        if (!s)
            return ms__fail(MS_ENOMEM, "out of memory reading the trace");
        memcpy(s, c->p, len);
        s[len] = '\0';
        c->p += len;
        tr->strings[++tr->nstrings] = s;
    }
    return 0;
}

static int read_symbols(ms_trace *tr, ms__cursor *c, uint64_t at)
{
    uint64_t n = ms__get_varint(c);
    if (n > (uint64_t)(c->end - c->p) / 6)
        return corrupt(at, "more symbols than the block can hold");
    if (!grow((void **)&tr->symbols, &tr->symbols_cap, tr->nsymbols + n, sizeof(char *)) ||
        !grow((void **)&tr->syms, &tr->syms_cap, tr->nsymbols + n, sizeof(sym_entry)))
        return ms__fail(MS_ENOMEM, "out of memory reading the trace");
    for (uint64_t i = 0; i < n; i++) {
        bool bad = false;
        uint64_t pc = ms__get_varint(c);
        const char *fn = string_at(tr, ms__get_varint(c), &bad);
        const char *file = string_at(tr, ms__get_varint(c), &bad);
        uint64_t line = ms__get_varint(c);
        const char *mod = string_at(tr, ms__get_varint(c), &bad);
        uint64_t offset = ms__get_varint(c);
        if (bad || c->bad || line > UINT32_MAX)
            return corrupt(at, "a symbol names a string that is not there");
        ms__symbol sym;
        snprintf(sym.function, sizeof sym.function, "%s", fn ? fn : "");
        snprintf(sym.file, sizeof sym.file, "%s", file ? file : "");
        sym.line = (unsigned)line;
        snprintf(sym.module, sizeof sym.module, "%s", mod ? mod : "");
        sym.offset = (uintptr_t)offset;
        char text[1024];
        ms__symbol_format(&sym, (uintptr_t)pc, text, sizeof text);
        size_t len = strlen(text);
        tr->text_bytes += len + 1;
        if (tr->text_bytes > 64 * tr->bytes_read + (1u << 20))
            return corrupt(at, "symbols far longer than the file that names them");
        char *copy = ms__malloc(len + 1);
        if (!copy)
            return ms__fail(MS_ENOMEM, "out of memory reading the trace");
        memcpy(copy, text, len + 1);
        tr->syms[tr->nsymbols] =
            (sym_entry){(uintptr_t)pc, fn, file, mod, (unsigned)line, (uintptr_t)offset};
        tr->symbols[tr->nsymbols++] = copy;
    }
    return 0;
}

static int read_sites(ms_trace *tr, ms__cursor *c, uint64_t at)
{
    uint64_t n = ms__get_varint(c);
    if (n > (uint64_t)(c->end - c->p))
        return corrupt(at, "more sites than bytes");
    if (!grow((void **)&tr->sites, &tr->sites_cap, tr->nsites + n, sizeof(ms_site *)))
        return ms__fail(MS_ENOMEM, "out of memory reading the trace");
    for (uint64_t i = 0; i < n; i++) {
        bool bad = false;
        ms_site s;
        s.name = string_at(tr, ms__get_varint(c), &bad);
        s.type = string_at(tr, ms__get_varint(c), &bad);
        s.file = string_at(tr, ms__get_varint(c), &bad);
        uint64_t line = ms__get_varint(c);
        s.func = string_at(tr, ms__get_varint(c), &bad);
        if (bad || c->bad || line > UINT32_MAX)
            return corrupt(at, "a site names a string that is not there");
        s.line = (unsigned)line;
        ms_site *copy = ms__malloc(sizeof *copy);
        if (!copy)
            return ms__fail(MS_ENOMEM, "out of memory reading the trace");
        *copy = s;
        tr->sites[tr->nsites++] = copy;
    }
    return 0;
}

static int read_stacks(ms_trace *tr, ms__cursor *c, uint64_t at)
{
    uint64_t n = ms__get_varint(c);
    if (n > (uint64_t)(c->end - c->p))
        return corrupt(at, "more stacks than bytes");
    for (uint64_t i = 0; i < n; i++) {
        uint64_t id = ms__get_varint(c), depth = ms__get_varint(c);
        if (c->bad || id == 0 || id > UINT32_MAX || depth > 256 ||
            depth > (uint64_t)(c->end - c->p))
            return corrupt(at, "an impossible stack entry");
        const char **frames = ms__calloc(depth ? depth : 1, sizeof *frames);
        uint32_t *syms = ms__calloc(depth ? depth : 1, sizeof *syms);
        if (!frames || !syms) {
            ms__free(frames);
            ms__free(syms);
            return ms__fail(MS_ENOMEM, "out of memory reading the trace");
        }
        bool bad = false;
        for (uint64_t d = 0; d < depth; d++) {
            uint64_t sym = ms__get_varint(c);
            if (sym == 0 || sym > tr->nsymbols) {
                bad = true;
            } else {
                frames[d] = tr->symbols[sym - 1];
                syms[d] = (uint32_t)sym;
            }
        }
        if (bad || c->bad) {
            ms__free(frames);
            ms__free(syms);
            return corrupt(at, "a stack names a frame that is not there");
        }
        if (!stack_insert(tr, (stack_entry){(uint32_t)id, (uint32_t)depth, frames, syms})) {
            ms__free(frames);
            ms__free(syms);
            return ms__fail(MS_ENOMEM, "out of memory reading the trace");
        }
    }
    return 0;
}

static int read_events(ms_trace *tr, ms__cursor *c, uint64_t at)
{
    uint64_t n = ms__get_varint(c);
    if (n > MS__TRACE_BLOCK_EVENTS || n > (uint64_t)(c->end - c->p) / 3)
        return corrupt(at, "more events than the block can hold");
    if (!grow((void **)&tr->items, &tr->items_cap, n, sizeof *tr->items))
        return ms__fail(MS_ENOMEM, "out of memory reading the trace");
    uint64_t tick = 0, tid = 0;
    uintptr_t ptr = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint8_t head = ms__get_u8(c);
        uint8_t flags = (head & MS__TE_FLAGS) ? ms__get_u8(c) : 0;
        unsigned type = head & MS__TE_TYPE;
        if ((head & ~MS__TE_KNOWN) || (flags & ~MS__TF_KNOWN))
            return corrupt(at, "an event of an unknown kind");
        rec_item *it = &tr->items[i];
        memset(it, 0, sizeof *it);
        it->type = (uint8_t)type;
        it->flags = flags;
        it->pub.kind = MS_TRACE_EVENT;
        tick += (uint64_t)ms__unzigzag(ms__get_varint(c));
        if (head & MS__TE_THREAD)
            tid = ms__get_varint(c);
        ptr += (uintptr_t)ms__unzigzag(ms__get_varint(c));
        it->tick = tick;
        ms_memory_event *e = &it->pub.event;
        e->timestamp = ms__timebase_ns(&tr->tb, tick);
        e->type = type == 3 ? MS_EVENT_ALLOCATE : (ms_event_type)type;
        e->ptr = ptr;
        e->thread_id = tid;
        uint64_t size = 0, old_size = 0;
        if (type != MS_EVENT_DEALLOCATE)
            size = ms__get_varint(c);
        if (type == MS_EVENT_REALLOCATE) {
            e->old_ptr = ptr + (uintptr_t)ms__unzigzag(ms__get_varint(c));
            old_size = ms__get_varint(c);
        }
        if (size >= MS__TRACE_SIZE_LIMIT || old_size >= MS__TRACE_SIZE_LIMIT || tid == UINT64_MAX)
            return corrupt(at, "an event with an impossible size or thread");
        e->size = (size_t)size;
        e->old_size = (size_t)old_size;
        if (head & MS__TE_SITE) {
            uint64_t sid = ms__get_varint(c);
            if (sid == 0 || sid > tr->nsites)
                return corrupt(at, "an event names a site that is not there");
            e->site = tr->sites[sid - 1];
        }
        if (head & MS__TE_STACK) {
            uint64_t stack = ms__get_varint(c);
            if (stack > UINT32_MAX || !stack_find(tr, (uint32_t)stack))
                return corrupt(at, "an event names a stack that is not there");
            it->pub.stack_id = (uint32_t)stack;
        }
        it->pub.captured = head & MS__TE_CAPTURED;
        if (c->bad)
            return corrupt(at, "an event runs past its block");
    }
    tr->records += n;
    tr->nitems = n;
    tr->next_item = 0;
    return 0;
}

static void read_sample(ms__cursor *c, ms_system_snapshot *x)
{
    x->timestamp = ms__get_varint(c);
    x->cpu_usage_percent = ms__get_double(c);
    x->memory_usage_bytes = ms__get_varint(c);
    x->memory_usage_percent = ms__get_double(c);
    x->thread_count = (size_t)ms__get_varint(c);
    x->disk_read_bps = ms__get_varint(c);
    x->disk_write_bps = ms__get_varint(c);
    x->network_rx_bps = ms__get_varint(c);
    x->network_tx_bps = ms__get_varint(c);
    x->gpu_usage_percent = ms__get_double(c);
    x->gpu_memory_used = ms__get_varint(c);
    x->gpu_memory_total = ms__get_varint(c);
    x->interval_ns = ms__get_varint(c);
    x->machine_cpu_percent = ms__get_double(c);
    x->machine_memory_used = ms__get_varint(c);
    x->machine_memory_total = ms__get_varint(c);
    x->machine_disk_read_bps = ms__get_varint(c);
    x->machine_disk_write_bps = ms__get_varint(c);
    x->loopback_rx_bps = ms__get_varint(c);
    x->loopback_tx_bps = ms__get_varint(c);
    x->cpu_count = (uint32_t)ms__get_varint(c);
    x->gpu_count = (uint32_t)ms__get_varint(c);
    x->missing = (uint32_t)ms__get_varint(c);
    x->gpu_available = ms__get_u8(c) != 0;
}

static int read_samples(ms_trace *tr, ms__cursor *c, uint64_t at)
{
    uint64_t n = ms__get_varint(c);
    if (n > (uint64_t)(c->end - c->p) / 40) // a sample takes at least 40 bytes
        return corrupt(at, "more samples than the block can hold");
    if (!grow((void **)&tr->items, &tr->items_cap, n, sizeof *tr->items))
        return ms__fail(MS_ENOMEM, "out of memory reading the trace");
    for (uint64_t i = 0; i < n; i++) {
        rec_item *it = &tr->items[i];
        memset(it, 0, sizeof *it);
        it->pub.kind = MS_TRACE_SAMPLE;
        read_sample(c, &it->pub.sample);
        if (c->bad)
            return corrupt(at, "a sample runs past its block");
    }
    tr->sample_records += n;
    tr->nitems = n;
    tr->next_item = 0;
    return 0;
}

static int read_trailer(ms_trace *tr, ms__cursor *c, uint64_t at)
{
    uint64_t events = ms__get_varint(c), samples = ms__get_varint(c);
    (void)ms__get_varint(c); // blocks
    tr->info.written_at_ns = ms__get_varint(c);
    tr->info.duration_ns = ms__get_varint(c);
    tr->info.samples_overwritten = ms__get_varint(c);
    uint64_t nstats = ms__get_varint(c);
    uint64_t v[32] = {0};
    if (c->bad || nstats > 32)
        return corrupt(at, "an impossible trailer");
    for (uint64_t i = 0; i < nstats; i++)
        v[i] = ms__get_varint(c);
    if (c->bad || c->end - c->p < 8 || memcmp(c->p, MS__TRACE_END_MAGIC, 8) != 0)
        return corrupt(at, "a trailer without its end mark");
    ms_memory_stats *st = &tr->info.stats;
    st->total_allocations = (size_t)v[0];
    st->total_deallocations = (size_t)v[1];
    st->active_allocations = (size_t)v[2];
    st->total_allocated = v[3];
    st->total_deallocated = v[4];
    st->current_memory = v[5];
    st->peak_memory = v[6];
    st->unmatched_deallocations = (size_t)v[7];
    st->dropped_events = v[8];
    st->evicted_events = v[9];
    st->retained_events = v[10];
    st->ignored_deallocations = v[11];
    st->replaced_allocations = v[12];
    st->track_errors = v[13];
    st->sampled_out = v[14];
    st->unseen_deallocations = v[15];
    st->null_deallocations = v[16];
    st->failed_allocations = v[17];
    st->stream_lost_events = v[18];
    if (events != tr->records || samples != tr->sample_records)
        return corrupt(at, "the trailer's totals disagree with the blocks read");
    tr->info.complete = true;
    tr->done = true;
    return 0;
}

/* Read and check the next block; decode it. @return 1 (a block), 0 (the end),
 * or an error. */
static int next_block(ms_trace *tr)
{
    uint64_t at = tr->offset;
    uint8_t head[5];
    size_t got = fread(head, 1, sizeof head, tr->f);
    if (got < sizeof head) {
        if (ferror(tr->f))
            return ms__fail(MS_EIO, "cannot read the trace: %s", strerror(errno));
        tr->info.truncated = true; // no trailer: the end of the last whole block
        tr->done = true;
        return 0;
    }
    unsigned kind = head[0];
    uint32_t len = ms__le32(head + 1);
    if (kind == 0 || kind >= MS__TB_KINDS)
        return corrupt(at, "a block of an unknown kind");
    if (len > MS__TRACE_MAX_BLOCK)
        return corrupt(at, "an impossible block length");
    // Read the payload in steps of at most 1 MiB, so a length that claims
    // more than the file holds costs no more memory than the file has.
    size_t want = (size_t)len + 4, have = 0;
    while (have < want) {
        size_t step = want - have < (1u << 20) ? want - have : (1u << 20);
        if (!grow((void **)&tr->block, &tr->block_cap, 5 + have + step, 1))
            return ms__fail(MS_ENOMEM, "out of memory reading the trace");
        if (have == 0)
            memcpy(tr->block, head, sizeof head);
        got = fread(tr->block + 5 + have, 1, step, tr->f);
        have += got;
        if (got < step) {
            if (ferror(tr->f))
                return ms__fail(MS_EIO, "cannot read the trace: %s", strerror(errno));
            tr->info.truncated = true; // the file ends inside this block
            tr->done = true;
            return 0;
        }
    }
    tr->bytes_read += (uint64_t)len + 9;
    if (!MS__FUZZING && ms__le32(tr->block + 5 + len) != ms__trace_crc(tr->block, (size_t)len + 5))
        return corrupt(at, "its checksum does not match");
    tr->offset += (uint64_t)len + 9;
    ms__cursor c = {tr->block + 5, tr->block + 5 + len, false};
    if (kind == MS__TB_ZSTD) {
        const char *why = ms__trace_unwrap(&tr->z, &c, &kind);
        if (!why)
            return ms__fail(MS_ENOMEM, "out of memory reading the trace");
        if (*why)
            return corrupt(at, why);
    }
    int rc = 0;
    switch (kind) {
    case MS__TB_STRINGS:
        rc = read_strings(tr, &c, at);
        break;
    case MS__TB_SYMBOLS:
        rc = read_symbols(tr, &c, at);
        break;
    case MS__TB_SITES:
        rc = read_sites(tr, &c, at);
        break;
    case MS__TB_STACKS:
        rc = read_stacks(tr, &c, at);
        break;
    case MS__TB_EVENTS:
        rc = tr->configured ? read_events(tr, &c, at)
                            : corrupt(at, "events before the configuration block");
        break;
    case MS__TB_SAMPLES:
        rc = read_samples(tr, &c, at);
        break;
    case MS__TB_CONFIG:
        tr->info.sampling.sample_rate = ms__get_double(&c);
        tr->info.sampling.capture_call_stack = ms__get_u8(&c) != 0;
        tr->info.sampling.max_stack_depth = (size_t)ms__get_varint(&c);
        tr->info.is_estimate = ms__get_u8(&c) != 0;
        tr->configured = true;
        if (c.bad ||
            !(tr->info.sampling.sample_rate >= 0.0 && tr->info.sampling.sample_rate <= 1.0))
            rc = corrupt(at, "a short or impossible configuration block");
        break;
    case MS__TB_TRAILER:
        rc = read_trailer(tr, &c, at);
        break;
    case MS__TB_LOST: {
        uint64_t n = ms__get_varint(&c);
        if (c.bad || c.p != c.end || n == 0 || n > UINT64_MAX - tr->info.lost_events)
            rc = corrupt(at, "an impossible lost-events block");
        else
            tr->info.lost_events += n;
        break;
    }
    }
    return rc < 0 ? rc : 1;
}

/* ------------------------------------------------------------------ API */

int ms_trace_open(const char *path, ms_trace **out)
{
    if (!out)
        return ms__fail(MS_EINVAL, "ms_trace_open: out is NULL");
    *out = NULL;
    if (!path || !*path)
        return ms__fail(MS_EINVAL, "ms_trace_open: path is empty");
    FILE *f = fopen(path, "rb");
    if (!f)
        return ms__fail(MS_EIO, "cannot open %s: %s", path, strerror(errno));
    return ms__trace_open_stream(f, path, out);
}

int ms__trace_open_stream(FILE *f, const char *path, ms_trace **out)
{
    *out = NULL;
    ms_trace *tr = ms__calloc(1, sizeof *tr);
    if (!tr) {
        fclose(f);
        return ms__fail(MS_ENOMEM, "out of memory opening %s", path);
    }
    tr->f = f;
    uint8_t h[MS__TRACE_HEADER_FIXED]; // the fixed part of the header
    int rc = 0;
    if (fread(h, 1, sizeof h, tr->f) < sizeof h || memcmp(h, MS__TRACE_MAGIC, 8) != 0) {
        rc = ms__fail(MS_ECORRUPT, "%s is not a memscope trace (no header)", path);
    } else {
        unsigned version = (unsigned)h[8] | (unsigned)h[9] << 8;
        uint32_t header_len = ms__le32(h + 12);
        unsigned plen = (unsigned)h[74] | (unsigned)h[75] << 8;
        if (version > MS__TRACE_VERSION) {
            rc = ms__fail(MS_ENOTSUP,
                          "%s is a trace of format version %u; this library reads up to %u", path,
                          version, MS__TRACE_VERSION);
        } else if (version == 0 || h[10] != 1 || (h[11] != 4 && h[11] != 8) ||
                   header_len != sizeof h + plen + 4u || plen > 255) {
            rc = ms__fail(MS_ECORRUPT, "%s: corrupt trace header (byte offset 0)", path);
        } else {
            uint8_t all[sizeof h + 255 + 4];
            memcpy(all, h, sizeof h);
            if (fread(all + sizeof h, 1, plen + 4u, tr->f) < plen + 4u) {
                rc = ms__fail(MS_ECORRUPT, "%s: the trace header is cut short", path);
            } else if (!MS__FUZZING &&
                       ms__le32(all + sizeof h + plen) != ms__trace_crc(all, sizeof h + plen)) {
                rc = ms__fail(MS_ECORRUPT, "%s: corrupt trace header (checksum)", path);
            } else {
                ms__cursor c = {h + 40, h + 48, false};
                tr->info.version = version;
                tr->info.resolution_ns = ms__le64(h + 16);
                tr->info.pid = ms__le64(h + 24);
                tr->info.start_ns = ms__le64(h + 32);
                tr->tb.ns_per_tick = ms__get_double(&c);
                tr->tb.tick0 = ms__le64(h + 48);
                tr->tb.ns0 = ms__le64(h + 56);
                tr->series_width = ms__le64(h + 64);
                tr->captured = h[72] & MS__TH_CAPTURED;
                tr->info.streamed = (h[72] & MS__TH_STREAMED) != 0;
                memcpy(tr->program, all + sizeof h, plen);
                tr->program[plen] = '\0';
                tr->info.program = tr->program;
                tr->offset = header_len;
                tr->info.sampling.sample_rate = 1.0; // until the CONFIG block says
                uint64_t w = tr->series_width;
                if (!(tr->tb.ns_per_tick > 0.0 && tr->tb.ns_per_tick < 1e6) || w == 0 ||
                    (w & (w - 1)) || w > (UINT64_C(1) << 40) || h[73] != 0 ||
                    (h[72] & ~MS__TH_KNOWN))
                    rc = ms__fail(MS_ECORRUPT, "%s: corrupt trace header (timebase)", path);
            }
        }
    }
    if (rc < 0) {
        ms_trace_close(tr);
        return rc;
    }
    *out = tr;
    return 0;
}

/* Decode blocks until there is an item to hand out. @return 1, 0 at the end,
 * or the error reading stopped at (the same one on every later call: never a
 * clean end after an error). */
static int fill(ms_trace *tr)
{
    while (tr->next_item == tr->nitems) {
        if (tr->error)
            return tr->error;
        if (tr->done)
            return 0;
        tr->nitems = tr->next_item = 0;
        int rc = next_block(tr);
        if (rc < 0) {
            tr->error = rc;
            tr->done = true;
            return rc;
        }
    }
    return 1;
}

int ms_trace_next(ms_trace *tr, ms_trace_item *item)
{
    if (!tr || !item)
        return ms__fail(MS_EINVAL, "ms_trace_next: %s is NULL", tr ? "item" : "trace");
    for (;;) {
        int rc = fill(tr);
        if (rc <= 0)
            return rc;
        const rec_item *r = &tr->items[tr->next_item++];
        if (r->pub.kind == MS_TRACE_EVENT && r->type == 3)
            continue; // a name for a captured block: not an event of its own
        *item = r->pub;
        if (item->kind == MS_TRACE_EVENT)
            tr->info.events++;
        else
            tr->info.samples++;
        return 1;
    }
}

const ms_trace_info *ms_trace_get_info(const ms_trace *tr) { return tr ? &tr->info : NULL; }

size_t ms_trace_stack(const ms_trace *tr, uint32_t id, const char *const **frames)
{
    const stack_entry *e = tr && id ? stack_find(tr, id) : NULL;
    if (frames)
        *frames = e ? (const char *const *)e->frames : NULL;
    return e ? e->depth : 0;
}

void ms_trace_close(ms_trace *tr)
{
    if (!tr)
        return;
    if (tr->f)
        fclose(tr->f);
    for (size_t i = 1; i <= tr->nstrings; i++)
        ms__free(tr->strings[i]);
    ms__free(tr->strings);
    for (size_t i = 0; i < tr->nsites; i++)
        ms__free(tr->sites[i]);
    ms__free(tr->sites);
    for (size_t i = 0; i < tr->stacks_cap; i++) {
        ms__free(tr->stacks[i].frames);
        ms__free(tr->stacks[i].syms);
    }
    ms__free(tr->syms);
    ms__free(tr->stacks);
    for (size_t i = 0; i < tr->nsymbols; i++)
        ms__free(tr->symbols[i]);
    ms__free(tr->symbols);
    ms__free(tr->block);
    ms__zctx_free(&tr->z);
    ms__free(tr->items);
    ms__free(tr);
}

/* ------------------------------------------------------------- internal */

int ms__trace_next_rec(ms_trace *tr, ms__trace_rec *out)
{
    int rc = fill(tr);
    if (rc <= 0)
        return rc;
    const rec_item *r = &tr->items[tr->next_item++];
    memset(out, 0, sizeof *out);
    if (r->pub.kind == MS_TRACE_SAMPLE) {
        out->sample = true;
        out->snap = r->pub.sample;
        tr->info.samples++;
        return 1;
    }
    const ms_memory_event *e = &r->pub.event;
    out->tick = r->tick;
    out->tid = e->thread_id;
    out->type = r->type;
    out->flags = r->flags;
    out->captured = r->pub.captured;
    out->ptr = e->ptr;
    out->old_ptr = e->old_ptr;
    out->size = e->size;
    out->old_size = e->old_size;
    out->site = e->site;
    out->stack = r->pub.stack_id;
    if (r->type != 3)
        tr->info.events++;
    return 1;
}

size_t ms__trace_stack_syms(const ms_trace *tr, uint32_t id, const uint32_t **syms)
{
    const stack_entry *e = id ? stack_find(tr, id) : NULL;
    *syms = e ? e->syms : NULL;
    return e ? e->depth : 0;
}

bool ms__trace_symbol(const ms_trace *tr, uint32_t n, ms__symbol *out)
{
    if (n == 0 || n > tr->nsymbols)
        return false;
    const sym_entry *e = &tr->syms[n - 1];
    memset(out, 0, sizeof *out);
    snprintf(out->function, sizeof out->function, "%s", e->function ? e->function : "");
    snprintf(out->file, sizeof out->file, "%s", e->file ? e->file : "");
    out->line = e->line;
    snprintf(out->module, sizeof out->module, "%s", e->module ? e->module : "");
    out->offset = e->offset;
    out->shown = e->pc;
    return true;
}

uint64_t ms__trace_series_width(const ms_trace *tr) { return tr->series_width; }
bool ms__trace_captured(const ms_trace *tr) { return tr->captured; }
const ms__timebase *ms__trace_timebase(const ms_trace *tr) { return &tr->tb; }
