/* error.h — the thread-local last error and the macros that set it. */
#ifndef MS_COMMON_ERROR_H
#define MS_COMMON_ERROR_H

#include <memscope.h>

/* Sets the calling thread's last error; `fmt` may be NULL (no detail).
 * @return code, so `return ms__fail(...)` reads naturally. */
int ms__fail(int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Cheap variant for the recording path: no formatting, no system call. */
void ms__fail_fast(int code);

#define MS_RETURN_IF(cond, code, ...)                                                              \
    do {                                                                                           \
        if (cond)                                                                                  \
            return ms__fail((code), __VA_ARGS__);                                                  \
    } while (0)

#define MS_TRY(call)                                                                               \
    do {                                                                                           \
        int ms__rc_ = (call);                                                                      \
        if (ms__rc_ < 0)                                                                           \
            return ms__rc_;                                                                        \
    } while (0)

#endif
