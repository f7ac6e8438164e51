/* memscope.h — the one public header of memscope, a memory tracker for C.
 *
 *   ms_tracker *t = TRACKER();
 *   int *data = malloc(5 * sizeof *data);
 *   TRACK(t, data);                        // name "data", type "int *", file, line
 *   ms_analysis_report *r = ms_analyze(t);
 *   ms_report_free(r);
 *   ms_tracker_free(t);
 *
 * Ownership: every pointer returned by a function named *_new, ms_analyze,
 * ms_tracker_events, ms_event_store_snapshot or ms_snapshot_* builders is the
 * caller's and is released by the matching *_free function; every *_free
 * accepts NULL. Arrays returned by ms_snapshot_allocations and
 * ms_snapshot_threads are borrowed from the snapshot.
 *
 * Errors: functions returning int return 0 or a negative MS_E... code;
 * functions returning a pointer return NULL; both set the thread-local
 * ms_last_error(). No function aborts the program on bad input.
 */
#ifndef MEMSCOPE_H
#define MEMSCOPE_H

#include <stdbool.h> /* bool */
#include <stddef.h>  /* size_t */
#include <stdint.h>  /* uint64_t, uintptr_t */
#include <stdio.h>   /* FILE, for ms_report_print */

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- version */
#define MS_VERSION_MAJOR 0
#define MS_VERSION_MINOR 1
#define MS_VERSION_PATCH 0
#define MS_VERSION_NUMBER (MS_VERSION_MAJOR * 10000 + MS_VERSION_MINOR * 100 + MS_VERSION_PATCH)
#define MS_VERSION_STRING "0.1.0"

#if defined(_WIN32)
#define MS_API
#elif defined(__GNUC__)
#define MS_API __attribute__((visibility("default")))
#else
#define MS_API
#endif

#if defined(__GNUC__)
#define MS_NODISCARD __attribute__((warn_unused_result))
#else
#define MS_NODISCARD
#endif

/* The pointer argument n is an address only, never read through: keeps gcc
 * from warning that a freshly malloc'd (uninitialised) block is "used". */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 10
#define MS_ADDRESS_ONLY(n) __attribute__((access(none, n)))
#define MS_ADDRESS_ONLY2(n, m) __attribute__((access(none, n), access(none, m)))
#else
#define MS_ADDRESS_ONLY(n)
#define MS_ADDRESS_ONLY2(n, m)
#endif

/** @return MS_VERSION_NUMBER of the library that was linked. */
MS_API unsigned ms_version(void);
/** @return MS_VERSION_STRING of the library that was linked (static storage). */
MS_API const char *ms_version_string(void);

/* ----------------------------------------------------------------- errors */
/* X(name, value, message): the pinned error codes and their texts. */
#define MS_ERROR_MAP(X)                                                                            \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(EIO, -3, "input/output error")                                                               \
    X(ENOTHEAP, -4, "pointer is not a live heap block")                                            \
    X(ERANGE, -5, "value out of range")                                                            \
    X(ENOTSUP, -6, "operation not supported")                                                      \
    X(ENULLTRACKER, -7, "tracker is NULL")                                                         \
    X(ENULLPTR, -8, "pointer is NULL")                                                             \
    X(ECORRUPT, -9, "corrupt trace file")

enum ms_error_code {
    MS_OK = 0,
#define MS__ERROR_ENUM(name, value, text) MS_##name = (value),
    MS_ERROR_MAP(MS__ERROR_ENUM)
#undef MS__ERROR_ENUM
};

/** @return the code of the last failure in the calling thread, 0 if none.
 *  Like errno: set by a failing call, never reset by a succeeding one. */
MS_API int ms_last_error(void);
/** @return a detailed message for the last failure in the calling thread
 *  (for example the path and the system's reason), "" if none. Valid until the
 *  thread's next failing call. */
MS_API const char *ms_last_error_message(void);
/** @return a static description of `code` ("unknown error" if it is not one). */
MS_API const char *ms_strerror(int code);
/** Forget the calling thread's last error (ms_last_error() returns 0 again). */
MS_API void ms_clear_error(void);

/* ------------------------------------------------------------------ types */
typedef struct ms_tracker ms_tracker;                 /* opaque */
typedef struct ms_event_store ms_event_store;         /* opaque */
typedef struct ms_snapshot_engine ms_snapshot_engine; /* opaque */
typedef struct ms_memory_snapshot ms_memory_snapshot; /* opaque */

/* A call site of TRACK: compile-time literals, one static record per call. */
typedef struct ms_site {
    const char *name; /* "data" */
    const char *type; /* "int *" */
    const char *file; /* __FILE__ */
    unsigned line;    /* __LINE__ */
    const char *func; /* __func__ */
} ms_site;

typedef struct ms_sampling_config {
    double sample_rate;      /* 0.0 .. 1.0: the share of TRACK calls recorded */
    bool capture_call_stack; /* stacks are recorded once capture lands */
    size_t max_stack_depth;
} ms_sampling_config;

typedef enum ms_event_type {
    MS_EVENT_ALLOCATE,
    MS_EVENT_DEALLOCATE,
    MS_EVENT_REALLOCATE
} ms_event_type;

/* The public view of one event; how the store keeps it is internal. */
typedef struct ms_memory_event {
    uint64_t timestamp; /* ns since the Unix epoch */
    ms_event_type type;
    uintptr_t ptr;     /* the block (the new one for a reallocation) */
    uintptr_t old_ptr; /* reallocation only */
    size_t size, old_size;
    uint64_t thread_id;  /* the kernel thread id for recorded events */
    const ms_site *site; /* NULL when not from TRACK */
} ms_memory_event;

typedef struct ms_memory_stats {
    size_t total_allocations, total_deallocations, active_allocations;
    uint64_t total_allocated, total_deallocated; /* bytes */
    uint64_t current_memory, peak_memory;        /* bytes */
    size_t unmatched_deallocations;              /* frees of blocks never seen */
    /* appended fields */
    uint64_t dropped_events;        /* events that could not be recorded at all */
    uint64_t evicted_events;        /* events pushed out of the retained log (figures stay exact) */
    uint64_t retained_events;       /* events the retained log holds now */
    uint64_t ignored_deallocations; /* frees of unknown blocks while sampling (not errors) */
    uint64_t replaced_allocations;  /* TRACKs of an address whose block was never untracked */
    uint64_t track_errors;          /* TRACK/UNTRACK calls rejected (NULL, not heap, ...) */
    uint64_t sampled_out;           /* TRACK calls skipped by sampling (0 while rate is 1.0) */
    /* appended with capture (docs/capture.md); 0 without it */
    uint64_t unseen_deallocations; /* frees of blocks capture never saw allocated (allocated
                                      before capture started): not errors */
    uint64_t null_deallocations;   /* free(NULL) and realloc(NULL, 0)-like no-ops */
    uint64_t failed_allocations;   /* malloc-family calls that returned NULL */
    /* appended with streaming (ms_tracker_with_streaming); 0 without it */
    uint64_t stream_lost_events; /* events the trace lacks: the disk did not keep up, or a
                                    write failed (figures stay exact) */
} ms_memory_stats;

typedef struct ms_active_allocation {
    uintptr_t ptr;
    size_t size;
    uint64_t allocated_at; /* ns since the Unix epoch */
    uint64_t thread_id;    /* the thread that allocated it */
    const ms_site *site;   /* NULL when the block was not named */
    uint32_t stack_id;     /* appended: its allocation's stack (ms_stack_frames), 0 if none */
} ms_active_allocation;

typedef struct ms_thread_memory_stats {
    uint64_t thread_id;
    size_t allocation_count;
    uint64_t total_allocated, total_deallocated; /* bytes allocated by it, and of those freed */
    uint64_t current_memory, peak_memory;
    size_t deallocation_count; /* appended: frees of blocks it allocated */
} ms_thread_memory_stats;

typedef struct ms_allocation_hotspot {
    const char *var_name, *type_name; /* "?" when the block was not named */
    size_t total_size, allocation_count;
    const char *location; /* "file.c:42", NULL if unknown */
    /* appended fields */
    const char *function;             /* NULL if unknown */
    size_t active_count, active_size; /* still live */
} ms_allocation_hotspot;

/* Blocks alive when the report was made (leaks, at exit), grouped by call site
 * and allocation stack. */
typedef struct ms_leak {
    size_t count;              /* live blocks in the group */
    uint64_t bytes;            /* their bytes */
    const char *var_name;      /* the TRACK name, NULL when not named */
    const char *type_name;     /* NULL when not named */
    const char *location;      /* "file.c:42" of TRACK, else of the allocating frame when
                                  known, NULL otherwise */
    const char *function;      /* the function that allocated, NULL if unknown */
    uint32_t stack_id;         /* 0 when no stack was recorded */
    const char *const *frames; /* symbolized stack, innermost first ("fn (file.c:42)") */
    size_t frame_count;
} ms_leak;

typedef struct ms_system_snapshot {
    uint64_t timestamp;          /* ns since the Unix epoch */
    double cpu_usage_percent;    /* this process, % of one core */
    uint64_t memory_usage_bytes; /* this process's resident set */
    double memory_usage_percent; /* that, over the machine's memory */
    size_t thread_count;         /* this process's threads */
    uint64_t disk_read_bps, disk_write_bps;
    uint64_t network_rx_bps, network_tx_bps;
    double gpu_usage_percent;
    uint64_t gpu_memory_used, gpu_memory_total; /* 0 where no GPU is found */
    /* appended fields; docs/system-metrics.md says what each one measures */
    uint64_t interval_ns;       /* the window the rates cover; 0: the baseline sample */
    double machine_cpu_percent; /* all CPUs busy, % of the whole machine (0..100) */
    uint64_t machine_memory_used, machine_memory_total;     /* MemTotal - MemAvailable, MemTotal */
    uint64_t machine_disk_read_bps, machine_disk_write_bps; /* all physical disks */
    uint64_t loopback_rx_bps, loopback_tx_bps;              /* the "lo" interface */
    uint32_t cpu_count; /* online CPUs: cpu_usage_percent is at most 100 x this */
    uint32_t gpu_count; /* NVML devices read */
    uint32_t missing;   /* MS_METRIC_* bits that could not be read: their fields are 0 */
    bool gpu_available; /* NVML was loaded and answered; else the gpu_ fields are 0 */
} ms_system_snapshot;

/* Bits of ms_system_snapshot.missing: a source the monitor could not read. */
enum ms_metric {
    MS_METRIC_PROCESS_CPU = 1u << 0,    /* CLOCK_PROCESS_CPUTIME_ID: cpu_usage_percent */
    MS_METRIC_PROCESS_STAT = 1u << 1,   /* /proc/self/stat: memory_usage_bytes, thread_count */
    MS_METRIC_PROCESS_IO = 1u << 2,     /* /proc/self/io: disk_read_bps, disk_write_bps */
    MS_METRIC_MACHINE_CPU = 1u << 3,    /* /proc/stat: machine_cpu_percent, cpu_count */
    MS_METRIC_MACHINE_MEMORY = 1u << 4, /* /proc/meminfo: machine_memory_*, memory_usage_percent
                                           (which also needs MS_METRIC_PROCESS_STAT) */
    MS_METRIC_MACHINE_DISK = 1u << 5,   /* /proc/diskstats: machine_disk_*_bps */
    MS_METRIC_NETWORK = 1u << 6         /* /proc/net/dev: network_*_bps, loopback_*_bps */
};

typedef struct ms_analysis_report {
    size_t total_allocations, total_deallocations, active_allocations;
    uint64_t peak_memory_bytes, current_memory_bytes;
    double allocation_rate_per_sec, deallocation_rate_per_sec;
    ms_allocation_hotspot *hotspots;
    size_t hotspot_count;
    ms_system_snapshot *system_snapshots;
    size_t system_snapshot_count;
    /* appended fields */
    uint64_t total_allocated_bytes, total_deallocated_bytes;
    size_t unmatched_deallocations;
    uint64_t dropped_events, evicted_events;
    double sample_rate;  /* the rate in force when the report was made */
    bool is_estimate;    /* counts and bytes above are scaled by 1/sample_rate */
    double duration_sec; /* since the tracker was created */
    size_t thread_count;
    uint64_t system_snapshots_overwritten; /* oldest samples lost to the history bound */
    ms_leak *leaks; /* live blocks grouped by site and stack, most bytes first */
    size_t leak_count;
    size_t leaked_blocks; /* = active_allocations: the sum over leaks */
    uint64_t leaked_bytes;
} ms_analysis_report;

/* ---------------------------------------------------------------- tracker */

/** Create a tracker that records every TRACK (sample rate 1.0, no stacks,
 *  retained log of 64 MiB). One tracker is shared by any number of threads.
 *  @return the tracker (free with ms_tracker_free), NULL on failure. */
MS_API MS_NODISCARD ms_tracker *ms_tracker_new(void);

/** The process-wide tracker, created on first use and never freed; if it has
 *  an auto-export path the report is written at process exit (atexit; with
 *  capture linked or preloaded, also at _exit, _Exit, quick_exit and a fatal
 *  signal: docs/capture.md). ms_tracker_free() on it does nothing. Thread-safe. */
MS_API ms_tracker *ms_tracker_global(void);

/** Set the sampling configuration. A rate outside [0, 1] (or NaN) is
 *  MS_ERANGE and leaves the tracker unchanged. Set it before recording:
 *  reports scale by the rate in force when they are made.
 *  @return t, so calls chain (NULL if t is NULL). */
MS_API ms_tracker *ms_tracker_with_sampling(ms_tracker *t, ms_sampling_config cfg);

/** Seed the sampling generator for reproducible runs (tests). Each thread
 *  seeds its own generator from this seed and the order it first recorded in.
 *  @return t. */
MS_API ms_tracker *ms_tracker_with_sampling_seed(ms_tracker *t, uint64_t seed);

/** Write a report to `path` when the tracker is freed (the global tracker: at
 *  process exit). The format comes from the extension: .json, .html or .msb
 *  (ms_export_binary: what the tracker retains then; for the whole run, see
 *  ms_tracker_with_streaming).
 *  An unknown extension is MS_ENOTSUP and leaves the tracker unchanged.
 *  A failed auto-export prints one line to stderr and sets ms_last_error().
 *  @return t. */
MS_API ms_tracker *ms_tracker_with_auto_export(ms_tracker *t, const char *path);

/** Stream every event to the binary trace `path` (docs/binary-format.md) as
 *  the program runs: a background thread ("memscope-trace") writes what the
 *  tracker records, in order, so the file holds the whole history of a long
 *  run while the tracker's memory stays bounded. The retained event log
 *  (ms_tracker_with_retained_bytes; at least 16 MiB while streaming) is the
 *  writer's buffer, and up to 16 MiB of encoded blocks wait for the disk:
 *  when both are full, recording waits for the writer while it makes
 *  progress; once it has not for 100 ms (the disk does not keep up), events
 *  are lost to the trace (not to the
 *  figures), counted in stream_lost_events and marked in the file. The
 *  trace starts with the events the tracker retains now and is finished
 *  (samples, totals) by ms_tracker_free or, for the global tracker, at exit;
 *  a process that dies first leaves a trace that reads up to its last whole
 *  block. A write error (disk full) stops the writing, prints one line to
 *  stderr, and counts every later event as lost. Errors: MS_EINVAL (NULL or
 *  empty path, already streaming), MS_EIO (the file cannot be created; the
 *  message says why), MS_ENOMEM. On error the tracker is unchanged.
 *  @return t. */
MS_API ms_tracker *ms_tracker_with_streaming(ms_tracker *t, const char *path);

/** Bound the retained event log to `bytes` (default 64 MiB; 0 keeps none).
 *  Past it the oldest events are evicted and counted; figures stay exact.
 *  Call before recording. @return t. */
MS_API ms_tracker *ms_tracker_with_retained_bytes(ms_tracker *t, size_t bytes);

/** The system monitor's defaults: a sample every 100 ms, the last 6000
 *  samples (10 minutes at 100 ms) kept for reports. */
#define MS_MONITOR_DEFAULT_INTERVAL_MS 100u
#define MS_MONITOR_DEFAULT_HISTORY 6000u

/** Start sampling this process and the machine (CPU, memory, threads, disk,
 *  network, GPU) in the background, every interval (default 100 ms). One
 *  thread, "memscope-mon", samples for every monitoring tracker of the
 *  process; it runs while at least one tracker monitors. A baseline is read
 *  at once, so ms_current_system_snapshot() answers from this call on. The
 *  first call of the process loads NVML if it is installed. In a child after
 *  fork() monitoring is off until this is called again. Failure (MS_ENOMEM:
 *  no thread could be started, or no memory for the history) sets
 *  ms_last_error(). docs/system-metrics.md has the details. @return t. */
MS_API ms_tracker *ms_tracker_with_system_monitoring(ms_tracker *t);

/** Sample every `interval_ms` milliseconds (1 .. 3600000, else MS_ERANGE).
 *  Before or while monitoring; a running monitor switches at its next sample.
 *  @return t. */
MS_API ms_tracker *ms_tracker_with_monitor_interval(ms_tracker *t, unsigned interval_ms);

/** Keep the last `samples` samples for reports (default 6000; 1 .. 2^24, else
 *  MS_ERANGE). Older ones are overwritten and counted in the report's
 *  system_snapshots_overwritten. Shrinking keeps the newest. @return t. */
MS_API ms_tracker *ms_tracker_with_monitor_history(ms_tracker *t, size_t samples);

/** Stop the monitor for this tracker (its samples stay for reports). Returns
 *  once the tracker is no longer sampled; the thread ends with the last
 *  monitoring tracker. ms_tracker_free() does this. Accepts NULL. */
MS_API void ms_tracker_stop_system_monitoring(ms_tracker *t);

/** Stop its system monitor, write the auto-export (if set) and release the
 *  tracker. Threads must have stopped using it. Accepts NULL. Does nothing for ms_tracker_global().
 */
MS_API void ms_tracker_free(ms_tracker *t);

/** Pass as `size` to ms_track_as to ask the allocator for the block's size. */
#define MS_SIZE_UNKNOWN ((size_t)-1)

/** Record that `ptr` is a live block of `size` bytes named by `site`.
 *  size == MS_SIZE_UNKNOWN asks the allocator (glibc malloc_usable_size).
 *  Errors (counted in ms_tracker_stats().track_errors, and set in
 *  ms_last_error): NULL tracker, NULL ptr, a pointer that is provably not a
 *  live heap block, a size of 2^48 bytes or more. Lock-free, thread-safe. */
MS_API void ms_track_as(ms_tracker *t, const void *ptr, size_t size, const ms_site *site)
    MS_ADDRESS_ONLY(2);

/** Record that the block at `ptr` is freed (for programs without capture). */
MS_API void ms_untrack(ms_tracker *t, const void *ptr) MS_ADDRESS_ONLY(2);

/** Record that `old_ptr` was reallocated to `new_ptr` of `new_size` bytes
 *  (MS_SIZE_UNKNOWN asks the allocator). The block keeps its name. */
MS_API void ms_track_realloc(ms_tracker *t, const void *old_ptr, const void *new_ptr,
                             size_t new_size) MS_ADDRESS_ONLY2(2, 3);

/** realloc(ptr, size) and record the move in one call, so the caller never
 *  touches the old pointer after realloc (gcc's -Wuse-after-free warns when
 *  ms_track_realloc is passed it). The block keeps its name. On failure
 *  returns NULL, leaves the old block as it was and records nothing. A NULL
 *  ptr is a plain allocation; size 0 frees the block (and records the free).
 *  @return the new block, to be freed with free(). */
MS_API MS_NODISCARD void *ms_realloc(ms_tracker *t, void *ptr, size_t size);

/* --------------------------------------------------------------- sampling */
MS_API ms_sampling_config ms_sampling_demo(void);             /* 0.1,  no stacks, depth 5  */
MS_API ms_sampling_config ms_sampling_full(void);             /* 1.0,  stacks,    depth 20 */
MS_API ms_sampling_config ms_sampling_high_performance(void); /* 0.01, no stacks, depth 0  */

/* ---------------------------------------------------------------- reports */

/** Analyse everything recorded so far: totals, current and peak, rates per
 *  second since the tracker started, hotspots by call site (bytes, then
 *  count), system snapshots. Figures are scaled when sampling (is_estimate).
 *  @return the report (free with ms_report_free), NULL on failure. */
MS_API MS_NODISCARD ms_analysis_report *ms_analyze(ms_tracker *t);
MS_API void ms_report_free(ms_analysis_report *r);

/** Print a short human-readable summary of `r` to `out`. @return 0 or MS_E... */
MS_API int ms_report_print(const ms_analysis_report *r, FILE *out);

/** @return the exact recorded figures (not scaled); zeros if t is NULL. */
MS_API ms_memory_stats ms_tracker_stats(ms_tracker *t);

/** @return a copy of the retained events in order (free with ms_events_free);
 *  *count receives their number. NULL with *count 0 when there are none. */
MS_API MS_NODISCARD ms_memory_event *ms_tracker_events(ms_tracker *t, size_t *count);

/** @return the latest system sample of this tracker's monitor: the baseline
 *  (interval_ns 0, rates 0) until the first interval has passed; all zeros
 *  (timestamp 0) if monitoring never started. Never blocks, never torn:
 *  tens of nanoseconds, safe from any thread. */
MS_API ms_system_snapshot ms_current_system_snapshot(ms_tracker *t);

/* ------------------------------------------------------ capture and stacks */

/** @return true while the malloc family is being recorded into
 *  ms_tracker_global() (libmemscope_capture.a or libmemscope_preload.so, and
 *  MEMSCOPE_CAPTURE is not 0). docs/capture.md. */
MS_API bool ms_capture_active(void);

/** Copy the return addresses of stack `id` (ms_active_allocation.stack_id,
 *  ms_leak.stack_id), innermost first, at most `max` of them, into `frames`.
 *  Stacks are recorded under capture and by TRACK when the sampling config
 *  asks for them. @return the stack's depth, 0 for an unknown id. */
MS_API size_t ms_stack_frames(uint32_t id, uintptr_t *frames, size_t max);

/** Describe the code address `pc` (a return address) in `buf`:
 *  "function (file.c:42)" with debug information, else "function+0x1a (lib.so)",
 *  else "0x... (lib.so+0x1234)". @return 0, MS_EINVAL (NULL buf or size 0). */
MS_API int ms_symbolize(uintptr_t pc, char *buf, size_t size);

/* ------------------------------------------------------ events and stores */

/** A new event store: per-thread lock-free buffers, an exact live state and a
 *  retained log of 64 MiB. @return NULL on failure. */
MS_API MS_NODISCARD ms_event_store *ms_event_store_new(void);

/** Record `e` (its type, pointers, sizes, thread_id and site). The store
 *  stamps the event with its own clock when recorded: e.timestamp is not
 *  kept. Lock-free from any thread. */
MS_API void ms_event_store_record(ms_event_store *s, ms_memory_event e);

/** @return a copy of the retained events in order (free with ms_events_free). */
MS_API MS_NODISCARD ms_memory_event *ms_event_store_snapshot(ms_event_store *s, size_t *count);
MS_API void ms_events_free(ms_memory_event *events);
MS_API void ms_event_store_free(ms_event_store *s);

/** @return the tracker's store, borrowed: it lives as long as t. */
MS_API ms_event_store *ms_tracker_event_store(ms_tracker *t);

/** Build events stamped with the current time (ns since the Unix epoch). */
MS_API ms_memory_event ms_event_allocate(uintptr_t ptr, size_t size, uint64_t thread_id);
MS_API ms_memory_event ms_event_deallocate(uintptr_t ptr, size_t size, uint64_t thread_id);
MS_API ms_memory_event ms_event_reallocate(uintptr_t old_ptr, uintptr_t new_ptr, size_t old_size,
                                           size_t new_size, uint64_t thread_id);

/* -------------------------------------------------------------- snapshots */

/** An engine that builds snapshots of `s` (borrowed, not freed by the engine). */
MS_API MS_NODISCARD ms_snapshot_engine *ms_snapshot_engine_new(ms_event_store *s);
/** Snapshot the store's live state: O(live blocks), never a replay. */
MS_API MS_NODISCARD ms_memory_snapshot *ms_snapshot_engine_build(ms_snapshot_engine *e);
/** Replay `n` events in the given order: O(n). */
MS_API MS_NODISCARD ms_memory_snapshot *ms_snapshot_build_from_events(const ms_memory_event *ev,
                                                                      size_t n);
MS_API size_t ms_snapshot_active_count(const ms_memory_snapshot *s);
MS_API uint64_t ms_snapshot_current_memory(const ms_memory_snapshot *s);
MS_API uint64_t ms_snapshot_peak_memory(const ms_memory_snapshot *s);
MS_API ms_memory_stats ms_snapshot_stats(const ms_memory_snapshot *s);
/** Borrowed arrays, valid until ms_snapshot_free; in no particular order. */
MS_API const ms_active_allocation *ms_snapshot_allocations(const ms_memory_snapshot *s,
                                                           size_t *count);
MS_API const ms_thread_memory_stats *ms_snapshot_threads(const ms_memory_snapshot *s,
                                                         size_t *count);
MS_API void ms_snapshot_free(ms_memory_snapshot *s);
MS_API void ms_snapshot_engine_free(ms_snapshot_engine *e);

/* ---------------------------------------------------------------- exports */

/** Write the JSON report to `path` (parent directories are created). It is
 *  written beside the target and renamed, so a failure never leaves a partial
 *  file. @return 0 or MS_E... (message in ms_last_error_message). */
MS_API MS_NODISCARD int ms_export_json(ms_tracker *t, const char *path);

/** Write the binary trace (docs/binary-format.md) of what the tracker holds:
 *  the retained events (ms_tracker_events) with their call stacks, symbolized
 *  now, the system samples, the sampling configuration and the run's totals.
 *  Written like ms_export_json. @return 0 or MS_E... */
MS_API MS_NODISCARD int ms_export_binary(ms_tracker *t, const char *path);

/* ------------------------------------------------------- trace reader */

typedef struct ms_trace ms_trace; /* opaque: an open .msb file */

typedef struct ms_trace_info {
    unsigned version;       /* the file's format version */
    uint64_t pid;           /* the traced process */
    uint64_t start_ns;      /* when its tracker started, ns since the Unix epoch */
    uint64_t resolution_ns; /* of event timestamps: 1, or about 1 ms under capture */
    const char *program;    /* its base name ("" if unknown) */
    ms_sampling_config sampling;
    bool is_estimate;         /* sampled: counts scale by 1 / sampling.sample_rate */
    bool complete;            /* the trailer was read: `stats` and the totals are the run's */
    bool truncated;           /* the file ends before its trailer: all whole blocks were read */
    uint64_t events, samples; /* items read so far */
    /* from the trailer (complete only): */
    ms_memory_stats stats;        /* the tracker's figures when the trace was written */
    uint64_t written_at_ns;       /* when it was written, ns since the Unix epoch */
    uint64_t duration_ns;         /* how long the tracker had been running then */
    uint64_t samples_overwritten; /* older system samples the monitor had dropped */
    /* appended with streaming */
    bool streamed;        /* written as the run went (ms_tracker_with_streaming) */
    uint64_t lost_events; /* events the writer could not keep (the disk fell behind), read
                             so far: their places are marked in the file */
} ms_trace_info;

typedef enum ms_trace_item_kind { MS_TRACE_EVENT = 1, MS_TRACE_SAMPLE = 2 } ms_trace_item_kind;

typedef struct ms_trace_item {
    ms_trace_item_kind kind;
    ms_memory_event event;     /* MS_TRACE_EVENT; event.site lives until ms_trace_close */
    uint32_t stack_id;         /* its stack (ms_trace_stack), 0 if none */
    bool captured;             /* recorded by the malloc hooks */
    ms_system_snapshot sample; /* MS_TRACE_SAMPLE */
} ms_trace_item;

/** Open a trace for reading. @return 0 and *out, or MS_EIO (cannot read),
 *  MS_ECORRUPT (not a trace, or a damaged header: the message says where) or
 *  MS_ENOTSUP (a newer format version). */
MS_API MS_NODISCARD int ms_trace_open(const char *path, ms_trace **out);
/** The next event or sample, in the order written. @return 1 with *item, 0 at
 *  the end (of the file or of its last whole block: see `truncated`), or
 *  MS_ECORRUPT / MS_EIO / MS_ENOMEM with a message naming the byte offset. */
MS_API int ms_trace_next(ms_trace *tr, ms_trace_item *item);
MS_API const ms_trace_info *ms_trace_get_info(const ms_trace *tr);
/** The frames of stack `id` ("function (file.c:42)", innermost first) in
 *  *frames, valid until ms_trace_close. @return the depth, 0 for an unknown id. */
MS_API size_t ms_trace_stack(const ms_trace *tr, uint32_t id, const char *const **frames);
MS_API void ms_trace_close(ms_trace *tr); /* accepts NULL */

/** A tracker holding the run a trace recorded: its live state rebuilt from the
 *  trace's events (in their order, in the traced process's clock), its system
 *  samples, sampling configuration and counters. ms_analyze, the snapshots and
 *  the exports of it show that run; a trace that holds the whole run (nothing
 *  evicted before it was written) gives the same JSON as an export made then,
 *  but for the times that say when a report was made (generated_at_ns, age_ns,
 *  duration_sec and the rates). A truncated trace gives what its whole blocks
 *  hold. Free with ms_tracker_free. @return NULL with the error of
 *  ms_trace_open or ms_trace_next. */
MS_API MS_NODISCARD ms_tracker *ms_tracker_from_trace(const char *path);

/** Write the HTML dashboard to `path`: one self-contained page (no network
 *  request, no file beside it) with the report's figures, charts and tables
 *  (docs/dashboard.md). Written like ms_export_json. @return 0 or MS_E... */
MS_API MS_NODISCARD int ms_export_html(ms_tracker *t, const char *path);

/* ----------------------------------------------------------------- macros */

#if !defined(__cplusplus)
/* The type of `var` as text, for the common pointer types. */
#define MS_TYPE_NAME(var)                                                                          \
    _Generic((var),                                                                                \
        char *: "char *", const char *: "const char *",                                           \
        signed char *: "signed char *", unsigned char *: "unsigned char *",                       \
        short *: "short *", unsigned short *: "unsigned short *",                                 \
        int *: "int *", const int *: "const int *", unsigned *: "unsigned int *",                 \
        long *: "long *", unsigned long *: "unsigned long *",                                     \
        long long *: "long long *", unsigned long long *: "unsigned long long *",                 \
        float *: "float *", double *: "double *", long double *: "long double *",                 \
        _Bool *: "_Bool *", char **: "char **", void **: "void **",                               \
        const void *: "const void *",                                                              \
        default: "void *")
#define MS__TYPE_CHECK(var, type)                                                                  \
    _Static_assert(_Generic((var), type : 1, default : 0),                                         \
                   "TRACK_TYPED: '" #var "' is not of type " #type)
#else
#define MS_TYPE_NAME(var) "void *"
#define MS__TYPE_CHECK(var, type) static_assert(true, "")
#endif

#define MS__TRACK(t, var, size, typestr)                                                           \
    do {                                                                                           \
        static const ms_site ms__site_ = {#var, typestr, __FILE__, __LINE__, __func__};            \
        ms_track_as((t), (const void *)(var), (size), &ms__site_);                                 \
    } while (0)

#define MS_TRACKER() ms_tracker_new()
#define MS_TRACK(t, var) MS__TRACK(t, var, MS_SIZE_UNKNOWN, MS_TYPE_NAME(var))
#define MS_TRACK_SIZED(t, var, bytes) MS__TRACK(t, var, (size_t)(bytes), MS_TYPE_NAME(var))
#define MS_TRACK_TYPED(t, var, type)                                                               \
    do {                                                                                           \
        MS__TYPE_CHECK(var, type);                                                                 \
        MS__TRACK(t, var, MS_SIZE_UNKNOWN, #type);                                                 \
    } while (0)
#define MS_UNTRACK(t, var) ms_untrack((t), (const void *)(var))
#define MS_FREE(t, var)                                                                            \
    do {                                                                                           \
        ms_untrack((t), (const void *)(var));                                                      \
        free((void *)(var));                                                                       \
        (var) = NULL;                                                                              \
    } while (0)

/* The short spellings; define MEMSCOPE_NO_SHORT_MACROS to keep them out. */
#ifndef MEMSCOPE_NO_SHORT_MACROS
#define TRACKER() MS_TRACKER()
#define TRACK(t, var) MS_TRACK(t, var)
#define TRACK_SIZED(t, var, bytes) MS_TRACK_SIZED(t, var, bytes)
#define TRACK_TYPED(t, var, type) MS_TRACK_TYPED(t, var, type)
#define UNTRACK(t, var) MS_UNTRACK(t, var)
#endif

#ifdef __cplusplus
}
#endif
#endif /* MEMSCOPE_H */
