/* cursor.h — a bounded reader over bytes in memory: a read past the end sets
 * `bad` and returns 0, so decoding corrupt or unexpected input cannot run off
 * it. Little-endian fixed-width integers and LEB128 varints. The binary
 * trace's reader (trace/) and the call-frame reader (stack/cfi.c) share it.
 * Depends on nothing. */
#ifndef MS_COMMON_CURSOR_H
#define MS_COMMON_CURSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ms__cursor {
    const uint8_t *p, *end;
    bool bad;
} ms__cursor;

/* A LEB128 number, sign-extended from its last byte when `is_signed`. */
static inline uint64_t ms__get_leb128(ms__cursor *c, bool is_signed)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (c->p >= c->end) {
            c->bad = true;
            return 0;
        }
        uint8_t byte = *c->p++;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            if (is_signed && shift + 7 < 64 && (byte & 0x40))
                v |= ~(uint64_t)0 << (shift + 7);
            return v;
        }
    }
    c->bad = true; // more than 10 bytes
    return 0;
}
static inline uint64_t ms__get_varint(ms__cursor *c) { return ms__get_leb128(c, false); }
static inline int64_t ms__get_svarint(ms__cursor *c) { return (int64_t)ms__get_leb128(c, true); }

static inline uint8_t ms__get_u8(ms__cursor *c)
{
    if (c->p >= c->end) {
        c->bad = true;
        return 0;
    }
    return *c->p++;
}

/* An n-byte little-endian integer (n <= 8). */
static inline uint64_t ms__get_le(ms__cursor *c, size_t n)
{
    if ((size_t)(c->end - c->p) < n) {
        c->bad = true;
        c->p = c->end;
        return 0;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v |= (uint64_t)c->p[i] << (8 * i);
    c->p += n;
    return v;
}

#endif
