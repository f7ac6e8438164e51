/* monitor.c — the sampler thread, the per-tracker latch and ring. M.lock
 * guards the list of monitoring trackers, their rings and configuration;
 * R_lock guards the one reader of /proc (its open files and device totals),
 * used by the sampler and by the baseline of a starting tracker. Neither is
 * held while taking the other, except by the fork handlers (M, then R). The
 * latest sample is read without either. fork(): the child has no sampler
 * and its trackers are no longer monitoring. */
#include "monitor/monitor.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/alloc.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/pages.h"
#include "monitor/nvml.h"

_Static_assert(sizeof(ms_system_snapshot) == 176,
               "docs/system-metrics.md and docs/PERFORMANCE.md give a sample's size");

/* Trackers due within this much of a reading share it. */
#define SLACK_NS 1000000u
#define SAMPLER_STACK (512u * 1024u)

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* CLOCK_MONOTONIC; the sampler sleeps on it */
    ms__mon *list;       /* monitoring trackers */
    uint64_t gen;        /* the running sampler's generation; bumped to end it */
    bool running;        /* a sampler of generation `gen` exists */
    pthread_t thread;
    _Atomic uint64_t self_cpu_ns, readings;
} M = {.lock = PTHREAD_MUTEX_INITIALIZER};

static pthread_mutex_t R_lock = PTHREAD_MUTEX_INITIALIZER;
static ms__sys_reader R;
static bool R_ready; /* under R_lock */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* Read the counters through the shared reader. */
static void read_counters(ms__sys_raw *r)
{
    pthread_mutex_lock(&R_lock);
    if (!R_ready) {
        ms__sys_reader_init(&R);
        R_ready = true;
    }
    ms__sys_read(&R, r);
    pthread_mutex_unlock(&R_lock);
}

/* Close the shared reader's files (the last sampler has ended). */
static void close_counters(void)
{
    pthread_mutex_lock(&R_lock);
    if (R_ready)
        ms__sys_reader_close(&R);
    pthread_mutex_unlock(&R_lock);
}

/* ------------------------------------------------------------ GPU */

static pthread_once_t nvml_once = PTHREAD_ONCE_INIT;
static ms__nvml nvml;
static _Atomic bool nvml_ready;
static const char *nvml_path; /* NULL: MS__NVML_LIBRARY */
static char nvml_why[256];

static void nvml_load(void)
{
    if (ms__nvml_open(&nvml, nvml_path, nvml_why, sizeof nvml_why))
        ms_atomic_store_release(&nvml_ready, true);
}

void ms__mon_set_nvml_library(const char *path) { nvml_path = path; }

const char *ms__mon_gpu_status(void)
{
    pthread_once(&nvml_once, nvml_load);
    return ms_atomic_load_acquire(&nvml_ready) ? "" : nvml_why;
}

/* NVML is loaded once per process, never unloaded, by the first
 * ms__mon_start: in the caller's thread, so that the sampler never enters
 * the dynamic loader (a tracker freed while the loader's lock is held, in a
 * library's destructor say, could otherwise wait for it forever). */
static void read_gpu(ms__sys_raw *r)
{
    if (ms_atomic_load_acquire(&nvml_ready))
        ms__nvml_read(&nvml, r);
    else
        r->gpu_ok = false;
}

/* ------------------------------------------------------------ fork */

static void init_cond(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&M.cond, &a);
    pthread_condattr_destroy(&a);
}

/* This thread holds M.lock. A fatal signal's report, written on the thread it
 * interrupted, reads no samples when the thread was inside a monitor call that
 * holds it (it would wait for itself): those samples are counted as lost. */
static _Thread_local bool tl_holds_M;

static void before_fork(void)
{
    pthread_mutex_lock(&M.lock);
    tl_holds_M = true;
    pthread_mutex_lock(&R_lock);
}

static void after_fork_parent(void)
{
    pthread_mutex_unlock(&R_lock);
    tl_holds_M = false;
    pthread_mutex_unlock(&M.lock);
}

/* Only the forking thread lives on in the child: no sampler. Its trackers
 * keep their samples and stop monitoring; ms_tracker_with_system_monitoring
 * starts a new sampler there. */
static void after_fork_child(void)
{
    for (ms__mon *m = M.list, *next; m; m = next) {
        next = m->next;
        m->active = false;
        m->next = NULL;
    }
    M.list = NULL;
    M.running = false;
    M.gen++;
    init_cond(); // the parent's sampler may have been waiting on it
    ms_atomic_store_relaxed(&M.self_cpu_ns, 0);
    ms_atomic_store_relaxed(&M.readings, 0);
    // The reader's files are /proc/<parent>/...: close them. Its device
    // totals stay: they count the same machine.
    if (R_ready)
        ms__sys_reader_close(&R);
    // NVML is not documented to work in a fork child: no GPU figures there.
    ms_atomic_store_relaxed(&nvml_ready, false);
    snprintf(nvml_why, sizeof nvml_why, "NVML is not used in a fork child");
    pthread_mutex_unlock(&R_lock);
    tl_holds_M = false;
    pthread_mutex_unlock(&M.lock);
}

static void monitor_init(void)
{
    init_cond();
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

/* Take M.lock, the fork handlers registered first: a thread that reads
 * samples (the trace writer, say) may hold it while another thread forks,
 * and the child must not inherit it locked. */
static void lock_M(void)
{
    pthread_once(&init_once, monitor_init);
    pthread_mutex_lock(&M.lock);
    tl_holds_M = true;
}

static void unlock_M(void)
{
    tl_holds_M = false;
    pthread_mutex_unlock(&M.lock);
}

/* ------------------------------------------------------------ latch */

void ms__mon_publish(ms__mon *m, const ms_system_snapshot *s)
{
    uint64_t w[MS__SNAP_WORDS] = {0};
    memcpy(w, s, sizeof *s);
    uint64_t seq = ms_atomic_load_relaxed(&m->seq);
    for (int k = 0; k < 2; k++) {
        // seq odd: readers use copy[1] while copy[0] changes; then even.
        ms_atomic_store_release(&m->seq, ++seq);
        atomic_thread_fence(memory_order_release);
        for (size_t i = 0; i < MS__SNAP_WORDS; i++)
            ms_atomic_store_relaxed(&m->copy[k][i], w[i]);
    }
}

ms_system_snapshot ms__mon_current(ms__mon *m)
{
    uint64_t w[MS__SNAP_WORDS];
    uint64_t seq;
    do {
        seq = ms_atomic_load_acquire(&m->seq);
        const _Atomic uint64_t *c = m->copy[seq & 1];
        for (size_t i = 0; i < MS__SNAP_WORDS; i++)
            w[i] = ms_atomic_load_relaxed(&c[i]);
        atomic_thread_fence(memory_order_acquire);
    } while (ms_atomic_load_relaxed(&m->seq) != seq);
    ms_system_snapshot s;
    memcpy(&s, w, sizeof s);
    return s;
}

/* ------------------------------------------------------------ ring */

static size_t history_of(const ms__mon *m)
{
    return m->history ? m->history : MS_MONITOR_DEFAULT_HISTORY;
}

static uint64_t interval_ns(const ms__mon *m)
{
    return (uint64_t)(m->interval_ms ? m->interval_ms : MS_MONITOR_DEFAULT_INTERVAL_MS) * 1000000u;
}

/* Pre: M.lock. */
static void ring_push(ms__mon *m, const ms_system_snapshot *s)
{
    if (!m->ring)
        return;
    if (m->ring_count == m->ring_cap) { // full: the oldest goes
        m->ring_first = (m->ring_first + 1) % m->ring_cap;
        m->ring_count--;
        m->overwritten++;
    }
    m->ring[(m->ring_first + m->ring_count) % m->ring_cap] = *s;
    m->ring_count++;
}

/* Copy the newest min(count, n) samples, oldest first. Pre: M.lock. */
static size_t ring_copy(const ms__mon *m, ms_system_snapshot *out, size_t n)
{
    size_t k = m->ring_count < n ? m->ring_count : n;
    size_t skip = m->ring_count - k;
    for (size_t i = 0; i < k; i++)
        out[i] = m->ring[(m->ring_first + skip + i) % m->ring_cap];
    return k;
}

/* Give m a ring of `cap` slots keeping its newest samples. Pre: M.lock. */
static int ring_resize(ms__mon *m, size_t cap)
{
    ms_system_snapshot *ring = ms__pages_alloc(cap * sizeof *ring);
    if (!ring)
        return ms__fail(MS_ENOMEM, "cannot allocate %zu system samples", cap);
    size_t kept = m->ring ? ring_copy(m, ring, cap) : 0;
    if (m->ring) {
        m->overwritten += m->ring_count - kept;
        ms__pages_free(m->ring, m->ring_cap * sizeof *m->ring);
    }
    m->ring = ring;
    m->ring_cap = cap;
    m->ring_first = 0;
    m->ring_count = kept;
    return 0;
}

/* ------------------------------------------------------------ sampler */

/* A new sample for m from `cur`. Pre: M.lock. */
static void deliver(ms__mon *m, const ms__sys_raw *cur)
{
    ms_system_snapshot s;
    ms__sys_rates(&m->prev, cur, &s);
    ms__mon_publish(m, &s);
    ring_push(m, &s);
    m->prev = *cur;
    uint64_t iv = interval_ns(m);
    m->next_due += iv; // keep the cadence...
    if (m->next_due < cur->mono_ns + iv / 2)
        // ...unless the sampler fell behind: then no sample closer than half
        // an interval to this one (rates over a sliver of time are noise)
        m->next_due = cur->mono_ns + iv;
}

static void wait_until(uint64_t due_ns)
{
    struct timespec ts = {.tv_sec = (time_t)(due_ns / 1000000000u),
                          .tv_nsec = (long)(due_ns % 1000000000u)};
    pthread_cond_timedwait(&M.cond, &M.lock, &ts);
}

static void *sampler_main(void *arg)
{
    uint64_t gen = (uint64_t)(uintptr_t)arg;
    // The sampler is the library's: under malloc capture whatever it (or
    // NVML) allocates is not the program's, so the hooks forward unrecorded.
    ms__internal_enter();
    lock_M();
    while (M.gen == gen) {
        // Samples due within `slack` are taken together; a short interval
        // gets a shorter slack, or samples would come back to back.
        uint64_t now = ms__mono_ns(), due = UINT64_MAX, slack = SLACK_NS;
        for (ms__mon *m = M.list; m; m = m->next) {
            if (m->next_due < due)
                due = m->next_due;
            if (interval_ns(m) / 4 < slack)
                slack = interval_ns(m) / 4;
        }
        if (due > now + slack) {
            if (due == UINT64_MAX)
                pthread_cond_wait(&M.cond, &M.lock);
            else
                wait_until(due);
            continue; // woken early, or the list changed: look again
        }
        unlock_M();
        // Read without M.lock: queries need not wait for /proc.
        ms__sys_raw cur;
        read_counters(&cur);
        read_gpu(&cur);
        struct timespec ts;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
        lock_M();
        if (M.gen != gen)
            break;
        ms_atomic_store_relaxed(&M.self_cpu_ns,
                                (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec);
        ms_atomic_add_relaxed(&M.readings, 1);
        for (ms__mon *m = M.list; m; m = m->next)
            // A tracker that joined after this reading keeps its own baseline.
            if (m->next_due <= cur.mono_ns + slack && m->prev.mono_ns < cur.mono_ns)
                deliver(m, &cur);
    }
    bool last = !M.running; // no sampler follows: nobody needs the files open
    unlock_M();
    if (last)
        close_counters();
    return NULL;
}

/* Start a sampler thread of generation M.gen. Pre: M.lock. */
static int start_thread(void)
{
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, SAMPLER_STACK);
    // The sampler takes none of the program's signals.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    ms_atomic_store_relaxed(&M.self_cpu_ns, 0);
    ms_atomic_store_relaxed(&M.readings, 0);
    int rc = pthread_create(&M.thread, &attr, sampler_main, (void *)(uintptr_t)M.gen);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0)
        return ms__fail(MS_ENOMEM, "cannot start the system monitor thread: %s", strerror(rc));
    pthread_setname_np(M.thread, "memscope-mon"); // named before anyone looks
    M.running = true;
    return 0;
}

/* ------------------------------------------------------------ trackers */

/* End the sampler if no tracker is left. Pre: M.lock. @return true when the
 * caller must join *thread once it has released the lock. */
static bool end_if_idle(pthread_t *thread)
{
    if (M.list || !M.running)
        return false;
    M.gen++;
    M.running = false;
    *thread = M.thread;
    pthread_cond_broadcast(&M.cond);
    return true;
}

int ms__mon_start(ms__mon *m)
{
    // The thread first, so that the baseline counts it like every sample.
    lock_M();
    int rc = m->active || M.running ? 0 : start_thread();
    bool done = m->active || rc < 0;
    unlock_M();
    if (done)
        return rc;
    // The baseline, read by the caller so that the first window starts now.
    pthread_once(&nvml_once, nvml_load);
    ms__sys_raw base;
    read_counters(&base);
    read_gpu(&base);

    pthread_t idle;
    bool join = false;
    lock_M();
    if (m->active) // another thread started it meanwhile
        goto out;
    if (!m->ring && (rc = ring_resize(m, history_of(m))) < 0)
        goto out;
    if (!M.running && (rc = start_thread()) < 0) // a stop ended it meanwhile
        goto out;
    ms_system_snapshot s;
    ms__sys_rates(NULL, &base, &s);
    ms__mon_publish(m, &s);
    m->prev = base;
    m->next_due = base.mono_ns + interval_ns(m);
    m->next = M.list;
    M.list = m;
    m->active = true;
    pthread_cond_broadcast(&M.cond);
out:
    join = end_if_idle(&idle); // after a failure, no sampler for nobody
    bool idle_files = !M.running;
    unlock_M();
    if (join)
        pthread_join(idle, NULL);
    if (idle_files)
        close_counters();
    return rc;
}

void ms__mon_stop(ms__mon *m)
{
    lock_M();
    if (!m->active) {
        unlock_M();
        return;
    }
    for (ms__mon **p = &M.list; *p; p = &(*p)->next)
        if (*p == m) {
            *p = m->next;
            break;
        }
    m->next = NULL;
    m->active = false;
    pthread_t idle;
    bool join = end_if_idle(&idle); // the last one ends the sampler
    unlock_M();
    if (join)
        pthread_join(idle, NULL);
}

void ms__mon_release(ms__mon *m)
{
    if (m->ring)
        ms__pages_free(m->ring, m->ring_cap * sizeof *m->ring);
    m->ring = NULL;
    m->ring_cap = m->ring_first = m->ring_count = 0;
}

void ms__mon_forget(ms__mon *m)
{
    if (!m->ring)
        return; // never monitored
    // In a fork child, before or after our own child handler (whichever
    // pthread_atfork registered first): M.lock may still be ours from the
    // prepare handler.
    bool held = tl_holds_M;
    if (!held)
        lock_M();
    m->ring_first = m->ring_count = 0;
    m->overwritten = 0;
    if (!held)
        unlock_M();
}

int ms__mon_set_interval(ms__mon *m, unsigned interval_ms)
{
    if (interval_ms == 0 || interval_ms > MS__MON_MAX_INTERVAL_MS)
        return ms__fail(MS_ERANGE, "monitor interval %u ms is outside 1 .. %u", interval_ms,
                        MS__MON_MAX_INTERVAL_MS);
    lock_M();
    m->interval_ms = interval_ms;
    if (m->active) { // the next sample comes one new interval after the last
        m->next_due = m->prev.mono_ns + interval_ns(m);
        pthread_cond_broadcast(&M.cond);
    }
    unlock_M();
    return 0;
}

int ms__mon_replay(ms__mon *m, const ms_system_snapshot *s, uint64_t overwritten)
{
    lock_M();
    int rc = m->ring || !s ? 0 : ring_resize(m, history_of(m));
    // A trace holds every sample of its run: keep them all (up to the bound).
    if (rc == 0 && s && m->ring_count == m->ring_cap && m->ring_cap < MS__MON_MAX_HISTORY)
        rc = ring_resize(m, m->ring_cap * 2 < MS__MON_MAX_HISTORY ? m->ring_cap * 2
                                                                  : MS__MON_MAX_HISTORY);
    if (rc == 0) {
        if (s)
            ring_push(m, s);
        m->overwritten = overwritten > m->overwritten ? overwritten : m->overwritten;
    }
    unlock_M();
    if (rc == 0 && s)
        ms__mon_publish(m, s);
    return rc;
}

int ms__mon_set_history(ms__mon *m, size_t samples)
{
    if (samples == 0 || samples > MS__MON_MAX_HISTORY)
        return ms__fail(MS_ERANGE, "monitor history of %zu samples is outside 1 .. %zu", samples,
                        MS__MON_MAX_HISTORY);
    lock_M();
    int rc = 0;
    if (m->ring && samples != m->ring_cap)
        rc = ring_resize(m, samples);
    if (rc == 0)
        m->history = samples;
    unlock_M();
    return rc;
}

int ms__mon_samples(ms__mon *m, ms_system_snapshot **out, size_t *count, uint64_t *overwritten)
{
    *out = NULL;
    *count = 0;
    *overwritten = 0;
    if (tl_holds_M) { // a report from a signal handler: see tl_holds_M
        *overwritten = m->overwritten + m->ring_count;
        return 0;
    }
    lock_M();
    int rc = 0;
    if (m->ring_count > 0) {
        *out = ms__malloc(m->ring_count * sizeof **out);
        if (*out)
            *count = ring_copy(m, *out, m->ring_count);
        else
            rc = ms__fail(MS_ENOMEM, "cannot copy %zu system samples", m->ring_count);
    }
    *overwritten = m->overwritten;
    unlock_M();
    return rc;
}

int ms__mon_samples_since(ms__mon *m, uint64_t seen, ms_system_snapshot **out, size_t *count,
                          uint64_t *next, uint64_t *lost)
{
    *out = NULL;
    *count = 0;
    *lost = 0;
    if (tl_holds_M) { // a report from a signal handler: see tl_holds_M
        uint64_t end = m->overwritten + m->ring_count;
        *lost = end > seen ? end - seen : 0;
        *next = end > seen ? end : seen;
        return 0;
    }
    lock_M();
    int rc = 0;
    uint64_t first = m->overwritten, end = m->overwritten + m->ring_count;
    if (seen < first) {
        *lost = first - seen;
        seen = first;
    }
    *next = end > seen ? end : seen;
    if (end > seen) {
        size_t k = (size_t)(end - seen);
        *out = ms__malloc(k * sizeof **out);
        if (*out)
            *count = ring_copy(m, *out, k);
        else
            rc = ms__fail(MS_ENOMEM, "cannot copy %zu system samples", k);
    }
    unlock_M();
    return rc;
}

void ms__mon_self_cost(uint64_t *cpu_ns, uint64_t *readings)
{
    *cpu_ns = ms_atomic_load_relaxed(&M.self_cpu_ns);
    *readings = ms_atomic_load_relaxed(&M.readings);
}
