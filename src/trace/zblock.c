/* zblock.c — zstd on whole blocks (docs/binary-format.md, block kind 10):
 * the writers hand their finished blocks through ms__trace_compress_blocks,
 * which wraps each large one whose compressed form is smaller; the reader
 * unwraps them with ms__trace_unwrap. libzstd is Debian's (libzstd-dev). */
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "trace/trace.h"

#define MIN_PAYLOAD 512u /* smaller blocks stay as they are */

static bool compressible(unsigned kind)
{
    return kind == MS__TB_EVENTS || kind == MS__TB_STRINGS || kind == MS__TB_SITES ||
           kind == MS__TB_STACKS || kind == MS__TB_SYMBOLS || kind == MS__TB_SAMPLES;
}

int ms__trace_zstd_level(void)
{
    const char *env = getenv("MEMSCOPE_TRACE_ZSTD"); // once an export, once a stream
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (!*end && v >= -7 && v <= 19)
            return (int)v;
    }
    return MS__TRACE_ZSTD_DEFAULT;
}

int ms__trace_compress_blocks(ms__zctx *z, int level, const uint8_t *in, size_t len, ms__buf *out)
{
    if (!z->cctx && !(z->cctx = ZSTD_createCCtx()))
        return ms__fail(MS_ENOMEM, "out of memory compressing the trace");
    size_t at = 0;
    while (at + 9 <= len) {
        unsigned kind = in[at];
        size_t plen = ms__le32(in + at + 1);
        const uint8_t *payload = in + at + 5;
        size_t whole = plen + 9;
        if (at + whole > len)
            break; // not a whole block: copied as it is below
        bool done = false;
        if (level != 0 && compressible(kind) && plen >= MIN_PAYLOAD) {
            size_t bound = ZSTD_compressBound(plen);
            if (bound > z->cap) {
                void *n = ms__realloc(z->buf, bound);
                if (!n)
                    return ms__fail(MS_ENOMEM, "out of memory compressing the trace");
                z->buf = n;
                z->cap = bound;
            }
            size_t c = ZSTD_compressCCtx(z->cctx, z->buf, z->cap, payload, plen, level);
            uint8_t prefix[11]; // the inner kind, the payload's length
            prefix[0] = (uint8_t)kind;
            size_t np = (size_t)(ms__varint_to(prefix + 1, plen) - prefix);
            if (!ZSTD_isError(c) && c + np < plen && plen <= MS__TRACE_ZSTD_RATIO * c) {
                ms__trace_put_block(out, MS__TB_ZSTD, prefix, np, z->buf, c);
                done = true;
            }
        }
        if (!done)
            ms__buf_put(out, in + at, whole);
        at += whole;
    }
    ms__buf_put(out, in + at, len - at);
    return out->failed ? ms__fail(MS_ENOMEM, "out of memory compressing the trace") : 0;
}

void ms__zctx_free(ms__zctx *z)
{
    ZSTD_freeCCtx(z->cctx);
    ZSTD_freeDCtx(z->dctx);
    ms__free(z->buf);
    *z = (ms__zctx){0};
}

const char *ms__trace_unwrap(ms__zctx *z, ms__cursor *c, unsigned *kind)
{
    unsigned inner = ms__get_u8(c);
    uint64_t raw = ms__get_varint(c);
    size_t flen = (size_t)(c->end - c->p);
    if (c->bad || inner == 0 || inner >= MS__TB_KINDS || inner == MS__TB_ZSTD ||
        !compressible(inner))
        return "a compressed block of an impossible kind";
    if (raw > MS__TRACE_MAX_BLOCK || raw > MS__TRACE_ZSTD_RATIO * flen)
        return "a compressed block of an impossible length";
    unsigned long long size = ZSTD_getFrameContentSize(c->p, flen);
    if (size != raw)
        return "a compressed block whose frame does not say its length";
    if (ZSTD_findFrameCompressedSize(c->p, flen) != flen)
        return "a compressed block that is not one whole frame";
    if (raw > z->cap) {
        void *n = ms__realloc(z->buf, raw);
        if (!n)
            return NULL; // the caller says out of memory
        z->buf = n;
        z->cap = raw;
    }
    if (!z->dctx && !(z->dctx = ZSTD_createDCtx()))
        return NULL;
    size_t got = ZSTD_decompressDCtx(z->dctx, z->buf, raw, c->p, flen);
    if (ZSTD_isError(got) || got != raw)
        return "a compressed block that does not decompress";
    *c = (ms__cursor){z->buf, (uint8_t *)z->buf + raw, false};
    *kind = inner;
    return "";
}
