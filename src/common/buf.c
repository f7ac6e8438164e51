/* buf.c — the growable buffer behind every exporter. */
#include "common/buf.h"

#include <string.h>

#include "common/alloc.h"

void ms__buf_init(ms__buf *b) { memset(b, 0, sizeof *b); }

void ms__buf_free(ms__buf *b)
{
    ms__free(b->data);
    ms__buf_init(b);
}

static bool reserve(ms__buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *d = ms__realloc(b->data, cap);
    if (!d) {
        b->failed = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void ms__buf_put(ms__buf *b, const void *p, size_t n)
{
    if (!reserve(b, n))
        return;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

char *ms__buf_reserve(ms__buf *b, size_t n) { return reserve(b, n) ? b->data + b->len : NULL; }

void ms__buf_puts(ms__buf *b, const char *s) { ms__buf_put(b, s, strlen(s)); }

void ms__buf_u64(ms__buf *b, unsigned long long v)
{
    char tmp[24];
    int i = (int)sizeof tmp;
    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    ms__buf_put(b, tmp + i, sizeof tmp - (size_t)i);
}
