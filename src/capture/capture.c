/* capture.c — starting capture, configuring it from the environment, fork,
 * fatal signals and the crash arena (see capture.h, docs/capture.md). */
#include "capture/capture.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "capture/real.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/error.h"
#include "common/heap.h"
#include "monitor/monitor.h"
#include "stack/stack.h"

ms_tracker *ms__cap_tracker;

static _Atomic int init_state;          /* 0: not started, 1: starting, 2: done */
static _Thread_local bool tl_starting;  /* this thread is starting capture */
static _Atomic uint64_t missed;         /* calls on other threads while starting */
static _Thread_local bool tl_reporting; /* this thread reports a crash (arena) */

static struct {
    bool run;             /* started by `memscope run` (MEMSCOPE_RUN=1) */
    bool follow_children; /* MEMSCOPE_FOLLOW_CHILDREN=1 */
    bool configured;
    char output[4096]; /* the report path as configured ("" for none) */
} cfg;

/* MEMSCOPE_SAMPLE_RATE and MEMSCOPE_STACKS, applied to t if set. `warn`:
 * say so on stderr when one is ignored (not at the first malloc: stdio may
 * not be ready). */
static void env_sampling(ms_tracker *t, bool warn)
{
    ms_sampling_config sc = ms__tracker_sampling(t);
    const char *rate = getenv("MEMSCOPE_SAMPLE_RATE");
    const char *stacks = getenv("MEMSCOPE_STACKS");
    if (rate && *rate) {
        char *end;
        double r = strtod(rate, &end);
        if (*end || !(r > 0.0 && r <= 1.0)) {
            if (warn)
                fprintf(stderr, "memscope: MEMSCOPE_SAMPLE_RATE=%s is not in (0, 1]: ignored\n",
                        rate);
        } else {
            sc.sample_rate = r;
        }
    }
    if (stacks && *stacks) {
        char *end;
        long d = strtol(stacks, &end, 10);
        if (*end || d < 0 || d > (long)MS__STACK_MAX_DEPTH) {
            if (warn)
                fprintf(stderr, "memscope: MEMSCOPE_STACKS=%s is not in 0..%u: ignored\n", stacks,
                        MS__STACK_MAX_DEPTH);
        } else {
            sc.capture_call_stack = d > 0;
            sc.max_stack_depth = (size_t)d;
        }
    }
    if ((rate && *rate) || (stacks && *stacks))
        ms_tracker_with_sampling(t, sc);
}

/* ---------------------------------------------------------------- start */

unsigned ms__cap_slow_state(void)
{
    unsigned m = ms__cap_mode();
    if (m == MS__CAP_CRASH)
        return tl_reporting ? MS__CAP_ARENA : MS__CAP_ON;
    if (m != MS__CAP_INIT)
        return m;
    if (tl_starting)
        return MS__CAP_OFF; // the start-up's own allocations
    int expect = 0;
    if (!atomic_compare_exchange_strong(&init_state, &expect, 1)) {
        // Another thread is starting capture (it takes microseconds): this
        // call goes unrecorded, and is counted as dropped.
        if (expect == 1) {
            ms_atomic_add_relaxed(&missed, 1);
            return MS__CAP_OFF;
        }
        return ms__cap_mode();
    }
    tl_starting = true;
    ms__internal_enter();
    ms_tracker *t = ms_tracker_global();
    if (t) {
        // Sampling from the first block on: a block recorded before would
        // have to go into the sampled filter (hooks.c).
        env_sampling(t, false);
        ms__cap_tracker = t;
        ms_atomic_store_relaxed(&t->captured, true);
        ms_atomic_store_relaxed(&ms__capture_on, true);
    }
    ms__hook_set(MS__HOOK_MODE, t ? MS__CAP_ON : MS__CAP_OFF);
    ms__internal_leave();
    tl_starting = false;
    ms_atomic_store_release(&init_state, 2);
    uint64_t lost = ms_atomic_exchange_acq_rel(&missed, 0);
    if (t && lost)
        ms_atomic_add_relaxed(&t->store->dropped, lost);
    return ms__cap_mode();
}

/* Stop recording in this process (the global tracker keeps what it has). */
static void capture_off(void)
{
    ms__hook_set(MS__HOOK_MODE, MS__CAP_OFF);
    ms_atomic_store_relaxed(&ms__capture_on, false);
    if (ms__cap_tracker)
        ms_atomic_store_relaxed(&ms__cap_tracker->captured, false);
}

/* ----------------------------------------------------------- the arena */

#define ARENA_BYTES ((size_t)1 << 30)
static char *arena, *arena_end;
static char *arena_top;

void *ms__arena_alloc(size_t n, size_t align)
{
    if (!arena) {
        void *m = mmap(NULL, ARENA_BYTES, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        arena = arena_top = m;
        arena_end = arena + ARENA_BYTES;
    }
    if (align < 16)
        align = 16;
    while (align & (align - 1)) // memalign rounds an odd alignment up to a power of two
        align += align & -align;
    // [size][block]: the size sits in the 16 bytes before the block.
    uintptr_t at = ((uintptr_t)arena_top + 16 + align - 1) & ~(uintptr_t)(align - 1);
    if (n > (size_t)(arena_end - (char *)at)) {
        errno = ENOMEM;
        return NULL;
    }
    ((size_t *)at)[-1] = n;
    arena_top = (char *)at + n;
    return (void *)at;
}

bool ms__arena_owns(const void *p)
{
    return arena && (const char *)p >= arena && (const char *)p < arena_end;
}

size_t ms__arena_size(const void *p) { return ((const size_t *)p)[-1]; }

/* ------------------------------------------------------- fatal signals */

static const int fatal_signals[] = {SIGSEGV, SIGBUS,  SIGILL, SIGFPE, SIGABRT,
                                    SIGINT,  SIGTERM, SIGHUP, SIGQUIT};
/* The fatal signals a thread does not cause by what it executes: they can
 * wait until the thread lets go of a lock. */
static const int async_signals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};

static void say(const char *s)
{
    ssize_t r = write(STDERR_FILENO, s, strlen(s));
    (void)r;
}

static bool asynchronous(int sig)
{
    for (size_t i = 0; i < sizeof async_signals / sizeof *async_signals; i++)
        if (sig == async_signals[i])
            return true;
    return false;
}

/* Inside fork(), glibc holds its allocator's locks and the store's fork
 * handlers hold every fold lock: a report written there would wait on one
 * of them (until the 30 s alarm, with no report). So the asynchronous fatal
 * signals are blocked for that stretch, by fork handlers registered after
 * the store's: glibc runs the prepare handlers in the reverse order of
 * registration (ours before the store's takes the locks) and the others in
 * order (ours after the store's has let them go). A signal that arrives
 * meanwhile waits, and the parent writes the report when the mask is back;
 * a signal pending in the parent is not the child's (POSIX). This covers
 * every fork that runs fork handlers (fork, and glibc's daemon and forkpty
 * through its internal one); vfork, posix_spawn and _Fork run none. */
static _Thread_local sigset_t fork_saved_mask;

static void fork_block_signals(void)
{
    sigset_t async;
    sigemptyset(&async);
    for (size_t i = 0; i < sizeof async_signals / sizeof *async_signals; i++)
        sigaddset(&async, async_signals[i]);
    pthread_sigmask(SIG_BLOCK, &async, &fork_saved_mask);
}

static void fork_restore_signals(void) { pthread_sigmask(SIG_SETMASK, &fork_saved_mask, NULL); }

/* A report is being written on the way out of the process (a fatal signal's
 * or _exit's): whoever comes second waits for the end it brings. */
static _Atomic int reporting;

/* Write the report now, on the way out. The thread takes its memory from the
 * crash arena: a fatal signal may have come from inside malloc, and a signal
 * handler that ends the process with _exit may have interrupted it. `dying`:
 * a thread died, and a lock it held must not stop the stream's finish.
 * pre: this thread took `reporting` and is not in a fold. */
static void report_now(bool dying)
{
    int saved = errno;
    tl_reporting = true;
    ms__hook_set(MS__HOOK_MODE, MS__CAP_CRASH);
    ms__clock_calibrate_at_exit(); // no 5 ms wait, here or in a thread calibrating
    if (dying)
        ms__stream_dying();
    ms__tracker_last_export(ms__cap_tracker);
    errno = saved;
}

/* Write the report, then die of the same signal. */
static void on_fatal(int sig)
{
    // On a thread in a fold, the report's own fold would wait on the lock
    // the thread holds. An asynchronous signal comes back when it lets go.
    bool in_fold = ms__store_folding_here();
    if (in_fold && asynchronous(sig)) {
        ms__store_defer_signal(sig);
        return;
    }
    if (tl_reporting) { // a fault in this thread's report (one _exit began): end
        say("memscope: a fault while writing the report: no report\n");
    } else if (atomic_exchange(&reporting, 1) != 0 || !ms__cap_tracker) {
        for (;;) // another thread is writing the report and then ends the process
            pause();
    } else if (in_fold) {
        say("memscope: a fault inside memscope's own fold: no report\n");
    } else {
        char msg[96];
        snprintf(msg, sizeof msg, "memscope: signal %d, writing the report\n", sig);
        say(msg);
        alarm(30); // a lock held by a dead thread must not hang the process forever
        report_now(true);
    }
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    raise(sig); // a fault re-executes and faults again with the default action
}

static void install_fatal_handlers(void)
{
    // An alternate stack, so a stack overflow on the main thread is reported too.
    static char *alt;
    size_t alt_size = 256 * 1024;
    alt = mmap(NULL, alt_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (alt != MAP_FAILED) {
        stack_t st = {.ss_sp = alt, .ss_size = alt_size};
        sigaltstack(&st, NULL);
    }
    for (size_t i = 0; i < sizeof fatal_signals / sizeof *fatal_signals; i++) {
        struct sigaction old;
        if (sigaction(fatal_signals[i], NULL, &old) != 0 || old.sa_handler != SIG_DFL)
            continue; // the program (or its parent) chose something: keep it
        struct sigaction sa = {.sa_handler = on_fatal, .sa_flags = SA_ONSTACK};
        // A second fatal signal on the reporting thread waits: it would find
        // the report begun and wait for it, on the thread that writes it.
        sigemptyset(&sa.sa_mask);
        for (size_t j = 0; j < sizeof fatal_signals / sizeof *fatal_signals; j++)
            sigaddset(&sa.sa_mask, fatal_signals[j]);
        sigaction(fatal_signals[i], &sa, NULL);
    }
}

/* ------------------------------------------------------------ _exit */

/* The process capture records for. A vfork() child runs in its parent's
 * memory until it execs or ends: it must neither write nor take the
 * parent's report (getpid() tells it apart; fork handlers do not run). */
static pid_t own_pid;

/* A process that ends with _exit or _Exit (a forked child, as it should; a
 * program that skips its cleanup; a signal handler that ends the process) or
 * quick_exit runs no atexit handler: the report is written here instead, as
 * exit() would have, if this process has one to write. */
static void report_at_quick_end(void)
{
    ms_tracker *t = ms__cap_tracker;
    if (!t || ms__cap_mode() == MS__CAP_OFF || getpid() != own_pid)
        return;
    if (!ms_atomic_load_relaxed(&t->auto_export) && !ms_atomic_load_relaxed(&t->stream) &&
        !atomic_load(&t->exporter)) // nothing to write, and no exit() writing it now
        return;
    if (tl_reporting) // this thread writes it (an _exit from inside the report's end)
        return;
    if (ms__store_folding_here()) { // a handler inside our fold: its lock is held here
        say("memscope: _exit inside memscope's own fold: no report\n");
        return;
    }
    if (atomic_exchange(&reporting, 1) != 0) {
        for (;;) // another thread is writing the report and then ends the process
            pause();
    }
    report_now(false);
}

/* glibc's exit() and its own internal calls reach glibc's _exit directly,
 * never these: only the program's (and its libraries') calls do. */
__attribute__((visibility("default"), noreturn)) void _exit(int status)
{
    report_at_quick_end();
    for (;;) // what glibc's _exit does
        syscall(SYS_exit_group, status);
}

__attribute__((visibility("default"), noreturn)) void _Exit(int status) { _exit(status); }

/* ---------------------------------------------------------- configuration */

/* "out.json" for pid 42 -> "out.42.json". */
static void per_pid_path(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    if (!dot || dot == (slash ? slash + 1 : path))
        snprintf(out, n, "%s.%ld", path, (long)getpid());
    else
        snprintf(out, n, "%.*s.%ld%s", (int)(dot - path), path, (long)getpid(), dot);
}

/* The report's path. A binary trace is streamed as the program runs (the
 * whole history in bounded memory); the others are written at exit. */
static void set_output(const char *path)
{
    const char *dot = strrchr(path, '.');
    if (dot && strcmp(dot, ".msb") == 0 && !strchr(dot, '/')) {
        ms_clear_error();
        ms_tracker_with_streaming(ms__cap_tracker, path);
        if (ms_last_error())
            fprintf(stderr, "memscope: cannot stream a trace to %s: %s\n", path,
                    ms_last_error_message());
        return;
    }
    ms_tracker_with_auto_export(ms__cap_tracker, path);
    if (ms_last_error() && ms_atomic_load_relaxed(&ms__cap_tracker->auto_export) == NULL)
        fprintf(stderr, "memscope: cannot write a report to %s: %s\n", path,
                ms_last_error_message());
}

/* Drop our library from LD_PRELOAD, so that the programs an untraced process
 * starts do not load it either. */
static void forget_preload(void)
{
    const char *pre = getenv("LD_PRELOAD");
    if (!pre)
        return;
    char keep[4096];
    size_t k = 0;
    const char *p = pre;
    while (*p) {
        size_t len = strcspn(p, ": ");
        const char *base = p;
        for (const char *q = p; q < p + len; q++)
            if (*q == '/')
                base = q + 1;
        bool ours = (size_t)(p + len - base) == strlen("libmemscope_preload.so") &&
                    strncmp(base, "libmemscope_preload.so", (size_t)(p + len - base)) == 0;
        if (!ours && len > 0 && k + len + 2 < sizeof keep) {
            if (k)
                keep[k++] = ':';
            memcpy(keep + k, p, len);
            k += len;
        }
        p += len;
        while (*p == ':' || *p == ' ')
            p++;
    }
    keep[k] = 0;
    if (k)
        setenv("LD_PRELOAD", keep, 1);
    else
        unsetenv("LD_PRELOAD");
}

static bool env_flag(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

/* MEMSCOPE_MONITOR_MS=N: sample the system every N ms (1 .. 3600000) from
 * the start, for the report (docs/capture.md). Off by default: the sampler
 * is a second thread, and a process with two threads makes glibc's malloc
 * take its arena lock. */
static void env_monitor(ms_tracker *t)
{
    const char *v = getenv("MEMSCOPE_MONITOR_MS");
    if (!v || !*v)
        return;
    char *end;
    errno = 0;
    unsigned long ms = strtoul(v, &end, 10);
    if (*end || errno || v[0] == '-' || ms < 1 || ms > MS__MON_MAX_INTERVAL_MS) {
        fprintf(stderr, "memscope: MEMSCOPE_MONITOR_MS=%s is not in 1..%u: ignored\n", v,
                MS__MON_MAX_INTERVAL_MS);
        return;
    }
    ms_clear_error();
    ms_tracker_with_monitor_interval(t, (unsigned)ms);
    const char *h = getenv("MEMSCOPE_MONITOR_HISTORY");
    if (h && *h) {
        errno = 0;
        unsigned long long keep = strtoull(h, &end, 10);
        if (*end || errno || h[0] == '-' || keep < 1 || keep > MS__MON_MAX_HISTORY)
            fprintf(stderr, "memscope: MEMSCOPE_MONITOR_HISTORY=%s is not in 1..%zu: ignored\n", h,
                    MS__MON_MAX_HISTORY);
        else
            ms_tracker_with_monitor_history(t, (size_t)keep);
    }
    ms_clear_error();
    ms_tracker_with_system_monitoring(t);
    if (ms_last_error() != MS_OK)
        fprintf(stderr, "memscope: no system monitor: %s\n", ms_last_error_message());
}

static void fork_child(void)
{
    own_pid = getpid();
    if (ms__cap_mode() == MS__CAP_OFF)
        return;
    if (cfg.run && !cfg.follow_children) {
        // Not traced: stop, and never write the parent's report.
        capture_off();
        ms__free(ms_atomic_exchange_acq_rel(&ms__cap_tracker->auto_export, NULL));
        ms__stream_forget(ms__cap_tracker);
        return;
    }
    // Traced (or a program linked with capture): the child writes its own
    // file, never over its parent's, and without the parent's system
    // samples (the child has no sampler: docs/capture.md).
    ms__mon_forget(&ms__cap_tracker->mon);
    atomic_store(&ms__cap_tracker->exporter, 0); // a parent's thread in its exit's export
    atomic_store(&ms__cap_tracker->end_waits, false);
    char *cur = ms_atomic_exchange_acq_rel(&ms__cap_tracker->auto_export, NULL);
    ms__stream_forget(ms__cap_tracker); // the parent's writer and file
    const char *base = cfg.output[0] ? cfg.output : cur;
    if (base) {
        char path[4200];
        per_pid_path(base, path, sizeof path);
        set_output(path);
    }
    ms__free(cur);
}

static void fork_child_then_restore(void)
{
    fork_child();
    fork_restore_signals();
}

/* Read MEMSCOPE_* once, before main (a constructor: the environment is not
 * set up yet when the dynamic loader makes its first allocations). */
__attribute__((constructor(101))) static void capture_configure(void)
{
    if (ms__cap_state() == MS__CAP_OFF && !ms__cap_tracker)
        return;
    if (cfg.configured)
        return;
    cfg.configured = true;
    own_pid = getpid();
    ms__internal_enter();
    const char *on = getenv("MEMSCOPE_CAPTURE");
    if (on && strcmp(on, "0") == 0) {
        capture_off();
        ms__internal_leave();
        return;
    }
    ms_tracker *t = ms__cap_tracker;
    cfg.run = env_flag("MEMSCOPE_RUN");
    cfg.follow_children = env_flag("MEMSCOPE_FOLLOW_CHILDREN");
    const char *root = getenv("MEMSCOPE_ROOT_PID");
    bool descendant = cfg.run && root && atol(root) != (long)getpid();
    if (descendant && !cfg.follow_children) {
        // A process the traced program started (exec'd from a fork, or
        // spawned): not traced, and neither are its own children. The traced
        // program itself may exec: same pid, so it stays traced.
        capture_off();
        forget_preload();
        ms__internal_leave();
        return;
    }

    env_sampling(t, true);
    // The retained event log serves ms_tracker_events(); a run's report does
    // not read it, so `memscope run` keeps none unless asked.
    const char *keep = getenv("MEMSCOPE_RETAINED_BYTES");
    if (keep && *keep) {
        char *end;
        unsigned long long v = strtoull(keep, &end, 10);
        if (*end)
            fprintf(stderr, "memscope: MEMSCOPE_RETAINED_BYTES=%s is not a number: ignored\n",
                    keep);
        else
            ms_tracker_with_retained_bytes(t, (size_t)v);
    } else if (cfg.run) {
        ms_tracker_with_retained_bytes(t, 0);
    }
    const char *unwind = getenv("MEMSCOPE_UNWIND");
    if (unwind && strcmp(unwind, "fp") == 0)
        ms__stack_set_mode(MS__UNWIND_FP);
    else if (unwind && strcmp(unwind, "unwinder") == 0)
        ms__stack_set_mode(MS__UNWIND_UNWINDER);
    else if (unwind && strcmp(unwind, "backtrace") == 0)
        ms__stack_set_mode(MS__UNWIND_BACKTRACE);
    else if (unwind && *unwind && strcmp(unwind, "auto") != 0)
        fprintf(stderr,
                "memscope: MEMSCOPE_UNWIND=%s is not auto, fp, unwinder or backtrace: ignored\n",
                unwind);
    ms__stack_warm_up();       // loads libgcc_s now, never inside a hook
    ms__stack_find_wrappers(); // operator new, strdup: named where they are called
    uintptr_t lo, hi;
    ms__thread_stack(&lo, &hi);       // the main thread's stack, learnt outside any hook
    (void)ms__real_usable_size(NULL); // looks it up now, never in a signal handler

    const char *out = getenv("MEMSCOPE_OUTPUT");
    if (out && *out) {
        snprintf(cfg.output, sizeof cfg.output, "%s", out);
        if (descendant) {
            char path[4200]; // a traced descendant: its own file
            per_pid_path(out, path, sizeof path);
            set_output(path);
        } else {
            set_output(out);
        }
        install_fatal_handlers();
    }
    env_monitor(t);
    // After the store's handlers, so that ours enclose them (fork_block_signals).
    pthread_atfork(fork_block_signals, fork_restore_signals, fork_child_then_restore);
    at_quick_exit(report_at_quick_end);
    // Recording threads only append; the fold runs beside them. Not while
    // sampling: a second thread would make glibc's malloc take its arena
    // lock at every call its thread cache cannot serve (a process with one
    // thread skips it), which costs more than folding a sampled record here.
    // The folder starts if sampling ends (ms_tracker_with_sampling).
    if (!env_flag("MEMSCOPE_INLINE_FOLD")) {
        if (ms_atomic_load_relaxed(&t->sampling_on))
            ms_atomic_store_relaxed(&t->store->folder_wanted, true);
        else
            ms__store_start_folder(t->store);
    }
    ms__internal_leave();
}
