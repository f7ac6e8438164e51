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
#include <sys/stat.h>
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
#define IO_QUEUE_BYTES ((size_t)16 << 20)   /* encoded, waiting for the disk, at most */
#define IDLE_NS 1000000u                    /* the writer's pause when it has caught up */
#define FOLD_NS 10000000u                   /* it folds a store nobody has folded for this long */
#define FLUSH_NS 100000000u                 /* a partial events block reaches the file this soon */
#define SAMPLES_NS 100000000u

typedef struct ms__stream ms__stream;
/* Encoded bytes on their way to the file: the writer thread encodes (and
 * so passes the retained log's chunks) while the I/O thread waits on the
 * disk. An encoded event is 5-7 bytes where the log holds 48, so the queue
 * rides out a slow disk for far more events than the log could. */
typedef struct io_buf {
    struct io_buf *next;
    size_t len;
    uint64_t records; /* records whose blocks end in this buffer */
    uint8_t data[];
} io_buf;

struct ms__stream {
    ms_tracker *t;
    ms_event_store *s;
    int fd;
    char path[4096];
    ms__tw *w;
    ms__stream_pos pos;
    pthread_t th, io_th;
    bool io_started;
    _Atomic bool stop, exited;
    _Atomic bool writer_gone; /* finishing: any fold's drain writes (under the lock) */
    bool direct;              /* finishing after a fatal signal: no I/O thread, write here */
    int level;                /* zstd's, read when the stream starts */
    uint64_t samples_seen, samples_overwritten;
    uint64_t records_queued; /* records in blocks handed to the I/O thread (writer) */
    pid_t pid;               /* of the process whose writer this is */
    /* A write failed (or no memory for the queue): from then on records are
     * counted as lost, not written. Set by either thread. */
    _Atomic bool failed;
    /* The queue, under io_lock. */
    pthread_mutex_t io_lock;
    pthread_cond_t io_work, io_room;
    io_buf *q_head, *q_tail;
    size_t q_bytes;
    bool io_stop;
    uint64_t bytes_filed; /* the file's length: whole blocks (I/O thread) */
};

/* The stream whose writer this thread is (its thread, or the one finishing it). */
static _Thread_local ms__stream *tl_writer;
/* A fatal signal is being reported (ms__stream_dying): finishing may give up. */
static _Atomic bool dying;
/* Starting a stream is one call at a time. */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;

static void stream_failed(ms__stream *st, const char *why)
{
    if (!ms_atomic_exchange_acq_rel(&st->failed, true))
        fprintf(stderr, "memscope: streaming to %s failed: %s; later events are counted as lost\n",
                st->path, why);
}

static void file_buffer(ms__stream *st, ms__zctx *z, ms__buf *zb, const uint8_t *data, size_t len,
                        uint64_t records, bool plain);

/* Hand the blocks encoded so far to the I/O thread, waiting for room in its
 * queue: a writer that waits here passes no chunk, so a disk that does not
 * keep up makes recording wait, and then lose (store.c). */
static void write_out(ms__stream *st)
{
    ms__buf *b = ms__tw_out(st->w);
    uint64_t done = ms__tw_records(st->w) - ms__tw_pending(st->w);
    uint64_t records = done > st->records_queued ? done - st->records_queued : 0;
    if (done > st->records_queued)
        st->records_queued = done;
    if (b->len == 0 && records == 0)
        return;
    if (st->direct) { // the I/O thread has stopped: this thread writes
        ms__zctx z = {0};
        ms__buf zb;
        ms__buf_init(&zb);
        file_buffer(st, &z, &zb, (const uint8_t *)b->data, b->len, records, false);
        b->len = 0;
        ms__buf_free(&zb);
        ms__zctx_free(&z);
        return;
    }
    io_buf *q = ms_atomic_load_acquire(&st->failed) ? NULL : ms__malloc(sizeof *q + b->len);
    if (!q) {
        if (!ms_atomic_load_acquire(&st->failed))
            stream_failed(st, "out of memory");
        ms_atomic_add_relaxed(&st->s->stream_io_lost, records);
        b->len = 0;
        return;
    }
    q->next = NULL;
    q->len = b->len;
    q->records = records;
    memcpy(q->data, b->data, b->len);
    b->len = 0;
    pthread_mutex_lock(&st->io_lock);
    while (st->q_head && st->q_bytes + q->len > IO_QUEUE_BYTES)
        pthread_cond_wait(&st->io_room, &st->io_lock);
    if (st->q_tail)
        st->q_tail->next = q;
    else
        st->q_head = q;
    st->q_tail = q;
    st->q_bytes += q->len;
    pthread_cond_signal(&st->io_work);
    pthread_mutex_unlock(&st->io_lock);
}

/* Compress (unless `plain`) and write one buffer of whole blocks; on a
 * failure, cut the file back and count its records as lost. */
static void file_buffer(ms__stream *st, ms__zctx *z, ms__buf *zb, const uint8_t *data, size_t len,
                        uint64_t records, bool plain)
{
    int level = st->level;
    zb->len = 0;
    if (level != 0 && !plain && ms__trace_compress_blocks(z, level, data, len, zb) == 0) {
        data = (const uint8_t *)zb->data;
        len = zb->len;
    }
    int err = ms_atomic_load_acquire(&st->failed) ? -1 : ms__write_all(st->fd, data, len);
    if (err == 0) {
        st->bytes_filed += len;
        return;
    }
    if (err > 0) {
        // Cut a partly written block off: the file ends with the last block
        // that reached it whole (a pipe cannot be cut: its reader stops at
        // the broken block).
        int cut = ftruncate(st->fd, (off_t)st->bytes_filed);
        (void)cut;
        stream_failed(st, strerror(err));
    }
    ms_atomic_add_relaxed(&st->s->stream_io_lost, records);
}

static void *io_main(void *arg)
{
    ms__stream *st = arg;
    ms__internal_enter();
    ms__zctx z = {0};
    ms__buf zb;
    ms__buf_init(&zb);
    pthread_mutex_lock(&st->io_lock);
    for (;;) {
        while (!st->q_head && !st->io_stop)
            pthread_cond_wait(&st->io_work, &st->io_lock);
        io_buf *q = st->q_head;
        if (!q)
            break; // stopped, and the queue is empty
        st->q_head = q->next;
        if (!st->q_head)
            st->q_tail = NULL;
        st->q_bytes -= q->len;
        // Behind (a quarter of the queue, or of the retained log, still
        // waits): write this one plain, so compression, which shares the
        // writer's core, never makes the writer fall behind the program.
        ms_event_store *ls = st->s;
        uint64_t lag = ms_atomic_load_relaxed(&ls->seq) - ms_atomic_load_relaxed(&ls->stream_done);
        bool behind =
            st->q_bytes > IO_QUEUE_BYTES / 4 || lag > ls->chunk_events * ls->max_chunks / 4;
        pthread_cond_broadcast(&st->io_room);
        pthread_mutex_unlock(&st->io_lock);
        // Compressed here, beside the encoder: a spare core does it for free.
        file_buffer(st, &z, &zb, q->data, q->len, q->records, behind);
        ms__free(q);
        pthread_mutex_lock(&st->io_lock);
    }
    pthread_mutex_unlock(&st->io_lock);
    ms__buf_free(&zb);
    ms__zctx_free(&z);
    return NULL;
}

/* Write the published records at the writer's place until seq `upto`; to
 * the file too when `may_write` (never under the fold lock: a slow disk
 * would hold every fold). @return how many it passed. */
static uint64_t consume(ms__stream *st, uint64_t upto, bool may_write)
{
    uint64_t total = 0;
    const ms__rec *run;
    uint64_t lost;
    size_t n;
    while (st->pos.seq < upto && (n = ms__store_stream_take(st->s, &st->pos, &run, &lost)) > 0) {
        if (ms_atomic_load_relaxed(&st->failed)) {
            ms_atomic_add_relaxed(&st->s->stream_io_lost, n);
        } else {
            if (lost) // counted by the store when they were lost; marked here in place
                ms__tw_lost(st->w, lost);
            uint64_t before = ms__tw_records(st->w);
            for (size_t i = 0; i < n; i++)
                ms__tw_event(st->w, &run[i]);
            if (ms_unlikely(ms__tw_failed(st->w))) {
                // No memory to encode: what is encoded and not queued, and
                // what could not be encoded, is lost; nothing more is written.
                uint64_t after = ms__tw_records(st->w);
                stream_failed(st, "out of memory encoding the trace");
                ms_atomic_add_relaxed(&st->s->stream_io_lost,
                                      (after - st->records_queued) + (n - (after - before)));
                st->records_queued = after;
            }
            if (may_write && ms__tw_out(st->w)->len >= WRITE_BYTES)
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
    if (tl_writer != st && !ms_atomic_load_acquire(&st->writer_gone))
        return false;         // another thread folds: it waits for the writer
    consume(st, upto, false); // the writer's loop writes it after the fold
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
    if (n && !ms_atomic_load_relaxed(&st->failed))
        ms__tw_samples(st->w, x, n);
    ms__free(x);
}

static void *writer_main(void *arg)
{
    ms__stream *st = arg;
    ms__internal_enter(); // nothing this thread allocates is the program's
    tl_writer = st;
    uint64_t last_flush = ms__mono_ns(), last_samples = 0;
    uint64_t seen_seq = 0, seq_moved = ms__mono_ns();
    const struct timespec idle = {0, IDLE_NS};
    while (!ms_atomic_load_acquire(&st->stop)) {
        uint64_t n = consume(st, UINT64_MAX, true);
        uint64_t now = ms__mono_ns(), seq = ms_atomic_load_relaxed(&st->s->seq);
        if (seq != seen_seq) {
            seen_seq = seq;
            seq_moved = now;
        }
        if (!ms_atomic_load_relaxed(&st->s->bg_fold) && now - seq_moved >= FOLD_NS) {
            // Records wait in their threads' buffers until a fold: when no
            // fold has brought any for a while, fold, so the file stays
            // current. Not while the program folds: folding from two cores
            // would move the live state between them at every fold.
            ms__store_try_fold(st->s);
            seq_moved = now;
            continue; // write what it brought
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

/* pre: neither thread runs (joined, or a child after fork()). */
static void stream_free(ms__stream *st)
{
    if (st->fd >= 0)
        close(st->fd);
    while (st->q_head) {
        io_buf *q = st->q_head;
        st->q_head = q->next;
        ms__free(q);
    }
    pthread_mutex_destroy(&st->io_lock);
    pthread_cond_destroy(&st->io_work);
    pthread_cond_destroy(&st->io_room);
    ms__tw_free(st->w);
    ms__free(st);
}

/* Stop the I/O thread once it has written the queue. */
static void io_finish(ms__stream *st)
{
    if (!st->io_started)
        return;
    pthread_mutex_lock(&st->io_lock);
    st->io_stop = true;
    pthread_cond_signal(&st->io_work);
    pthread_mutex_unlock(&st->io_lock);
    pthread_join(st->io_th, NULL);
    st->io_started = false;
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
    ms__internal_enter(); // under capture the writer's memory is not the program's
    pthread_mutex_lock(&start_lock);
    if (ms_atomic_load_acquire(&t->stream)) {
        pthread_mutex_unlock(&start_lock);
        ms__internal_leave();
        ms__fail(MS_EINVAL, "ms_tracker_with_streaming: the tracker already streams");
        return t;
    }
    ms__stream *st = ms__calloc(1, sizeof *st);
    int rc = st ? 0 : ms__fail(MS_ENOMEM, "out of memory starting the stream");
    if (st) {
        st->t = t;
        st->s = t->store;
        st->fd = -1;
        st->pid = getpid();
        st->level = ms__trace_zstd_level(); // not in the threads: getenv races setenv
        pthread_mutex_init(&st->io_lock, NULL);
        pthread_cond_init(&st->io_work, NULL);
        pthread_cond_init(&st->io_room, NULL);
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
        st->bytes_filed = ms__tw_out(st->w)->len;
        ms__tw_out(st->w)->len = 0;
        if (err)
            rc = ms__fail(MS_EIO, "cannot write %s: %s", path, strerror(err));
    }
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); // the threads take no signal of the program's
    if (rc == 0) {
        int e = pthread_create(&st->io_th, NULL, io_main, st);
        if (e != 0)
            rc = ms__fail(MS_ENOMEM, "cannot start the stream's writer: %s", strerror(e));
        else
            st->io_started = true;
    }
    if (rc == 0)
        rc = ms__store_stream_begin(t->store, STREAM_MIN_BYTES, drain, st, &st->pos);
    if (rc == 0) {
        int e = pthread_create(&st->th, NULL, writer_main, st);
        if (e != 0) {
            ms__store_lock(t->store);
            ms__store_stream_end(t->store);
            ms__store_unlock(t->store);
            rc = ms__fail(MS_ENOMEM, "cannot start the stream's writer: %s", strerror(e));
        } else {
            pthread_setname_np(st->th, "memscope-trace");
            pthread_setname_np(st->io_th, "memscope-trace-io");
            ms_atomic_store_release(&t->stream, st);
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc < 0 && st) {
        io_finish(st);
        struct stat sb; // no trace was started: leave no file behind (a device stays)
        if (st->fd >= 0 && fstat(st->fd, &sb) == 0 && S_ISREG(sb.st_mode))
            unlink(path);
        stream_free(st);
    }
    pthread_mutex_unlock(&start_lock);
    ms__internal_leave();
    return t;
}

void ms__stream_dying(void) { ms_atomic_store_release(&dying, true); }

/* A child's copy of its parent's stream (after fork()): the writer threads
 * are the parent's, and so is the file. The child closes its descriptor and
 * leaves the rest as it is: the queue may have been mid-change at the fork. */
static void forget_copy(ms__stream *st)
{
    if (st && st->fd >= 0)
        close(st->fd);
}

void ms__stream_finish(ms_tracker *t)
{
    ms__stream *st = ms_atomic_exchange_acq_rel(&t->stream, NULL);
    if (!st)
        return;
    if (st->pid != getpid()) {
        forget_copy(st);
        return;
    }
    ms__internal_enter();
    ms_atomic_store_release(&st->stop, true);
    ms_event_store *s = st->s;
    if (ms_atomic_load_acquire(&dying)) {
        // A fatal signal: the writer, or the lock, may wait on the thread
        // that died. Give each a second, else leave the file as it is (it
        // reads to its last whole block) and everything allocated: the
        // process ends now.
        for (int i = 0; i < 1000 && !ms_atomic_load_acquire(&st->exited); i++) {
            const struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL);
        }
        if (!ms_atomic_load_acquire(&st->exited) || !ms__store_lock_within(s, 1000000000u)) {
            ms__internal_leave();
            return;
        }
        ms__store_unlock(s);
    }
    pthread_join(st->th, NULL);
    if (ms_atomic_load_acquire(&dying)) {
        // This thread allocates from capture's crash arena now, whose blocks
        // the I/O thread must never free: it writes its queue and stops,
        // and this thread writes the rest itself.
        io_finish(st);
        st->direct = true;
    }
    // From here the drains of any fold write (all under the lock, as is the
    // last pass below): no fold waits for a writer that has stopped.
    ms_atomic_store_release(&st->writer_gone, true);
    tl_writer = st;
    ms__store_lock_folded(s);
    consume(st, UINT64_MAX, false);
    uint64_t lost = ms__store_stream_take_lost(s);
    ms_memory_stats stats;
    ms__store_stats_locked(s, &stats);
    uint64_t evicted_before = s->evicted_before_stream;
    ms__store_stream_end(s);
    ms__store_unlock(s);
    tl_writer = NULL;
    if (!ms_atomic_load_relaxed(&st->failed))
        ms__tw_lost(st->w, lost);
    write_samples(st);
    // The trailer speaks of the trace: what it holds, and what it lacks.
    stats.retained_events = ms__tw_records(st->w);
    stats.evicted_events = evicted_before + stats.stream_lost_events;
    ms__tw_trailer(st->w, ms__mono_ns() - t->start_mono_ns, st->samples_overwritten, &stats);
    if (ms__tw_status(st->w) < 0)
        stream_failed(st, ms_last_error_message());
    write_out(st);
    io_finish(st);
    if (!ms_atomic_load_relaxed(&st->failed) && fsync(st->fd) != 0 && errno != EINVAL)
        fprintf(stderr, "memscope: streaming to %s: %s\n", st->path, strerror(errno));
    stream_free(st);
    ms__internal_leave();
}

void ms__stream_forget(ms_tracker *t) { forget_copy(ms_atomic_exchange_acq_rel(&t->stream, NULL)); }
