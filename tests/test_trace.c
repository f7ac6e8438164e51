/* test_trace.c — the binary trace (docs/binary-format.md): written by
 * ms_export_binary and read back by ms_trace_* event by event, equal to
 * ms_tracker_events; truncated at every block boundary and at random offsets
 * (read to the last whole block, then "truncated"); every block kind with a
 * flipped bit, an unknown kind, an impossible length and a newer version
 * (clear errors, no crash). */
#define _GNU_SOURCE
#include <memscope.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "test_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

static char dir[4096];

static void path_in(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* The blocks of a trace file: offset and kind of each, after the header. */
typedef struct block_at {
    size_t at, len; /* len: the whole block, kind to CRC */
    unsigned kind;
} block_at;

static size_t walk(const unsigned char *file, size_t n, block_at *out, size_t max)
{
    size_t at = le32(file + 12), k = 0; // header_len
    while (at + 5 <= n && k < max) {
        size_t len = 5 + (size_t)le32(file + at + 1) + 4;
        out[k++] = (block_at){at, len, file[at]};
        at += len;
    }
    return k;
}

/* Read a whole trace: @return the last ms_trace_next result; counts in *events. */
static int read_all(const char *path, size_t *events, ms_trace_info *info)
{
    ms_trace *tr;
    *events = 0;
    if (info)
        *info = (ms_trace_info){0};
    int rc = ms_trace_open(path, &tr);
    if (rc < 0)
        return rc;
    ms_trace_item it;
    while ((rc = ms_trace_next(tr, &it)) == 1)
        if (it.kind == MS_TRACE_EVENT)
            (*events)++;
    if (info)
        *info = *ms_trace_get_info(tr);
    ms_trace_close(tr);
    return rc;
}

/* ------------------------------------------------------------ the run */

static ms_tracker *t;

/* The blocks the run leaves live, one list per thread: freed at teardown. */
static void *kept[2][101];

__attribute__((noinline)) static void *grow_and_free(void *arg)
{
    void **keep = arg;
    int n = 0;
    for (int i = 0; i < 300; i++) {
        char *p = malloc(32);
        TRACK(t, p);
        p = ms_realloc(t, p, 64 + (size_t)i);
        if (i % 3)
            MS_FREE(t, p);
        else
            keep[n++] = p;
    }
    return NULL;
}

/* A run with named blocks, stacks, reallocations, two threads and samples,
 * exported to dir/run.msb. */
static void record_run(void)
{
    t = ms_tracker_new();
    assert_non_null(t);
    ms_tracker_with_sampling(t, (ms_sampling_config){1.0, true, 16});
    ms_tracker_with_monitor_interval(t, 20);
    ms_tracker_with_system_monitoring(t);
    grow_and_free(kept[0]);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, grow_and_free, kept[1]), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    static const ms_site odd = {"we\"ird</script>", "char *", "x.c", 7, "f"};
    char *q = malloc(10);
    kept[0][100] = q; // after the 100 (300 / 3) the first thread kept
    ms_track_as(t, q, 10, &odd);
    usleep(120000); // a few samples
    ms_tracker_stop_system_monitoring(t);
}

static void trace_should_hold_every_event(void **state)
{
    (void)state;
    char path[4200];
    path_in(path, sizeof path, "run.msb");
    record_run();
    assert_int_equal(ms_export_binary(t, path), 0);
    // The same without compression (MEMSCOPE_TRACE_ZSTD=0): the other tests
    // damage and cut both.
    char plain[4200];
    path_in(plain, sizeof plain, "run-plain.msb");
    setenv("MEMSCOPE_TRACE_ZSTD", "0", 1);
    assert_int_equal(ms_export_binary(t, plain), 0);
    unsetenv("MEMSCOPE_TRACE_ZSTD");
    size_t zn = 0, pn = 0;
    free(slurp_file(path, &zn));
    free(slurp_file(plain, &pn));
    assert_true(zn < pn); // compression earns its place
    ms_memory_stats st = ms_tracker_stats(t);
    size_t n = 0;
    ms_memory_event *ev = ms_tracker_events(t, &n);
    assert_true(n > 600);

    ms_trace *tr;
    assert_int_equal(ms_trace_open(path, &tr), 0);
    const ms_trace_info *info = ms_trace_get_info(tr);
    assert_int_equal(info->version, 1);
    assert_int_equal(info->pid, (uint64_t)getpid());
    assert_string_equal(info->program, "test_trace");
    ms_trace_item it;
    size_t i = 0, samples = 0, with_stack = 0;
    int rc;
    while ((rc = ms_trace_next(tr, &it)) == 1) {
        if (it.kind == MS_TRACE_SAMPLE) {
            assert_true(it.sample.timestamp > 0);
            samples++;
            continue;
        }
        assert_true(i < n);
        assert_same_event(&ev[i++], &it.event);
        if (it.stack_id) {
            const char *const *frames;
            size_t depth = ms_trace_stack(tr, it.stack_id, &frames);
            assert_true(depth >= 2);
            // The frames are this process's stack, symbolized as reports print them.
            uintptr_t pcs[64];
            assert_int_equal(ms_stack_frames(it.stack_id, pcs, 64), depth);
            char want[1024];
            assert_int_equal(ms_symbolize(pcs[0], want, sizeof want), 0);
            assert_string_equal(frames[0], want);
            with_stack++;
        }
    }
    assert_int_equal(rc, 0);
    assert_int_equal(i, n);
    assert_true(with_stack >= 600); // every TRACK's (frees and moves carry none)
    assert_true(samples >= 2);
    info = ms_trace_get_info(tr);
    assert_true(info->complete);
    assert_false(info->truncated);
    assert_true(info->sampling.capture_call_stack);
    assert_int_equal(info->stats.total_allocations, st.total_allocations);
    assert_int_equal(info->stats.peak_memory, st.peak_memory);
    assert_int_equal(info->stats.active_allocations, st.active_allocations);
    ms_trace_close(tr);
    ms_events_free(ev);
}

static unsigned char *load(const char *path, size_t *n)
{
    char *d = slurp_file(path, n);
    assert_non_null(d);
    return (unsigned char *)d;
}

/* The events an EVENTS block holds (its first varint), compressed or not. */
static size_t events_in(const unsigned char *file, const block_at *b)
{
    const unsigned char *p = file + b->at + 5;
    unsigned char *raw = NULL;
    if (b->kind == 10) { // ZSTD: the inner kind, the raw length, the frame
        if (p[0] != 4)
            return 0;
        size_t rawlen = 0, k = 1;
        for (unsigned shift = 0;; shift += 7, k++) {
            rawlen |= (size_t)(p[k] & 0x7f) << shift;
            if (!(p[k] & 0x80))
                break;
        }
        k++;
        raw = malloc(rawlen);
        assert_non_null(raw);
        assert_int_equal(ZSTD_decompress(raw, rawlen, p + k, b->len - 9 - k), rawlen);
        p = raw;
    } else if (b->kind != 4) {
        return 0;
    }
    size_t ev = 0;
    for (unsigned shift = 0;; shift += 7, p++) {
        ev |= (size_t)(*p & 0x7f) << shift;
        if (!(*p & 0x80))
            break;
    }
    free(raw);
    return ev;
}

static void cut_at_every_block(const char *name)
{
    char path[4200], cut[4200];
    path_in(path, sizeof path, name);
    path_in(cut, sizeof cut, "cut.msb");
    size_t n = 0;
    unsigned char *file = load(path, &n);
    block_at blocks[4096];
    size_t nb = walk(file, n, blocks, 4096);
    assert_true(nb >= 5);
    assert_int_equal(blocks[nb - 1].kind, 7); // the trailer
    size_t total;
    assert_int_equal(read_all(path, &total, NULL), 0);
    // The events in whole blocks before each offset.
    size_t *before = calloc(nb + 1, sizeof *before);
    assert_non_null(before);
    for (size_t k = 0; k < nb; k++)
        before[k + 1] = before[k] + events_in(file, &blocks[k]);
    assert_int_equal(before[nb], total);
    uint64_t rng = 12345;
    for (size_t k = 0; k <= nb + 200; k++) {
        size_t len;
        if (k <= nb) {
            len = k < nb ? blocks[k].at : n; // at each boundary, and whole
        } else {
            rng = rng * 6364136223846793005u + 1442695040888963407u;
            len = (size_t)(rng >> 33) % n;
        }
        write_bytes(cut, file, len);
        size_t events;
        ms_trace_info info;
        int rc = read_all(cut, &events, &info);
        if (len < blocks[0].at) { // inside the header
            assert_int_equal(rc, MS_ECORRUPT);
            continue;
        }
        assert_int_equal(rc, 0);
        size_t whole = 0;
        while (whole < nb && blocks[whole].at + blocks[whole].len <= len)
            whole++;
        assert_int_equal(events, before[whole]);
        assert_int_equal(info.truncated, len < n);
        assert_int_equal(info.complete, len == n);
    }
    free(before);
    free(file);
}

static void truncated_traces_should_read_to_the_last_whole_block(void **state)
{
    (void)state;
    cut_at_every_block("run.msb");
    cut_at_every_block("run-plain.msb");
}

/* Flip bits in every block of the trace `name`; each kind seen is set. */
static void damage_every_block(const char *name, bool *seen)
{
    char path[4200], bad[4200];
    path_in(path, sizeof path, name);
    path_in(bad, sizeof bad, "bad.msb");
    size_t n = 0;
    unsigned char *file = load(path, &n);
    block_at blocks[4096];
    size_t nb = walk(file, n, blocks, 4096);
    for (size_t k = 0; k < nb; k++) {
        seen[blocks[k].kind] = true;
        // A flipped bit anywhere in the block: the checksum (or the length) catches it.
        for (size_t at = blocks[k].at; at < blocks[k].at + blocks[k].len;
             at += 1 + blocks[k].len / 7) {
            file[at] ^= 0x10;
            write_bytes(bad, file, n);
            file[at] ^= 0x10;
            size_t events;
            int rc = read_all(bad, &events, NULL);
            if (rc == 0) { // a bit in a length can make the file look cut short
                ms_trace_info info;
                read_all(bad, &events, &info);
                assert_true(info.truncated);
                continue;
            }
            assert_int_equal(rc, MS_ECORRUPT);
            assert_non_null(strstr(ms_last_error_message(), "offset"));
        }
    }
    free(file);
}

static void damaged_blocks_should_give_a_clear_error(void **state)
{
    (void)state;
    bool seen[256] = {false};
    damage_every_block("run.msb", seen);
    damage_every_block("run-plain.msb", seen);
    for (unsigned kind = 1; kind <= 8; kind++) // every kind of block was damaged once
        assert_true(seen[kind]);
    assert_true(seen[10]); // and a compressed one
    char path[4200], bad[4200];
    path_in(path, sizeof path, "run-plain.msb");
    path_in(bad, sizeof bad, "bad.msb");
    size_t n = 0;
    unsigned char *file = load(path, &n);
    block_at blocks[4096];
    walk(file, n, blocks, 4096);

    // An unknown kind and an impossible length, with a valid checksum.
    unsigned char *copy = malloc(n);
    assert_non_null(copy);
    memcpy(copy, file, n);
    size_t at = blocks[1].at;
    copy[at] = 42;
    put_le32(copy + blocks[1].at + blocks[1].len - 4,
             (uint32_t)crc32(0, copy + at, (uInt)(blocks[1].len - 4)));
    write_bytes(bad, copy, n);
    size_t events;
    assert_int_equal(read_all(bad, &events, NULL), MS_ECORRUPT);
    assert_non_null(strstr(ms_last_error_message(), "unknown kind"));
    memcpy(copy, file, n);
    put_le32(copy + at + 1, 0x7fffffffu);
    write_bytes(bad, copy, n);
    assert_int_equal(read_all(bad, &events, NULL), MS_ECORRUPT);
    assert_non_null(strstr(ms_last_error_message(), "length"));

    // A newer format version: its own clear error.
    memcpy(copy, file, n);
    copy[8] = 2;
    size_t hl = le32(copy + 12);
    put_le32(copy + hl - 4, (uint32_t)crc32(0, copy, (uInt)(hl - 4)));
    write_bytes(bad, copy, n);
    assert_int_equal(read_all(bad, &events, NULL), MS_ENOTSUP);
    assert_non_null(strstr(ms_last_error_message(), "version 2"));

    // Not a trace at all, and no file.
    write_bytes(bad, "{\"format\": \"memscope\"}", 22);
    assert_int_equal(read_all(bad, &events, NULL), MS_ECORRUPT);
    path_in(bad, sizeof bad, "missing.msb");
    assert_int_equal(read_all(bad, &events, NULL), MS_EIO);
    ms_trace *tr = NULL;
    assert_int_equal(ms_trace_open(NULL, &tr), MS_EINVAL);
    assert_null(tr);
    free(copy);
    free(file);
}

static void export_errors_should_be_clear(void **state)
{
    (void)state;
    assert_int_equal(ms_export_binary(NULL, "/tmp/x.msb"), MS_ENULLTRACKER);
    assert_int_equal(ms_export_binary(t, ""), MS_EINVAL);
    assert_int_equal(ms_export_binary(t, "/proc/memscope-test/x.msb"), MS_EIO);
    // The auto-export of a .msb path writes a trace.
    char path[4200];
    path_in(path, sizeof path, "auto.msb");
    ms_tracker *a = ms_tracker_new();
    assert_ptr_equal(ms_tracker_with_auto_export(a, path), a);
    int *x = malloc(sizeof *x);
    TRACK(a, x);
    ms_tracker_free(a);
    size_t events;
    ms_trace_info info;
    assert_int_equal(read_all(path, &events, &info), 0);
    assert_int_equal(events, 1);
    assert_true(info.complete);
    free(x);
}

/* ------------------------------------------------ crafted, valid CRCs */

typedef struct bytes {
    unsigned char d[4096];
    size_t n;
} bytes;

static void put(bytes *b, const void *p, size_t n)
{
    assert_true(b->n + n <= sizeof b->d);
    memcpy(b->d + b->n, p, n);
    b->n += n;
}
static void put_var(bytes *b, uint64_t v)
{
    do {
        unsigned char c = (unsigned char)(v & 0x7f);
        v >>= 7;
        if (v)
            c |= 0x80;
        put(b, &c, 1);
    } while (v);
}
/* Append block (kind, payload) with its checksum. */
static void put_block(bytes *f, unsigned kind, const bytes *payload)
{
    size_t at = f->n;
    unsigned char head[5] = {(unsigned char)kind};
    put_le32(head + 1, (uint32_t)payload->n);
    put(f, head, 5);
    put(f, payload->d, payload->n);
    unsigned char crc[4];
    put_le32(crc, (uint32_t)crc32(0, f->d + at, (uInt)(f->n - at)));
    put(f, crc, 4);
}

/* The real header and CONFIG block of run.msb, then `blocks`: read it all.
 * @return the last ms_trace_next result (or ms_trace_open's). */
static int read_crafted(const bytes *blocks, bool with_config)
{
    char path[4200], out[4200];
    path_in(path, sizeof path, "run.msb");
    path_in(out, sizeof out, "crafted.msb");
    size_t n = 0;
    unsigned char *file = load(path, &n);
    block_at first = {0, 0, 0};
    walk(file, n, &first, 1);
    assert_int_equal(first.kind, 6); // CONFIG comes first
    static bytes f;
    f.n = 0;
    put(&f, file, with_config ? first.at + first.len : first.at);
    put(&f, blocks->d, blocks->n);
    free(file);
    write_bytes(out, f.d, f.n);
    ms_trace *tr;
    int rc = ms_trace_open(out, &tr);
    if (rc < 0)
        return rc;
    ms_trace_item it;
    while ((rc = ms_trace_next(tr, &it)) == 1) {
    }
    if (rc < 0) // an error stays: never a clean end after it
        assert_int_equal(ms_trace_next(tr, &it), rc);
    ms_trace_close(tr);
    return rc;
}

/* One events block of one allocation: head, tick, thread, address, size, and
 * the site or stack fields the head names. */
static void one_event(bytes *blocks, unsigned head, uint64_t size, uint64_t id)
{
    bytes ev = {.n = 0};
    put_var(&ev, 1);
    unsigned char h = (unsigned char)head;
    put(&ev, &h, 1);
    put_var(&ev, 2);      // tick delta
    put_var(&ev, 42);     // thread
    put_var(&ev, 0x2000); // address delta (zigzag)
    put_var(&ev, size);
    if (head & 0x18)
        put_var(&ev, id);
    put_block(blocks, 4, &ev);
}

static void crafted_blocks_should_be_refused_by_name(void **state)
{
    (void)state;
    static const struct {
        unsigned head;
        uint64_t size, id;
        const char *why;
    } cases[] = {
        {0x04 | 0x08, 16, 5, "site that is not there"},
        {0x04 | 0x10, 16, 77, "stack that is not there"},
        {0x04, UINT64_C(1) << 60, 0, "impossible size"},
        {0x04 | 0x80, 16, 0, "unknown kind"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes blocks = {.n = 0};
        one_event(&blocks, cases[i].head, cases[i].size, cases[i].id);
        assert_int_equal(read_crafted(&blocks, true), MS_ECORRUPT);
        if (!strstr(ms_last_error_message(), cases[i].why))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, ms_last_error_message(),
                     cases[i].why);
    }
    // A well-formed event is read: the crafting itself is right.
    bytes blocks = {.n = 0};
    one_event(&blocks, 0x04, 16, 0);
    assert_int_equal(read_crafted(&blocks, true), 0);
    // Events before the configuration.
    assert_int_equal(read_crafted(&blocks, false), MS_ECORRUPT);
    assert_non_null(strstr(ms_last_error_message(), "before the configuration"));
    // More events than the block could hold.
    bytes ev = {.n = 0}, b2 = {.n = 0};
    put_var(&ev, 60000);
    put(&ev, "\x04\x02", 2);
    put_block(&b2, 4, &ev);
    assert_int_equal(read_crafted(&b2, true), MS_ECORRUPT);
    assert_non_null(strstr(ms_last_error_message(), "more events"));
    // A trailer whose totals disagree with the blocks.
    bytes tl = {.n = 0}, b3 = {.n = 0};
    one_event(&b3, 0x04, 16, 0);
    for (int k = 0; k < 7; k++)
        put_var(&tl, k == 0 ? 5 : 0); // 5 records claimed, 1 written
    put(&tl, "MSBEND\0\0", 8);
    put_block(&b3, 7, &tl);
    assert_int_equal(read_crafted(&b3, true), MS_ECORRUPT);
    assert_non_null(strstr(ms_last_error_message(), "disagree"));

    // LOST: a count of at least one, and nothing after it.
    bytes lost = {.n = 0}, b4 = {.n = 0};
    put_var(&lost, 0);
    put_block(&b4, 9, &lost);
    assert_int_equal(read_crafted(&b4, true), MS_ECORRUPT);
    assert_non_null(strstr(ms_last_error_message(), "lost-events"));
    lost.n = 0;
    b4.n = 0;
    put_var(&lost, 3);
    put_block(&b4, 9, &lost);
    assert_int_equal(read_crafted(&b4, true), 0);

    // ZSTD: a well-formed one wrapping an events block is read; an inner
    // kind it cannot hold, a length past 64 times the frame, a frame that
    // does not say its size or does not decompress, are refused by name.
    bytes raw = {.n = 0}, plain = {.n = 0};
    one_event(&plain, 0x04, 16, 0);
    put(&raw, plain.d + 5, plain.n - 9); // the events block's payload
    unsigned char frame[256];
    size_t fl = ZSTD_compress(frame, sizeof frame, raw.d, raw.n, 1);
    assert_false(ZSTD_isError(fl));
    static const struct {
        unsigned inner;
        uint64_t raw;
        int cut; /* bytes cut off the frame's end */
        bool nosize;
        const char *why;
    } zc[] = {
        {4, 0, 0, false, NULL},
        {10, 0, 0, false, "impossible kind"},
        {7, 0, 0, false, "impossible kind"},
        {4, 100000, 0, false, "impossible length"},
        {4, 0, 3, false, "not one whole frame"},
        {4, 0, 0, true, "does not say its length"},
    };
    for (size_t i = 0; i < sizeof zc / sizeof zc[0]; i++) {
        bytes z = {.n = 0}, b5 = {.n = 0};
        unsigned char k = (unsigned char)zc[i].inner;
        put(&z, &k, 1);
        put_var(&z, zc[i].raw ? zc[i].raw : raw.n);
        if (zc[i].nosize) { // a frame without its content size
            ZSTD_CCtx *cc = ZSTD_createCCtx();
            ZSTD_CCtx_setParameter(cc, ZSTD_c_contentSizeFlag, 0);
            unsigned char f2[256];
            size_t n2 = ZSTD_compress2(cc, f2, sizeof f2, raw.d, raw.n);
            assert_false(ZSTD_isError(n2));
            put(&z, f2, n2);
            ZSTD_freeCCtx(cc);
        } else {
            put(&z, frame, fl - (size_t)zc[i].cut);
        }
        put_block(&b5, 10, &z);
        int rc = read_crafted(&b5, true);
        if (!zc[i].why) {
            assert_int_equal(rc, 0);
            continue;
        }
        assert_int_equal(rc, MS_ECORRUPT);
        if (!strstr(ms_last_error_message(), zc[i].why))
            fail_msg("zstd case %zu: \"%s\" does not say \"%s\"", i, ms_last_error_message(),
                     zc[i].why);
    }
}

/* Over 65 536 events (several events blocks) from 100 sites (tables that
 * grow): a site read early stays valid to the end. */
static void sites_should_outlive_later_blocks(void **state)
{
    (void)state;
    char path[4200];
    path_in(path, sizeof path, "many.msb");
    ms_tracker *m = ms_tracker_new();
    static ms_site sites[100];
    static char names[100][16];
    for (int i = 0; i < 100; i++) {
        snprintf(names[i], sizeof names[i], "v%d", i);
        sites[i] = (ms_site){names[i], "char *", "many.c", (unsigned)i, "f"};
    }
    char *p = malloc(8);
    assert_non_null(p);
    for (int i = 0; i < 40000; i++) {
        ms_track_as(m, p, 8, &sites[(i * 7) % 100]);
        ms_untrack(m, p);
    }
    assert_int_equal(ms_export_binary(m, path), 0);
    ms_trace *tr;
    assert_int_equal(ms_trace_open(path, &tr), 0);
    const ms_site *early[100] = {0};
    ms_trace_item it;
    size_t n = 0;
    while (ms_trace_next(tr, &it) == 1) {
        if (it.event.site && !early[it.event.site->line])
            early[it.event.site->line] = it.event.site;
        n++;
    }
    assert_int_equal(n, 80000);
    for (int i = 0; i < 100; i++) {
        assert_non_null(early[i]);
        assert_string_equal(early[i]->name, names[i]); // still there: not moved or freed
    }
    ms_trace_close(tr);
    free(p);
    ms_tracker_free(m);
}

static int setup(void **state)
{
    (void)state;
    make_temp_dir(dir, sizeof dir);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < 101; i++)
            free(kept[k][i]);
    ms_tracker_free(t);
    remove_tree(dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(trace_should_hold_every_event),
        cmocka_unit_test(truncated_traces_should_read_to_the_last_whole_block),
        cmocka_unit_test(damaged_blocks_should_give_a_clear_error),
        cmocka_unit_test(export_errors_should_be_clear),
        cmocka_unit_test(crafted_blocks_should_be_refused_by_name),
        cmocka_unit_test(sites_should_outlive_later_blocks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
