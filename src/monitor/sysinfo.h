/* sysinfo.h — reading the process's and the machine's counters: the one place
 * that knows /proc's files (sysinfo_linux.c) and NVML (nvml.c). A read fills
 * an ms__sys_raw with cumulative counters; ms__sys_rates turns two of them
 * into a sample. Reads parse into stack buffers: no allocation per read.
 * Depends on common/ only. */
#ifndef MS_MONITOR_SYSINFO_H
#define MS_MONITOR_SYSINFO_H

#include <memscope.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Every MS_METRIC_* bit. */
#define MS__METRIC_ALL 0x7fu

/* Counters at one moment. `ok` has an MS_METRIC_* bit for each source read. */
typedef struct ms__sys_raw {
    uint64_t mono_ns, real_ns; /* when it was read */
    uint32_t ok;
    uint64_t proc_cpu_ns, cpu_mono_ns;     /* MS_METRIC_PROCESS_CPU, and when it was read */
    uint64_t rss_bytes;                    /* MS_METRIC_PROCESS_STAT */
    uint32_t threads;                      /* MS_METRIC_PROCESS_STAT */
    uint64_t io_read, io_write;            /* MS_METRIC_PROCESS_IO: bytes */
    uint64_t cpu_busy, cpu_total;          /* MS_METRIC_MACHINE_CPU: clock ticks, all CPUs */
    uint32_t cpu_count;                    /* MS_METRIC_MACHINE_CPU */
    uint64_t mem_total, mem_avail;         /* MS_METRIC_MACHINE_MEMORY: bytes */
    uint64_t disk_read, disk_write;        /* MS_METRIC_MACHINE_DISK: bytes */
    uint64_t net_rx, net_tx, lo_rx, lo_tx; /* MS_METRIC_NETWORK: bytes */
    bool gpu_ok;
    uint32_t gpu_count;
    double gpu_util;              /* mean over devices, percent */
    uint64_t gpu_used, gpu_total; /* summed over devices, bytes */
} ms__sys_raw;

/* ------------------------------------------------------------ line reader */

/* Lines of a file (read in chunks) or of a string, NUL-terminated in place.
 * A line longer than the buffer is cut at its end and the rest skipped. */
typedef struct ms__lines {
    int fd;          /* -1: reading `str` */
    uint64_t off;    /* read with pread, from offset 0 on */
    const char *str; /* the rest of the string */
    size_t len, pos; /* bytes in buf, start of the next line */
    bool eof, skip;
    char buf[4096];
} ms__lines;

/* Lines of the open file `fd` from its start (pread: its offset is unused). */
void ms__lines_fd(ms__lines *l, int fd);
void ms__lines_str(ms__lines *l, const char *text);
/* @return the next line without its '\n', NULL at the end. */
char *ms__lines_next(ms__lines *l);

/* ------------------------------------------------------------ parsers */
/* Each takes the file's lines and fills the fields of `r` it owns, and
 * @return true when the file had what was needed. */

/* /proc/self/stat: rss (pages, times page_size) and num_threads. */
bool ms__parse_self_stat(ms__lines *l, ms__sys_raw *r, uint64_t page_size);
/* /proc/self/io: read_bytes and write_bytes. */
bool ms__parse_self_io(ms__lines *l, ms__sys_raw *r);
/* /proc/stat: the "cpu" line's busy and total ticks, and the "cpuN" lines. */
bool ms__parse_stat(ms__lines *l, ms__sys_raw *r);
/* /proc/meminfo: MemTotal and MemAvailable (else MemFree + Buffers + Cached). */
bool ms__parse_meminfo(ms__lines *l, ms__sys_raw *r);
/* Called for each device of a per-device file with its two counters. */
typedef void (*ms__dev_fn)(void *ctx, const char *name, uint64_t a, uint64_t b);
/* /proc/diskstats: each device's bytes read and written (sectors times 512). */
bool ms__parse_diskstats(ms__lines *l, ms__dev_fn fn, void *ctx);
/* /proc/net/dev: each interface's bytes received and sent. */
bool ms__parse_net_dev(ms__lines *l, ms__dev_fn fn, void *ctx);

/* ------------------------------------------------------------ devices */

#define MS__DEV_MAX 64

/* Totals over a set of devices that never go backwards: a device that
 * disappears keeps the bytes it counted, and one whose counters restart
 * keeps what it had before. One reading: begin, add each device, end. */
typedef struct ms__devset {
    struct {
        char name[32];
        uint64_t a, b; /* its counters at the last reading */
        bool seen;
    } dev[MS__DEV_MAX];
    unsigned n;
    uint64_t gone_a, gone_b;   /* counted by devices gone or restarted */
    uint64_t extra_a, extra_b; /* this reading's devices past MS__DEV_MAX */
} ms__devset;

void ms__devset_begin(ms__devset *s);
void ms__devset_add(ms__devset *s, const char *name, uint64_t a, uint64_t b);
void ms__devset_end(ms__devset *s, uint64_t *a, uint64_t *b);

/* ------------------------------------------------------------ reader */

#define MS__DISK_CACHE 64
#define MS__SYS_SOURCES 6

/* Keeps the /proc files open between readings (reading an open /proc file
 * again costs half of opening it anew), and remembers which block devices
 * are physical disks (checked once per name). Each open file's identity
 * (device and inode) is checked before use: if the program closed our
 * descriptor and its number now names another file, that file is left alone
 * and ours is opened again. */
typedef struct ms__sys_reader {
    struct {
        int fd; /* -1: not open */
        uint64_t dev, ino;
    } src[MS__SYS_SOURCES];
    struct {
        char name[32];
        bool physical;
    } disks[MS__DISK_CACHE];
    unsigned ndisks;
    ms__devset disk, net, lo; /* physical disks, interfaces but "lo", "lo" */
    uint64_t page_size;
} ms__sys_reader;

void ms__sys_reader_init(ms__sys_reader *rd);
/* Close the files the reader still owns. Async-signal-safe (a fork child). */
void ms__sys_reader_close(ms__sys_reader *rd);
/* Read every /proc source into *r (clocks too); GPU fields are left alone. */
void ms__sys_read(ms__sys_reader *rd, ms__sys_raw *r);

/* ------------------------------------------------------------ rates */

/* The sample for the window from `prev` to `cur`: rates over it, levels from
 * `cur`. A counter that went backwards gives a rate of 0; a source missing
 * from either reading sets its bit in `missing`. prev == NULL: the baseline
 * sample (interval 0, every rate 0). */
void ms__sys_rates(const ms__sys_raw *prev, const ms__sys_raw *cur, ms_system_snapshot *out);

#endif
