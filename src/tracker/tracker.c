/* tracker.c — ms_tracker: the TRACK/UNTRACK recording path, sampling, the
 * global tracker and auto-export. Wires store, snapshot, analyze and export. */
#include "tracker/tracker.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "common/heap.h"
#include "common/pages.h"
#include "export/export.h"
#include "snapshot/snapshot.h"
#include "stack/stack.h"

_Atomic bool ms__capture_on;
_Atomic unsigned ms__hook_state;

void ms__hook_set(unsigned mask, unsigned bits)
{
    unsigned w = ms_atomic_load_relaxed(&ms__hook_state);
    while (!atomic_compare_exchange_weak_explicit(&ms__hook_state, &w, (w & ~mask) | bits,
                                                  memory_order_release, memory_order_relaxed)) {
    }
}

static unsigned sampling_bits(ms_tracker *t)
{
    return (ms_atomic_load_relaxed(&t->sampling_on) ? MS__GS_SAMPLING : 0) |
           (ms_atomic_load_relaxed(&t->filter_used) ? MS__GS_FILTER : 0);
}

/* ms__hook_state, after a change of t's sampling_on or filter_used. Two
 * threads configuring at once must not leave the older bits last: each reads
 * the fields again after its write, until the word agrees with them. */
static void mirror_sampling(ms_tracker *t)
{
    if (!t->is_global)
        return;
    unsigned bits = sampling_bits(t), mask = MS__GS_SAMPLING | MS__GS_FILTER;
    for (;;) {
        ms__hook_set(mask, bits);
        unsigned now = sampling_bits(t);
        if (now == bits)
            return;
        bits = now;
    }
}
static ms_tracker *global_tracker;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

/* ------------------------------------------------------------ sampling */

ms_sampling_config ms_sampling_demo(void) { return (ms_sampling_config){0.1, false, 5}; }
ms_sampling_config ms_sampling_full(void) { return (ms_sampling_config){1.0, true, 20}; }
ms_sampling_config ms_sampling_high_performance(void)
{
    return (ms_sampling_config){0.01, false, 0};
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += UINT64_C(0x9E3779B97F4A7C15));
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* Natural logarithm of x > 0 without libm: x = m * 2^e with m in [1, 2), and
 * ln m from the series of atanh ((m-1)/(m+1) <= 1/3: error below 1e-6). */
static double ln_approx(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & UINT64_C(0xFFFFFFFFFFFFF)) | UINT64_C(0x3FF0000000000000);
    double m;
    memcpy(&m, &bits, sizeof m);
    double u = (m - 1.0) / (m + 1.0), u2 = u * u;
    double ln_m = 2.0 * u * (1.0 + u2 * (1.0 / 3 + u2 * (1.0 / 5 + u2 * (1.0 / 7 + u2 / 9))));
    return ln_m + e * 0.69314718055994531;
}

/* Reseed the thread's generator from the tracker's seed and the thread's
 * registration order, so a seeded run draws the same sequence every time. */
MS_COLD static void reseed(ms_event_store *s, ms__tbuf *b, uint64_t gen)
{
    uint64_t st = ms_atomic_load_relaxed(&s->seed) ^ (b->order * UINT64_C(0xD1B54A32D192ED03));
    b->rng = splitmix64(&st) | 1; // xorshift needs a state that is not 0
    b->rng_gen = gen;
}

/* Draw the number of TRACKs to skip before the next sampled one. Skipping
 * each TRACK with probability 1 - rate, independently, makes that number
 * geometric: floor(ln U / ln(1 - rate)) for U uniform in (0, 1]. */
static void draw_gap(ms_tracker *t, ms__tbuf *b)
{
    double log1m = ms_atomic_load_relaxed(&t->log1m_rate);
    uint64_t x = b->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b->rng = x;
    double u = (double)((x >> 11) + 1) * 0x1.0p-53;             // (0, 1]
    double gap = log1m < 0.0 ? ln_approx(u) / log1m : 0x1.0p62; // rate 0: never
    uint64_t skips = gap < 0x1.0p62 ? (uint64_t)gap : UINT64_C(1) << 62;
    // skips_drawn first: a reader that sees the new skips_left (acquire) sees
    // the total that includes it.
    ms_atomic_store_relaxed(&b->skips_drawn, ms_atomic_load_relaxed(&b->skips_drawn) + skips);
    ms_atomic_store_release(&b->skips_left, skips);
}

/* The sampling slow path, when no skips are left. @return true to skip. */
MS_NOINLINE bool ms__tracker_sample_slow(ms_tracker *t, ms__tbuf *b)
{
    uint64_t gen = ms_atomic_load_relaxed(&t->store->seed_gen);
    if (b->rng_gen != gen) { // first draw on this thread, or a new seed
        reseed(t->store, b, gen);
        draw_gap(t, b);
        uint64_t left = ms_atomic_load_relaxed(&b->skips_left);
        if (left > 0) {
            ms_atomic_store_relaxed(&b->skips_left, left - 1);
            return true;
        }
    }
    draw_gap(t, b); // this TRACK is sampled; the next gap starts after it
    return false;
}

#define skip_by_sampling ms__tracker_skip

uint32_t ms__tracker_stack_walk(ms_tracker *t, ms__tbuf *b, const void *fp, uintptr_t ret)
{
    return ms__stack_take(b, fp, ret, ms_atomic_load_relaxed(&t->max_stack_depth));
}

/* The caller cache pair (*pc, *stack) of b: `pc`'s one-frame stack. */
static uint32_t cached_caller(ms__tbuf *b, uintptr_t *cpc, uint32_t *cstack, uintptr_t pc)
{
    if (b->stack_busy) // a signal handler, while this thread's call updates the caches
        return ms__stack_intern(b, &pc, 1); // which leaves them be too
    if (*cpc == pc && *cstack)
        return *cstack;
    b->stack_busy = 1;
    ms_compiler_barrier();
    // The pair changes through (pc, 0), which ms__tracker_stack's shortcut
    // never takes: a handler that reads it meanwhile interns its own.
    *cstack = 0;
    ms_compiler_barrier();
    uint32_t id = ms__stack_intern_held(b, &pc, 1);
    *cpc = pc;
    ms_compiler_barrier();
    *cstack = id;
    ms_compiler_barrier();
    b->stack_busy = 0;
    return id;
}

/* ms__tracker_caller_stack, from the caches as they are. */
static uint32_t caller_stack(ms__tbuf *b, const void *fp, uintptr_t ret)
{
    // A block from operator new or strdup is named where the program called
    // it: every such call comes here (the caller differs, the return address
    // into the wrapper does not), with a cache of its own.
    uintptr_t pc = ms__stack_caller(fp, ret);
    if (ms_unlikely(pc != ret))
        return cached_caller(b, &b->wcaller_pc, &b->wcaller_stack, pc);
    return cached_caller(b, &b->caller_pc, &b->caller_stack, ret);
}

/* Empty b's caller caches, filled under other wrappers than those of
 * generation gen (one store each: a signal handler meanwhile sees no pair).
 * A handler inside this thread's call leaves them be. */
static void callers_fresh(ms__tbuf *b, uint32_t gen)
{
    if (b->stack_busy)
        return;
    b->caller_stack = 0;
    b->wcaller_stack = 0;
    b->caller_gen = gen;
}

uint32_t ms__tracker_caller_stack(ms__tbuf *b, const void *fp, uintptr_t ret)
{
    // Wrappers found since the caches were filled (a C++ runtime that came
    // with a plugin) may be where they point.
    uint32_t gen = ms__stack_wrap_gen();
    if (ms_unlikely(b->caller_gen != gen))
        callers_fresh(b, gen);
    uint32_t id = caller_stack(b, fp, ret);
    // This call's first stack may have found wrappers, perhaps the one `ret`
    // is into: it is placed again.
    uint32_t now = ms__stack_wrap_gen();
    if (ms_unlikely(now != gen) && !b->stack_busy) {
        callers_fresh(b, now);
        id = caller_stack(b, fp, ret);
    }
    return id;
}

/* ------------------------------------------------------- recording path */

MS_COLD static void count_error(ms__tbuf *b, int code)
{
    ms__fail_fast(code);
    if (b)
        ms_atomic_store_relaxed(&b->errors, ms_atomic_load_relaxed(&b->errors) + 1);
}

/* @return 0 and *size resolved, or an error code. */
static inline int resolve_size(uintptr_t ptr, size_t *size)
{
    if (*size == MS_SIZE_UNKNOWN)
        return ms__heap_block_size(ptr, size);
    return *size >= MS__SIZE_LIMIT ? MS_ERANGE : 0;
}

/* The recorded part of TRACK, out of line so that a skipped TRACK stays a
 * small function with no register spills. Under capture it names the block
 * capture recorded (the size is only what to open if capture never saw it). */
MS_NOINLINE static void track_record(ms_tracker *t, ms__tbuf *b, uintptr_t ptr, size_t size,
                                     const ms_site *site, const void *fp, uintptr_t ret)
{
    int rc = resolve_size(ptr, &size);
    if (ms_unlikely(rc != 0)) {
        count_error(b, rc);
        return;
    }
    bool named = ms_atomic_load_relaxed(&t->captured);
    uint32_t stack = ms__tracker_stack(t, b, fp, ret, false);
    ms__store_push(t->store, b, b->slot, named ? MS__REC_NAME : MS_EVENT_ALLOCATE, ptr, 0, size,
                   ms__rec_extra(stack, 0), site);
}

/* The checks every recording call starts with. @return the calling thread's
 * buffer, or NULL when the call must record nothing (error or drop counted). */
static inline ms__tbuf *enter(ms_tracker *t, uintptr_t ptr)
{
    if (ms_unlikely(!t)) {
        ms__fail_fast(MS_ENULLTRACKER);
        return NULL;
    }
    ms__tbuf *b = ms__store_tbuf(t->store);
    if (ms_unlikely(!b))
        return NULL; // counted as dropped
    if (ms_unlikely(!ptr)) {
        count_error(b, MS_ENULLPTR);
        return NULL;
    }
    return b;
}

void ms_track_as(ms_tracker *t, const void *ptr, size_t size, const ms_site *site)
{
    uintptr_t a = (uintptr_t)ptr; // an address only: never read through
    ms__tbuf *b = enter(t, a);
    if (!b)
        return;
    // Under capture the fold decides: a block capture did not sample stays unnamed.
    if (!ms_atomic_load_relaxed(&t->captured) && skip_by_sampling(t, b))
        return;
    track_record(t, b, a, size, site, __builtin_frame_address(0),
                 (uintptr_t)__builtin_return_address(0));
}

void ms_untrack(ms_tracker *t, const void *ptr)
{
    uintptr_t a = (uintptr_t)ptr;
    ms__tbuf *b = enter(t, a);
    if (!b)
        return;
    // Under capture the free() closes the block; UNTRACK only closes blocks
    // capture did not see (named with an explicit size).
    uint64_t soft = ms_atomic_load_relaxed(&t->captured) ? MS__RF_SOFT : 0;
    ms__store_push(t->store, b, b->slot, MS_EVENT_DEALLOCATE, a, 0, 0, soft, NULL);
}

void ms_track_realloc(ms_tracker *t, const void *old_ptr, const void *new_ptr, size_t new_size)
{
    uintptr_t old = (uintptr_t)old_ptr, a = (uintptr_t)new_ptr;
    if (t && ms_atomic_load_relaxed(&t->captured))
        return; // capture recorded the realloc itself
    ms__tbuf *b = enter(t, a);
    if (!b)
        return;
    if (!old && skip_by_sampling(t, b)) // realloc(NULL, n) allocates: sample it
        return;
    int rc = resolve_size(a, &new_size);
    if (ms_unlikely(rc != 0)) {
        count_error(b, rc);
        return;
    }
    ms__store_push(t->store, b, b->slot, MS_EVENT_REALLOCATE, a, old, new_size, 0, NULL);
}

void *ms_realloc(ms_tracker *t, void *ptr, size_t size)
{
    if (size == 0 && ptr) { // realloc(p, 0) frees p (glibc); say so first
        ms_untrack(t, ptr);
        free(ptr);
        return NULL;
    }
    // Only the old address's value is recorded; volatile stops gcc's
    // -Wuse-after-free from following it through realloc.
    volatile uintptr_t old = (uintptr_t)ptr;
    void *n = realloc(ptr, size);
    if (!n) {
        ms__fail(MS_ENOMEM, "realloc of %zu bytes failed", size);
        return NULL;
    }
    ms_track_realloc(t, (const void *)old, n, size);
    return n;
}

/* Set MS_ENULLTRACKER for the public function `fn`. @return NULL. */
MS_COLD static void *null_tracker(const char *fn)
{
    ms__fail(MS_ENULLTRACKER, "%s: tracker is NULL", fn);
    return NULL;
}

/* --------------------------------------------------------- life cycle */

static ms_tracker *tracker_create(bool is_global)
{
    ms_tracker *t = ms__pages_alloc(sizeof *t);
    if (!t)
        return NULL;
    t->store = ms__store_new(MS__DEFAULT_RETAINED_BYTES);
    if (!t->store) {
        ms__pages_free(t, sizeof *t);
        return NULL;
    }
    t->sample_rate = 1.0;
    t->start_ns = ms__real_ns();
    t->start_mono_ns = ms__mono_ns();
    t->is_global = is_global;
    if (is_global)
        ms__store_set_global(t->store);
    return t;
}

ms_tracker *ms_tracker_new(void)
{
    ms_tracker *t = tracker_create(false);
    if (!t)
        ms__fail(MS_ENOMEM, "cannot allocate a tracker");
    return t;
}

static void global_at_exit(void)
{
    ms_tracker *t = global_tracker;
    if (t && (ms_atomic_load_relaxed(&t->auto_export) || ms_atomic_load_relaxed(&t->stream))) {
        ms__clock_calibrate_at_exit();
        ms__tracker_auto_export(t);
    }
}

static void global_init(void)
{
    global_tracker = tracker_create(true);
    if (global_tracker)
        atexit(global_at_exit);
}

ms_tracker *ms_tracker_global(void)
{
    pthread_once(&global_once, global_init);
    if (!global_tracker)
        ms__fail(MS_ENOMEM, "cannot allocate the global tracker");
    return global_tracker;
}

/* One thread at a time writes t's report; the others wait for it. A report
 * that exit() writes on one thread is not cut short by another thread's
 * fatal signal or _exit (the process would end in the middle of it), and that
 * thread's end then waits for the report. `ending`: the caller ends the process. */
static void export_once(ms_tracker *t, bool ending)
{
    long me = (long)syscall(SYS_gettid), other = 0;
    if (!atomic_compare_exchange_strong(&t->exporter, &other, me)) {
        if (other == me) // a fault or an _exit inside this thread's own export
            return;
        if (ending)
            atomic_store(&t->end_waits, true);
        struct timespec ms = {0, 1000000};
        for (int i = 0; i < 20000 && atomic_load(&t->exporter) == other; i++)
            nanosleep(&ms, NULL); // async-signal-safe, as the callers need
        return;
    }
    ms__stream_finish(t);
    char *path = ms_atomic_exchange_acq_rel(&t->auto_export, NULL);
    if (path) {
        ms__internal_enter();
        int rc = ms__export_path(t, path);
        if (rc < 0)
            fprintf(stderr, "memscope: auto-export to %s failed: %s\n", path,
                    ms_last_error_message());
        ms__internal_leave();
        ms__free(path);
    }
    atomic_store(&t->exporter, 0);
    if (atomic_load(&t->end_waits))
        for (;;) // the thread that waited for this report ends the process
            pause();
}

void ms__tracker_auto_export(ms_tracker *t) { export_once(t, false); }

void ms__tracker_last_export(ms_tracker *t) { export_once(t, true); }

bool ms_capture_active(void) { return ms_atomic_load_relaxed(&ms__capture_on); }

void ms_tracker_free(ms_tracker *t)
{
    if (!t || t->is_global)
        return;
    ms__mon_stop(&t->mon); // no more samples: the export has them all
    ms__tracker_auto_export(t);
    ms__mon_release(&t->mon);
    ms__store_free(t->store);
    ms_trace_close(t->trace);
    ms__free(t->replay_local);
    ms__free(t->replay_stack);
    ms__pages_free(t, sizeof *t);
}

/* ----------------------------------------------------------- builders */

ms_tracker *ms_tracker_with_sampling(ms_tracker *t, ms_sampling_config cfg)
{
    if (!t)
        return null_tracker(__func__);
    if (!(cfg.sample_rate >= 0.0 && cfg.sample_rate <= 1.0)) { // NaN fails both
        ms__fail(MS_ERANGE, "sample rate %g is outside [0, 1]", cfg.sample_rate);
        return t;
    }
    bool sampling = cfg.sample_rate < 1.0;
    bool was_sampling = ms_atomic_load_relaxed(&t->sampling_on);
    ms_atomic_store_relaxed(&t->sample_rate, cfg.sample_rate);
    ms_atomic_store_relaxed(&t->capture_call_stack, cfg.capture_call_stack);
    ms_atomic_store_relaxed(&t->max_stack_depth, cfg.max_stack_depth);
    ms_atomic_store_relaxed(&t->log1m_rate, sampling ? ln_approx(1.0 - cfg.sample_rate) : 0.0);
    ms_atomic_store_relaxed(&t->sampling_on, sampling);
    mirror_sampling(t);
    // Frees of unknown blocks are expected while sampling (they were not sampled).
    ms_event_store *s = t->store;
    if (sampling && !was_sampling && ms_atomic_load_relaxed(&t->captured)) {
        // While sampling, capture skips the free of a block that has no
        // sampled header and is not in the filter: hand the filter the
        // blocks recorded before sampling began.
        ms__store_lock_folded(s);
        if (ms__live_filter_all(&s->live) > 0) {
            ms_atomic_store_relaxed(&t->filter_used, true);
            mirror_sampling(t);
        }
    } else {
        ms__store_lock(s);
    }
    if (sampling)
        s->live.sampling = true;
    ms__store_unlock(s);
    // Capture folds inline while it samples (capture/capture.c).
    if (!sampling && ms_atomic_exchange_acq_rel(&s->folder_wanted, false))
        ms__store_start_folder(s);
    return t;
}

ms_tracker *ms_tracker_with_sampling_seed(ms_tracker *t, uint64_t seed)
{
    if (!t)
        return null_tracker(__func__);
    ms_atomic_store_relaxed(&t->store->seed, seed);
    ms_atomic_add_relaxed(&t->store->seed_gen, 1);
    return t;
}

ms_tracker *ms_tracker_with_auto_export(ms_tracker *t, const char *path)
{
    if (!t)
        return null_tracker(__func__);
    if (!path || !*path) {
        ms__fail(MS_EINVAL, "auto-export path is empty");
        return t;
    }
    if (ms__export_format(path) < 0) {
        ms__fail(MS_ENOTSUP, "cannot auto-export to %s: supported extensions are .json", path);
        return t;
    }
    char *copy = ms__strdup(path);
    if (!copy) {
        ms__fail(MS_ENOMEM, NULL);
        return t;
    }
    ms__free(ms_atomic_exchange_acq_rel(&t->auto_export, copy));
    return t;
}

ms_tracker *ms_tracker_with_system_monitoring(ms_tracker *t)
{
    if (!t)
        return null_tracker(__func__);
    ms__mon_start(&t->mon);
    return t;
}

ms_tracker *ms_tracker_with_monitor_interval(ms_tracker *t, unsigned interval_ms)
{
    if (!t)
        return null_tracker(__func__);
    ms__mon_set_interval(&t->mon, interval_ms);
    return t;
}

ms_tracker *ms_tracker_with_monitor_history(ms_tracker *t, size_t samples)
{
    if (!t)
        return null_tracker(__func__);
    ms__mon_set_history(&t->mon, samples);
    return t;
}

void ms_tracker_stop_system_monitoring(ms_tracker *t)
{
    if (t)
        ms__mon_stop(&t->mon);
}

ms_tracker *ms_tracker_with_retained_bytes(ms_tracker *t, size_t bytes)
{
    if (!t)
        return null_tracker(__func__);
    ms__store_set_retained(t->store, bytes);
    return t;
}

/* ------------------------------------------------------------ queries */

uint32_t ms__tracker_public_stack(const ms_tracker *t, uint32_t id)
{
    if (!t->replay_stacks_cap || !id)
        return id;
    for (size_t i = (id * 2654435761u) & (t->replay_stacks_cap - 1);;
         i = (i + 1) & (t->replay_stacks_cap - 1)) {
        if (t->replay_local[i] == id)
            return t->replay_stack[i];
        if (!t->replay_local[i])
            return id;
    }
}

ms_sampling_config ms__tracker_sampling(ms_tracker *t)
{
    return (ms_sampling_config){ms_atomic_load_relaxed(&t->sample_rate),
                                ms_atomic_load_relaxed(&t->capture_call_stack),
                                ms_atomic_load_relaxed(&t->max_stack_depth)};
}

ms_memory_stats ms_tracker_stats(ms_tracker *t)
{
    ms_memory_stats st = {0};
    if (!t) {
        null_tracker(__func__);
        return st;
    }
    ms__store_lock_folded(t->store);
    ms__store_stats_locked(t->store, &st);
    ms__store_unlock(t->store);
    return st;
}

ms_memory_event *ms_tracker_events(ms_tracker *t, size_t *count)
{
    if (!t) {
        if (count)
            *count = 0;
        return null_tracker(__func__);
    }
    return ms_event_store_snapshot(t->store, count);
}

ms_event_store *ms_tracker_event_store(ms_tracker *t)
{
    if (!t)
        return null_tracker(__func__);
    return t->store;
}

ms_system_snapshot ms_current_system_snapshot(ms_tracker *t)
{
    if (!t) {
        null_tracker(__func__);
        return (ms_system_snapshot){0};
    }
    return ms__mon_current(&t->mon);
}

ms_analysis_report *ms_analyze(ms_tracker *t)
{
    if (!t)
        return null_tracker(__func__);
    ms__internal_enter(); // under capture the report's memory is not the program's
    ms_analysis_report *r = ms__tracker_analyze(t, NULL, NULL);
    ms__internal_leave();
    return r;
}

ms_analysis_report *ms__tracker_analyze(ms_tracker *t, ms_memory_snapshot **keep,
                                        ms_memory_stats *stats)
{
    // The system samples first: the monitor's lock is never held with the store's.
    ms_system_snapshot *sys;
    size_t nsys;
    uint64_t overwritten;
    if (ms__mon_samples(&t->mon, &sys, &nsys, &overwritten) < 0)
        return NULL;
    ms_memory_stats st;
    ms_memory_snapshot *snap = ms__snapshot_of_store(t->store, &st);
    if (!snap) {
        ms__free(sys);
        return NULL;
    }
    if (stats)
        *stats = st;
    ms_sampling_config cfg = ms__tracker_sampling(t);
    ms__analyze_opts o = {
        .sample_rate = cfg.sample_rate,
        .duration_ns = t->trace ? t->replay_duration_ns : ms__mono_ns() - t->start_mono_ns,
        .evicted_events = st.evicted_events,
        .system = sys,
        .system_count = nsys,
        .system_overwritten = overwritten,
    };
    ms_analysis_report *r = ms__analyze_snapshot(snap, &o); // takes sys
    if (keep && r)
        *keep = snap;
    else
        ms_snapshot_free(snap);
    return r;
}
