/* stream.c — ms_tracker_with_streaming: a background writer
 * ("memscope-trace") follows the tracker's retained log and writes every
 * record to a binary trace as the program runs (docs/binary-format.md,
 * "Streaming"). The retained log is the writer's buffer: it evicts only
 * chunks the writer has passed (store.c), so the writer reads records
 * without a lock, and recording waits for it only when the buffer is full.
 * The system samples follow the monitor's history; the trailer is written
 * when the stream is finished (ms_tracker_free, exit, a fatal signal). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"
#include "export/export.h"
#include "monitor/monitor.h"
#include "store/store.h"
#include "trace/trace.h"
#include "tracker/tracker.h"

#define STREAM_MIN_BYTES ((size_t)16 << 20) /* the smallest buffer: ~350 000 records */
#define WRITE_BYTES ((size_t)1 << 20)       /* write once this much is encoded */
#define IDLE_NS 1000000u                    /* the writer's pause when it has caught up */
#define FOLD_NS 10000000u                   /* it folds a store nobody folds this often */
#define FLUSH_NS 100000000u                 /* a partial events block reaches the file this soon */
#define SAMPLES_NS 100000000u

typedef struct ms__stream ms__stream;
struct ms__stream {
    ms_tracker *t;
    ms_event_store *s;
    int fd;
    char path[4096];
    ms__tw *w;
    ms__stream_pos pos;
    pthread_t th;
    bool started;
    _Atomic bool stop, exited;
    uint64_t samples_seen, samples_overwritten;
    bool failed;            /* a write failed: records are counted, no longer written */
    uint64_t records_filed; /* records in blocks that reached the file */
    pid_t pid;              /* of the process whose writer this is */
};

/* The stream whose writer this thread is (its thread, or the one finishing it). */
static _Thread_local ms__stream *tl_writer;

/* Hand what is encoded to the file. A failure is said once; from then on
 * every record is counted as lost instead. */
static void write_out(ms__stream *st)
{
    ms__buf *b = ms__tw_out(st->w);
    if (b->len == 0 || st->failed) {
        b->len = 0;
        return;
    }
    int err = ms__write_all(st->fd, b->data, b->len);
    b->len = 0;
    uint64_t records = ms__tw_records(st->w);
    if (err == 0) {
        st->records_filed = records - ms__tw_pending(st->w);
        return;
    }
    st->failed = true;
    uint64_t lost = records - st->records_filed;
    ms_atomic_add_relaxed(&st->s->stream_io_lost, lost);
    fprintf(stderr, "memscope: streaming to %s failed: %s; later events are counted as lost\n",
            st->path, strerror(err));
}

/* Write the published records at the writer's place until seq `upto`.
 * @return how many it passed. */
static uint64_t consume(ms__stream *st, uint64_t upto)
{
    uint64_t total = 0;
    const ms__rec *run;
    uint64_t lost;
    size_t n;
    while (st->pos.seq < upto && (n = ms__store_stream_take(st->s, &st->pos, &run, &lost)) > 0) {
        if (st->failed) {
            ms_atomic_add_relaxed(&st->s->stream_io_lost, n);
        } else {
            if (lost) // counted by the store when they were lost; marked here in place
                ms__tw_lost(st->w, lost);
            for (size_t i = 0; i < n; i++)
                ms__tw_event(st->w, &run[i]);
            if (ms__tw_out(st->w)->len >= WRITE_BYTES)
                write_out(st);
        }
        total += n;
    }
    return total;
}

/* The store's drain: the log is full and the fold runs on this thread. */
static bool drain(void *ctx, uint64_t upto)
{
    ms__stream *st = ctx;
    if (tl_writer != st)
        return false; // another thread folds: it waits for the writer
    consume(st, upto);
    return true;
}

static void write_samples(ms__stream *st)
{
    ms_system_snapshot *x;
    size_t n;
    uint64_t lost;
    if (ms__mon_samples_since(&st->t->mon, st->samples_seen, &x, &n, &st->samples_seen, &lost) < 0)
        return; // no memory now: the next round tries again
    st->samples_overwritten += lost;
    if (n && !st->failed)
        ms__tw_samples(st->w, x, n);
    ms__free(x);
}

static void *writer_main(void *arg)
{
    ms__stream *st = arg;
    ms__internal_enter(); // nothing this thread allocates is the program's
    tl_writer = st;
    uint64_t last_fold = 0, last_flush = ms__mono_ns(), last_samples = 0;
    const struct timespec idle = {0, IDLE_NS};
    while (!ms_atomic_load_acquire(&st->stop)) {
        uint64_t n = consume(st, UINT64_MAX);
        uint64_t now = ms__mono_ns();
        if (!ms_atomic_load_relaxed(&st->s->bg_fold) && now - last_fold >= FOLD_NS) {
            // Records wait in their threads' buffers until a fold: keep the
            // file current when the program's threads fold seldom.
            ms__store_try_fold(st->s);
            last_fold = now;
        }
        if (now - last_samples >= SAMPLES_NS) {
            write_samples(st);
            last_samples = now;
        }
        if (n < MS__SEG_EVENTS) {
            if (now - last_flush >= FLUSH_NS) {
                ms__tw_flush(st->w);
                write_out(st);
                last_flush = now;
            }
            nanosleep(&idle, NULL);
        }
    }
    tl_writer = NULL;
    ms_atomic_store_release(&st->exited, true);
    return NULL;
}

static void stream_free(ms__stream *st)
{
    if (st->fd >= 0)
        close(st->fd);
    ms__tw_free(st->w);
    ms__free(st);
}

ms_tracker *ms_tracker_with_streaming(ms_tracker *t, const char *path)
{
    if (!t) {
        ms__fail(MS_ENULLTRACKER, "ms_tracker_with_streaming: tracker is NULL");
        return NULL;
    }
    if (!path || !*path) {
        ms__fail(MS_EINVAL, "ms_tracker_with_streaming: path is empty");
        return t;
    }
    if (strlen(path) >= sizeof((ms__stream *)0)->path) {
        ms__fail(MS_EINVAL, "ms_tracker_with_streaming: path too long");
        return t;
    }
    if (ms_atomic_load_acquire(&t->stream)) {
        ms__fail(MS_EINVAL, "ms_tracker_with_streaming: the tracker already streams");
        return t;
    }
    ms__internal_enter(); // under capture the writer's memory is not the program's
    ms__stream *st = ms__calloc(1, sizeof *st);
    int rc = st ? 0 : ms__fail(MS_ENOMEM, "out of memory starting the stream");
    if (st) {
        st->t = t;
        st->s = t->store;
        st->fd = -1;
        st->pid = getpid();
        snprintf(st->path, sizeof st->path, "%s", path);
        st->w = ms__tw_new(t->store->tids);
        if (!st->w)
            rc = ms__fail(MS_ENOMEM, "out of memory starting the stream");
    }
    if (rc == 0 && (rc = ms__file_create(path)) >= 0) {
        st->fd = rc;
        rc = 0;
    }
    if (rc == 0) {
        ms__tw_header(st->w, t, MS__TH_STREAMED);
        ms_sampling_config cfg = ms__tracker_sampling(t);
        ms__tw_config(st->w, cfg, cfg.sample_rate > 0.0 && cfg.sample_rate < 1.0);
        rc = ms__tw_status(st->w);
    }
    if (rc == 0) {
        int err = ms__write_all(st->fd, ms__tw_out(st->w)->data, ms__tw_out(st->w)->len);
        ms__tw_out(st->w)->len = 0;
        if (err)
            rc = ms__fail(MS_EIO, "cannot write %s: %s", path, strerror(err));
    }
    if (rc == 0)
        rc = ms__store_stream_begin(t->store, STREAM_MIN_BYTES, drain, st, &st->pos);
    if (rc == 0) {
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old); // the writer takes no signal of the program's
        int e = pthread_create(&st->th, NULL, writer_main, st);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (e != 0) {
            pthread_mutex_lock(&t->store->fold_lock);
            ms__store_stream_end(t->store);
            pthread_mutex_unlock(&t->store->fold_lock);
            rc = ms__fail(MS_ENOMEM, "cannot start the stream's writer: %s", strerror(e));
        } else {
            pthread_setname_np(st->th, "memscope-trace");
            st->started = true;
            ms_atomic_store_release(&t->stream, st);
        }
    }
    if (rc < 0 && st) {
        if (st->fd >= 0)
            unlink(path); // no trace was started: leave nothing behind
        stream_free(st);
    }
    ms__internal_leave();
    return t;
}

void ms__stream_finish(ms_tracker *t)
{
    if (ms_atomic_load_acquire(&t->stream) && ms_atomic_load_acquire(&t->stream)->pid != getpid()) {
        ms__stream_forget(t); // a child's copy of its parent's stream
        return;
    }
    ms__stream *st = ms_atomic_exchange_acq_rel(&t->stream, NULL);
    if (!st)
        return;
    ms__internal_enter();
    ms_atomic_store_release(&st->stop, true);
    // After a fatal signal the writer may wait on a lock of the dead thread:
    // give it 2 s, then leave the file as it is (it reads to its last block).
    for (int i = 0; i < 2000 && !ms_atomic_load_acquire(&st->exited); i++) {
        const struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    if (!ms_atomic_load_acquire(&st->exited)) {
        ms__internal_leave();
        return;
    }
    pthread_join(st->th, NULL);
    ms_event_store *s = st->s;
    tl_writer = st; // the last folds drain here
    ms__store_lock_folded(s);
    consume(st, UINT64_MAX);
    uint64_t lost = ms__store_stream_take_lost(s);
    ms_memory_stats stats;
    ms__store_stats_locked(s, &stats);
    uint64_t evicted_before = s->evicted_before_stream;
    ms__store_stream_end(s);
    ms__store_unlock(s);
    tl_writer = NULL;
    if (!st->failed)
        ms__tw_lost(st->w, lost);
    write_samples(st);
    // The trailer speaks of the trace: what it holds, and what it lacks.
    stats.retained_events = ms__tw_records(st->w);
    stats.evicted_events = evicted_before + stats.stream_lost_events;
    ms__tw_trailer(st->w, ms__mono_ns() - t->start_mono_ns, st->samples_overwritten, &stats);
    if (ms__tw_status(st->w) < 0 && !st->failed)
        fprintf(stderr, "memscope: streaming to %s: %s\n", st->path, ms_last_error_message());
    write_out(st);
    if (!st->failed && fsync(st->fd) != 0 && errno != EINVAL)
        fprintf(stderr, "memscope: streaming to %s: %s\n", st->path, strerror(errno));
    stream_free(st);
    ms__internal_leave();
}

void ms__stream_forget(ms_tracker *t)
{
    // A child after fork(): the writer thread is the parent's, and so is the
    // file; the child closes its descriptor and keeps nothing else of it.
    ms__stream *st = ms_atomic_exchange_acq_rel(&t->stream, NULL);
    if (!st)
        return;
    ms__internal_enter();
    stream_free(st);
    ms__internal_leave();
}
