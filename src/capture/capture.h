/* capture.h — malloc capture: the state the hooks (hooks.c) read on every
 * call, and what capture.c does once (start-up, configuration from the
 * environment, fork, fatal signals). docs/capture.md has the design. */
#ifndef MS_CAPTURE_CAPTURE_H
#define MS_CAPTURE_CAPTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/atomic.h"
#include "tracker/tracker.h"

/* The mode: what the hooks do. It is the MS__HOOK_MODE bits of
 * ms__hook_state (tracker/tracker.h), beside the global tracker's sampling. */
enum {
    MS__CAP_INIT = 0,  /* not started yet: the first call starts capture */
    MS__CAP_OFF = 1,   /* forward only (MEMSCOPE_CAPTURE=0, or a child that is not traced) */
    MS__CAP_ON = 2,    /* forward and record into ms__cap_tracker */
    MS__CAP_CRASH = 3, /* a fatal signal is being handled: the reporting thread allocates
                          from a private arena, the others record as usual */
    MS__CAP_ARENA = 4  /* returned to the thread that reports the crash */
};

static inline unsigned ms__cap_mode(void)
{
    return ms_atomic_load_relaxed(&ms__hook_state) & MS__HOOK_MODE;
}

extern ms_tracker *ms__cap_tracker;

/* Start capture (first hook call) or tell the crash-reporting thread apart.
 * @return MS__CAP_OFF, MS__CAP_ON or MS__CAP_ARENA for the calling thread. */
unsigned ms__cap_slow_state(void);

static inline unsigned ms__cap_state(void)
{
    unsigned m = ms__cap_mode();
    if (ms_likely(m == MS__CAP_ON || m == MS__CAP_OFF))
        return m;
    return ms__cap_slow_state();
}

/* The crash arena: a bump allocator over fresh pages, used only by the thread
 * that writes the report after a fatal signal (glibc's heap may be corrupt or
 * locked by then). Nothing is ever given back. */
void *ms__arena_alloc(size_t n, size_t align);
bool ms__arena_owns(const void *p);
size_t ms__arena_size(const void *p);

#endif
