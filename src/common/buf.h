/* buf.h — one growable byte buffer that exporters write through. */
#ifndef MS_COMMON_BUF_H
#define MS_COMMON_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct ms__buf {
    char *data;
    size_t len, cap;
    bool failed; /* an allocation failed: the content is incomplete */
} ms__buf;

void ms__buf_init(ms__buf *b);
void ms__buf_free(ms__buf *b);
void ms__buf_put(ms__buf *b, const void *p, size_t n);
/* Room for n more bytes at data + len (the caller writes them and adds to
 * len), or NULL (failed set) when it cannot be had. */
char *ms__buf_reserve(ms__buf *b, size_t n);
void ms__buf_puts(ms__buf *b, const char *s);
void ms__buf_u64(ms__buf *b, unsigned long long v); /* fast decimal */

#endif
