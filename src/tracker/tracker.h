/* tracker.h — the tracker object and what the exporters need from it. */
#ifndef MS_TRACKER_TRACKER_H
#define MS_TRACKER_TRACKER_H

#include <memscope.h>

#include "analyze/analyze.h"
#include "monitor/monitor.h"
#include "stack/stack.h"
#include "store/store.h"

struct ms_tracker {
    ms_event_store *store;
    /* The configuration is atomics, not a lock, so that no lock of ours can
     * be held across fork(). Each is written by the builders, read relaxed. */
    _Atomic bool sampling_on; /* off: every TRACK is recorded */
    /* Under capture: the store's sampled filter holds blocks recorded before
     * sampling was switched on, whose frees must be recorded (capture/hooks.c;
     * the blocks sampled since carry a header). Beside sampling_on: free()
     * reads both. */
    _Atomic bool filter_used;
    _Atomic double log1m_rate;  /* ln(1 - rate): the gaps between sampled TRACKs */
    _Atomic double sample_rate; /* for reports */
    _Atomic bool capture_call_stack;
    _Atomic size_t max_stack_depth;
    _Atomic(char *) auto_export; /* taken with an exchange when written */
    /* The kernel tid of the thread in ms__tracker_auto_export (0: none), and
     * whether a thread that ends the process waits for that export to end. */
    _Atomic long exporter;
    _Atomic bool end_waits;
    uint64_t start_ns, start_mono_ns;
    bool is_global;
    _Atomic bool captured; /* the global tracker under malloc capture: TRACK names blocks */
    _Atomic(struct ms__stream *) stream; /* ms_tracker_with_streaming's writer (trace/stream.c) */
    /* A tracker rebuilt from a trace (ms_tracker_from_trace): the trace it
     * holds (its sites and timebase live there), the traced process, and how
     * long its tracker had run. NULL / 0 otherwise. */
    struct ms_trace *trace;
    uint64_t replay_pid, replay_duration_ns;
    char replay_program[256];
    uint32_t *replay_local,
        *replay_stack; /* open addressing: this process's stack id -> the trace's */
    size_t replay_stacks_cap;
    /* The system monitor's samples for this tracker, written by its thread:
     * not on the line of the configuration the recording path reads. */
    alignas(MS_CACHE_LINE) ms__mon mon;
};

/* The stack id the exports show for `id`: the traced process's for a tracker
 * rebuilt from a trace, else id itself. */
uint32_t ms__tracker_public_stack(const ms_tracker *t, uint32_t id);

/* The word the malloc hooks read first (capture/hooks.c), so that one load
 * tells forwarding, recording and sampling apart: capture's mode in
 * MS__HOOK_MODE (capture/capture.h; 0 until capture starts), and the global
 * tracker's sampling_on (MS__GS_SAMPLING) and filter_used (MS__GS_FILTER),
 * written just after them. Each side changes only its own bits, with a
 * compare-and-swap (ms__hook_set). */
#define MS__HOOK_MODE 7u
#define MS__GS_SAMPLING 8u
#define MS__GS_FILTER 16u
/* Set, for good, once capture made a sampled block (a header below the
 * pointer, capture/hooks.c): until then no free looks for one. */
#define MS__HS_HEADERS 32u
extern _Atomic unsigned ms__hook_state;
/* Replace the bits `mask` of ms__hook_state by `bits` (release). */
void ms__hook_set(unsigned mask, unsigned bits);

/* Set by capture when it records into the global tracker (ms_capture_active). */
extern _Atomic bool ms__capture_on;

/* Sampling: @return true when this allocation (or TRACK) is sampled out. A
 * skipped call costs one countdown step. */
bool ms__tracker_sample_slow(ms_tracker *t, ms__tbuf *b);
static inline bool ms__tracker_skip(ms_tracker *t, ms__tbuf *b)
{
    if (ms_likely(!ms_atomic_load_relaxed(&t->sampling_on)))
        return false;
    uint64_t left = ms_atomic_load_relaxed(&b->skips_left);
    if (ms_likely(left > 0)) {
        ms_atomic_store_relaxed(&b->skips_left, left - 1);
        return true;
    }
    return ms__tracker_sample_slow(t, b);
}

/* The slow paths of ms__tracker_stack: the whole stack, walked and interned;
 * the one-frame stack of the caller, interned and remembered in b: `ret`, or
 * where the program called the allocator wrapper `ret` returns into. */
uint32_t ms__tracker_stack_walk(ms_tracker *t, ms__tbuf *b, const void *fp, uintptr_t ret);
uint32_t ms__tracker_caller_stack(ms__tbuf *b, const void *fp, uintptr_t ret);

/* The stack id for a record made by a call whose frame is `fp` and return
 * address `ret`, as the tracker's config asks: the whole stack (up to
 * max_stack_depth) when capture_call_stack is set, else only the caller when
 * `caller_only` (`ret`, or where the program called the allocator wrapper
 * `ret` is into), else none (0). pre: b is the calling thread's buffer. */
static inline uint32_t ms__tracker_stack(ms_tracker *t, ms__tbuf *b, const void *fp, uintptr_t ret,
                                         bool caller_only)
{
    if (ms_unlikely(ms_atomic_load_relaxed(&t->capture_call_stack)))
        return ms__tracker_stack_walk(t, b, fp, ret);
    if (!caller_only || !ret)
        return 0;
    // Consecutive allocations mostly come from one call site: skip the hash.
    if (ms_likely(ret == b->caller_pc && b->caller_stack && b->caller_gen == ms__stack_wrap_gen()))
        return b->caller_stack;
    return ms__tracker_caller_stack(b, fp, ret);
}

ms_sampling_config ms__tracker_sampling(ms_tracker *t);
/* Analyse; when `keep` is not NULL, the snapshot used is handed to the caller,
 * and `stats` (optional) receives the exact figures of the same moment. */
ms_analysis_report *ms__tracker_analyze(ms_tracker *t, ms_memory_snapshot **keep,
                                        ms_memory_stats *stats);
/* Finish the stream (trailer), then write and forget the auto-export, if
 * either is set. While another thread does that, wait for it to be done
 * instead (up to 20 s, within on_fatal's alarm); from inside this thread's own, return. */
void ms__tracker_auto_export(ms_tracker *t);
/* The same on the way out of the process (a fatal signal, _exit), whose
 * caller ends it: a thread whose export this one waits for then never ends
 * the process itself (it pauses), so the process ends as the caller says. */
void ms__tracker_last_export(ms_tracker *t);
/* trace/stream.c: finish t's stream, if it has one (the writer stops, the
 * rest of the log and the trailer are written, the file closed); and, in a
 * child after fork(), forget its parent's. */
void ms__stream_finish(ms_tracker *t);
void ms__stream_forget(ms_tracker *t);
/* A fatal signal is being reported: a finish may give up rather than wait on
 * a lock of the thread that died (capture's handler calls it). */
void ms__stream_dying(void);

#endif
