/* trace.h — the binary trace format (docs/binary-format.md): constants and the
 * byte-level helpers the writer (write.c) and the reader (read.c) share.
 * Little-endian throughout; integers are LEB128 varints unless fixed. */
#ifndef MS_TRACE_TRACE_H
#define MS_TRACE_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <memscope.h>

#include "common/buf.h"
#include "common/cursor.h" /* a block's payload is read through an ms__cursor */

#define MS__TRACE_MAGIC "\x89MSB\r\n\x1a\n" /* 8 bytes, as PNG's: catches text-mode copies */
#define MS__TRACE_VERSION 1u
#define MS__TRACE_MAX_BLOCK (16u << 20) /* a longer block is corrupt */
#define MS__TRACE_BLOCK_EVENTS 65536u   /* events per EVENTS block, at most */
#define MS__TRACE_END_MAGIC "MSBEND\0\0"
#define MS__TRACE_SIZE_LIMIT (UINT64_C(1) << 48) /* sizes the store can hold are below */

/* Block kinds. */
enum {
    MS__TB_STRINGS = 1, /* new strings, ids counting on from the last */
    MS__TB_SITES = 2,   /* new TRACK sites: five fields as string ids and a line */
    MS__TB_STACKS = 3,  /* new stacks: id, depth, a string id a frame */
    MS__TB_EVENTS = 4,  /* events, delta-encoded */
    MS__TB_SAMPLES = 5, /* system monitor samples */
    MS__TB_CONFIG = 6,  /* the sampling configuration */
    MS__TB_TRAILER = 7, /* totals; the last block of a complete trace */
    MS__TB_SYMBOLS = 8, /* new code addresses, symbolized: what stacks are made of */
    MS__TB_LOST = 9,    /* streaming: records the writer could not keep, here in the order */
    MS__TB_ZSTD = 10,   /* another block's payload, compressed with zstd (zblock.c) */
    MS__TB_KINDS = 11
};

/* zstd on whole blocks (zblock.c). The default level, and the most a
 * compressed block may expand (a reader's memory stays in proportion to the
 * file: a writer keeps a block plain rather than pass it). */
#define MS__TRACE_ZSTD_DEFAULT 1
#define MS__TRACE_ZSTD_RATIO 64u
typedef struct ms__zctx {
    void *cctx, *dctx; /* ZSTD_CCtx, ZSTD_DCtx, made on first use */
    void *buf;         /* the (de)compressed payload */
    size_t cap;
} ms__zctx;
/* The level writers use: MEMSCOPE_TRACE_ZSTD (0 = none, -7 .. 19), else the default. */
int ms__trace_zstd_level(void);
/* Copy the whole blocks in[0 .. len) to out, each large table, events or
 * samples block as a ZSTD block when that is smaller. @return 0 or MS_ENOMEM. */
int ms__trace_compress_blocks(ms__zctx *z, int level, const uint8_t *in, size_t len, ms__buf *out);
void ms__zctx_free(ms__zctx *z);

/* The header's flags byte. */
#define MS__TH_CAPTURED 0x01u /* the tracker was the one malloc capture records into */
#define MS__TH_STREAMED 0x02u /* written by the streaming writer, as the run went */
#define MS__TH_KNOWN 0x03u

/* The header's fixed part (docs/binary-format.md); the program name and a
 * CRC follow. */
#define MS__TRACE_HEADER_FIXED 76u

/* The head byte of an event record. */
#define MS__TE_TYPE 0x03u     /* ms_event_type, or 3: TRACK naming a captured block */
#define MS__TE_THREAD 0x04u   /* a thread id follows: not the previous record's */
#define MS__TE_SITE 0x08u     /* a site id follows */
#define MS__TE_STACK 0x10u    /* a stack id follows */
#define MS__TE_CAPTURED 0x20u /* recorded by the malloc hooks */
#define MS__TE_FLAGS 0x40u    /* a flags byte follows */
#define MS__TE_KNOWN 0x7fu    /* bits a version-1 reader knows */
/* The flags byte. */
#define MS__TF_SOFT 0x01u /* UNTRACK under capture (capture's free closes the block) */
#define MS__TF_MOVE 0x02u /* one of the two records of a moving realloc */
#define MS__TF_KNOWN 0x03u

static inline void ms__put_u8(ms__buf *b, uint8_t v) { ms__buf_put(b, &v, 1); }
static inline void ms__put_le32(ms__buf *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    ms__buf_put(b, x, 4);
}
static inline void ms__put_le64(ms__buf *b, uint64_t v)
{
    ms__put_le32(b, (uint32_t)v);
    ms__put_le32(b, (uint32_t)(v >> 32));
}
/* v as a varint at p (room for 10 bytes). @return the byte after it. */
static inline uint8_t *ms__varint_to(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}
static inline void ms__put_varint(ms__buf *b, uint64_t v)
{
    uint8_t x[10];
    ms__buf_put(b, x, (size_t)(ms__varint_to(x, v) - x));
}
static inline uint64_t ms__zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }
static inline int64_t ms__unzigzag(uint64_t v) { return (int64_t)(v >> 1) ^ -(int64_t)(v & 1); }
static inline void ms__put_double(ms__buf *b, double d)
{
    uint64_t v;
    memcpy(&v, &d, sizeof v);
    ms__put_le64(b, v);
}

static inline uint32_t ms__le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t ms__le64(const uint8_t *p)
{
    return (uint64_t)ms__le32(p) | (uint64_t)ms__le32(p + 4) << 32;
}

static inline double ms__get_double(ms__cursor *c)
{
    if (c->end - c->p < 8) {
        c->bad = true;
        c->p = c->end;
        return 0.0;
    }
    uint64_t v = ms__le64(c->p);
    c->p += 8;
    double d;
    memcpy(&d, &v, sizeof d);
    return d;
}

/* The encoder both writers share (write.c): the header, blocks and their
 * tables into an output buffer the caller empties (len = 0) as it likes. */
struct ms__rec;
struct ms__tids;
struct ms_tracker;
typedef struct ms__tw ms__tw;
ms__tw *ms__tw_new(const struct ms__tids *tids);
void ms__tw_free(ms__tw *w);
void ms__tw_header(ms__tw *w, struct ms_tracker *t, uint8_t flags /* MS__TH_STREAMED */);
void ms__tw_config(ms__tw *w, ms_sampling_config cfg, bool is_estimate);
/* One record, its tables' new entries first; a full EVENTS block goes out. */
void ms__tw_event(ms__tw *w, const struct ms__rec *r);
void ms__tw_flush(ms__tw *w); /* the pending tables and events as blocks */
void ms__tw_lost(ms__tw *w, uint64_t n);
void ms__tw_samples(ms__tw *w, const ms_system_snapshot *x, size_t n);
void ms__tw_trailer(ms__tw *w, uint64_t duration_ns, uint64_t samples_overwritten,
                    const ms_memory_stats *stats);
ms__buf *ms__tw_out(ms__tw *w);
uint64_t ms__tw_records(const ms__tw *w); /* event records given so far */
uint64_t ms__tw_pending(const ms__tw *w); /* of those, not yet in a block */
uint64_t ms__tw_lost_written(const ms__tw *w);
bool ms__tw_failed(const ms__tw *w); /* anything failed (sticky) */
/* @return 0, or MS_ENOMEM / MS_ERANGE (error set) if anything failed. */
int ms__tw_status(const ms__tw *w);

/* A ZSTD block's payload at c: checked and decompressed; c then reads the
 * inner payload and *kind is its kind. @return "" on success, NULL out of
 * memory, else why the block is corrupt. */
const char *ms__trace_unwrap(ms__zctx *z, struct ms__cursor *c, unsigned *kind);

struct ms_trace;
/* ms_trace_open on an open stream (the fuzzer reads from memory), which the
 * trace then owns (closed on failure too); `path` names it in messages. */
int ms__trace_open_stream(FILE *f, const char *path, struct ms_trace **out);

/* A record as a replay needs it: an event record (names of captured blocks
 * included) or a system sample. */
typedef struct ms__trace_rec {
    bool sample;
    ms_system_snapshot snap;
    uint64_t tick, tid;
    unsigned type; /* ms_event_type, or 3 (MS__REC_NAME) */
    uint8_t flags; /* MS__TF_* */
    bool captured;
    uintptr_t ptr, old_ptr;
    uint64_t size, old_size;
    const ms_site *site;
    uint32_t stack;
} ms__trace_rec;

struct ms__symbol;
struct ms__timebase;
/* The next record, in order. @return 1, 0 at the end, or MS_E... */
int ms__trace_next_rec(struct ms_trace *tr, ms__trace_rec *out);
/* The symbol numbers of stack `id` (ms__trace_symbol). @return its depth. */
size_t ms__trace_stack_syms(const struct ms_trace *tr, uint32_t id, const uint32_t **syms);
/* Symbol n (1 ..), with `shown` its original address. */
bool ms__trace_symbol(const struct ms_trace *tr, uint32_t n, struct ms__symbol *out);
uint64_t ms__trace_series_width(const struct ms_trace *tr);
bool ms__trace_captured(const struct ms_trace *tr);
const struct ms__timebase *ms__trace_timebase(const struct ms_trace *tr);

/* CRC-32 (zlib's, the IEEE polynomial) of a block's kind, length and payload. */
uint32_t ms__trace_crc(const void *data, size_t len);
/* Append one block: kind, length, `prefix` then `payload` as its payload, and
 * the checksum. @return false if out failed (an allocation). */
bool ms__trace_put_block(ms__buf *out, unsigned kind, const void *prefix, size_t plen,
                         const void *payload, size_t len);

#endif
