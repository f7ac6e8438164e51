/* sysinfo_linux.c — the one place that reads /proc for the system monitor:
 * which files, what their fields mean, how they are parsed. Everything is
 * parsed from a stack buffer, a chunk at a time; nothing is allocated.
 * proc(5) documents every format read here. */
#include "monitor/sysinfo.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

/* ------------------------------------------------------------ line reader */

void ms__lines_fd(ms__lines *l, int fd)
{
    l->fd = fd;
    l->off = 0;
    l->str = NULL;
    l->len = l->pos = 0;
    l->eof = l->skip = false;
}

void ms__lines_str(ms__lines *l, const char *text)
{
    ms__lines_fd(l, -1);
    l->str = text;
}

/* Append more input after the unread part (moved to the front). */
static void fill(ms__lines *l)
{
    if (l->pos > 0) {
        memmove(l->buf, l->buf + l->pos, l->len - l->pos);
        l->len -= l->pos;
        l->pos = 0;
    }
    size_t room = sizeof l->buf - 1 - l->len;
    if (l->fd < 0) {
        size_t n = strnlen(l->str, room);
        memcpy(l->buf + l->len, l->str, n);
        l->str += n;
        l->len += n;
        l->eof = *l->str == '\0';
        return;
    }
    while (room > 0) {
        ssize_t n = pread(l->fd, l->buf + l->len, room, (off_t)l->off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            l->eof = true;
            return;
        }
        l->len += (size_t)n;
        l->off += (uint64_t)n;
        return;
    }
}

char *ms__lines_next(ms__lines *l)
{
    for (;;) {
        char *start = l->buf + l->pos;
        size_t avail = l->len - l->pos;
        char *nl = memchr(start, '\n', avail);
        if (l->skip) { // the rest of a line that was cut
            if (nl) {
                l->pos = (size_t)(nl + 1 - l->buf);
                l->skip = false;
                continue;
            }
            l->pos = l->len;
            if (l->eof)
                return NULL;
        } else if (nl) {
            *nl = '\0';
            l->pos = (size_t)(nl + 1 - l->buf);
            return start;
        } else if (l->eof || (l->pos == 0 && l->len == sizeof l->buf - 1)) {
            if (avail == 0)
                return NULL;
            // The last line has no '\n', or fills the buffer: cut it there.
            l->buf[l->len] = '\0';
            l->pos = l->len;
            l->skip = !l->eof;
            return start;
        }
        fill(l);
    }
}

/* ------------------------------------------------------------ parsers */

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* An unsigned decimal after blanks, saturating at UINT64_MAX. */
static bool next_u64(const char **p, uint64_t *v)
{
    const char *s = skip_blanks(*p);
    if (*s < '0' || *s > '9')
        return false;
    uint64_t x = 0;
    for (; *s >= '0' && *s <= '9'; s++) {
        uint64_t d = (uint64_t)(*s - '0');
        x = x > (UINT64_MAX - d) / 10 ? UINT64_MAX : x * 10 + d;
    }
    *p = s;
    *v = x;
    return true;
}

/* Up to n unsigned decimals into v. @return how many were read. */
static int next_u64s(const char **p, uint64_t *v, int n)
{
    int k = 0;
    while (k < n && next_u64(p, &v[k]))
        k++;
    return k;
}

/* Skip one blank-separated field. @return false if there is none. */
static bool skip_field(const char **p)
{
    const char *s = skip_blanks(*p);
    if (!*s)
        return false;
    while (*s && *s != ' ' && *s != '\t')
        s++;
    *p = s;
    return true;
}

static uint64_t sat_add(uint64_t a, uint64_t b) { return a > UINT64_MAX - b ? UINT64_MAX : a + b; }

static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    return b && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

bool ms__parse_self_stat(ms__lines *l, ms__sys_raw *r, uint64_t page_size)
{
    // "pid (comm) state ppid ...": comm may hold blanks, ')' and even '\n',
    // so the fields are counted from the last ')' of the file.
    bool found = false;
    for (char *line; (line = ms__lines_next(l));) {
        const char *p = strrchr(line, ')');
        if (!p)
            continue;
        p++;
        uint64_t threads = 0, rss = 0;
        int field = 3; // the state, right after ')'
        bool ok = false;
        for (; field <= 24; field++) {
            if (field == 20 || field == 24) {
                if (!next_u64(&p, field == 20 ? &threads : &rss))
                    break;
                ok = field == 24;
            } else if (!skip_field(&p)) {
                break;
            }
        }
        if (ok) {
            r->threads = threads > UINT32_MAX ? UINT32_MAX : (uint32_t)threads;
            r->rss_bytes = sat_mul(rss, page_size);
            found = true;
        }
    }
    return found;
}

/* @return the value of "key: N" lines, with `key` including the ':'. */
static bool keyed_u64(const char *line, const char *key, uint64_t *v)
{
    size_t n = strlen(key);
    if (strncmp(line, key, n) != 0)
        return false;
    const char *p = line + n;
    return next_u64(&p, v);
}

bool ms__parse_self_io(ms__lines *l, ms__sys_raw *r)
{
    unsigned seen = 0;
    for (char *line; (line = ms__lines_next(l));) {
        if (keyed_u64(line, "read_bytes:", &r->io_read))
            seen |= 1;
        else if (keyed_u64(line, "write_bytes:", &r->io_write))
            seen |= 2;
    }
    return seen == 3;
}

bool ms__parse_stat(ms__lines *l, ms__sys_raw *r)
{
    bool total = false;
    uint32_t cpus = 0;
    for (char *line; (line = ms__lines_next(l));) {
        if (strncmp(line, "cpu", 3) != 0) {
            if (total)
                break; // the cpu lines come first; the rest (intr...) is not needed
            continue;
        }
        if (line[3] >= '0' && line[3] <= '9') {
            cpus++;
            continue;
        }
        // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"
        // (guest time is already inside user and nice).
        const char *p = line + 3;
        uint64_t v[8] = {0};
        if (next_u64s(&p, v, 8) < 4)
            return false;
        uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        r->cpu_busy = busy;
        r->cpu_total = busy + v[3] + v[4];
        total = true;
    }
    r->cpu_count = cpus;
    return total && cpus > 0;
}

bool ms__parse_meminfo(ms__lines *l, ms__sys_raw *r)
{
    uint64_t total = 0, avail = 0, free_kb = 0, buffers = 0, cached = 0;
    unsigned seen = 0;
    for (char *line; (line = ms__lines_next(l));) {
        if (keyed_u64(line, "MemTotal:", &total))
            seen |= 1;
        else if (keyed_u64(line, "MemAvailable:", &avail))
            seen |= 2;
        else if (keyed_u64(line, "MemFree:", &free_kb))
            seen |= 4;
        else if (keyed_u64(line, "Buffers:", &buffers))
            seen |= 8;
        else if (keyed_u64(line, "Cached:", &cached))
            seen |= 16;
    }
    if (!(seen & 1))
        return false;
    if (!(seen & 2)) { // before Linux 3.14: an estimate from the older fields
        if ((seen & 28) != 28)
            return false;
        avail = sat_add(sat_add(free_kb, buffers), cached);
    }
    r->mem_total = sat_mul(total, 1024);
    r->mem_avail = sat_mul(avail < total ? avail : total, 1024);
    return true;
}

bool ms__parse_diskstats(ms__lines *l, ms__dev_fn fn, void *ctx)
{
    // "major minor name reads merged sectors_read ms writes merged sectors_written ..."
    // Sectors are 512 bytes whatever the device's own sector size.
    bool any = false;
    for (char *line; (line = ms__lines_next(l));) {
        const char *p = line;
        uint64_t v[10];
        if (!next_u64(&p, &v[0]) || !next_u64(&p, &v[1]))
            continue;
        char *name = line + (skip_blanks(p) - line);
        char *end = name;
        while (*end && *end != ' ' && *end != '\t')
            end++;
        if (end == name || !*end)
            continue;
        *end = '\0';
        p = end + 1;
        if (next_u64s(&p, &v[3], 7) < 7)
            continue;
        any = true;
        fn(ctx, name, sat_mul(v[5], 512), sat_mul(v[9], 512));
    }
    return any;
}

bool ms__parse_net_dev(ms__lines *l, ms__dev_fn fn, void *ctx)
{
    // Two header lines, then "  name: rx_bytes packets errs drop fifo frame
    // compressed multicast tx_bytes ...". Large counters may touch the ':'.
    bool any = false;
    for (char *line; (line = ms__lines_next(l));) {
        char *colon = strchr(line, ':');
        if (!colon)
            continue;
        *colon = '\0';
        const char *name = skip_blanks(line);
        const char *p = colon + 1;
        uint64_t v[9];
        if (next_u64s(&p, v, 9) < 9)
            continue;
        any = true;
        fn(ctx, name, v[0], v[8]);
    }
    return any;
}

/* ------------------------------------------------------------ devices */

void ms__devset_begin(ms__devset *s)
{
    for (unsigned i = 0; i < s->n; i++)
        s->dev[i].seen = false;
    s->extra_a = s->extra_b = 0;
}

void ms__devset_add(ms__devset *s, const char *name, uint64_t a, uint64_t b)
{
    unsigned i = 0;
    while (i < s->n && strcmp(s->dev[i].name, name) != 0)
        i++;
    if (i == s->n) {
        if (s->n == MS__DEV_MAX || strlen(name) >= sizeof s->dev[0].name) {
            s->extra_a = sat_add(s->extra_a, a); // summed, without the protection
            s->extra_b = sat_add(s->extra_b, b);
            return;
        }
        strcpy(s->dev[s->n].name, name);
        s->dev[s->n].a = a;
        s->dev[s->n].b = b;
        s->n++;
    }
    // Counters that restarted: keep what they had counted before.
    if (a < s->dev[i].a)
        s->gone_a = sat_add(s->gone_a, s->dev[i].a);
    if (b < s->dev[i].b)
        s->gone_b = sat_add(s->gone_b, s->dev[i].b);
    s->dev[i].a = a;
    s->dev[i].b = b;
    s->dev[i].seen = true;
}

void ms__devset_end(ms__devset *s, uint64_t *a, uint64_t *b)
{
    uint64_t ta = sat_add(s->gone_a, s->extra_a), tb = sat_add(s->gone_b, s->extra_b);
    for (unsigned i = 0; i < s->n;) {
        if (!s->dev[i].seen) { // gone: its bytes stay in the total
            s->gone_a = sat_add(s->gone_a, s->dev[i].a);
            s->gone_b = sat_add(s->gone_b, s->dev[i].b);
            ta = sat_add(ta, s->dev[i].a);
            tb = sat_add(tb, s->dev[i].b);
            s->dev[i] = s->dev[--s->n];
            continue;
        }
        ta = sat_add(ta, s->dev[i].a);
        tb = sat_add(tb, s->dev[i].b);
        i++;
    }
    *a = ta;
    *b = tb;
}

/* ------------------------------------------------------------ reader */

void ms__sys_reader_init(ms__sys_reader *rd)
{
    memset(rd, 0, sizeof *rd);
    for (int i = 0; i < MS__SYS_SOURCES; i++)
        rd->src[i].fd = -1;
    long ps = sysconf(_SC_PAGESIZE);
    rd->page_size = ps > 0 ? (uint64_t)ps : 4096;
}

/* Is source i's descriptor still the file the reader opened? */
static bool still_ours(const ms__sys_reader *rd, int i)
{
    struct stat st;
    return rd->src[i].fd >= 0 && fstat(rd->src[i].fd, &st) == 0 &&
           (uint64_t)st.st_dev == rd->src[i].dev && (uint64_t)st.st_ino == rd->src[i].ino;
}

void ms__sys_reader_close(ms__sys_reader *rd)
{
    for (int i = 0; i < MS__SYS_SOURCES; i++) {
        if (still_ours(rd, i))
            close(rd->src[i].fd);
        rd->src[i].fd = -1;
    }
}

enum { SRC_SELF_STAT, SRC_SELF_IO, SRC_STAT, SRC_MEMINFO, SRC_DISKSTATS, SRC_NET_DEV };

static const char *const source_path[MS__SYS_SOURCES] = {
    [SRC_SELF_STAT] = "/proc/self/stat", [SRC_SELF_IO] = "/proc/self/io",
    [SRC_STAT] = "/proc/stat",           [SRC_MEMINFO] = "/proc/meminfo",
    [SRC_DISKSTATS] = "/proc/diskstats", [SRC_NET_DEV] = "/proc/net/dev",
};

/* Start `l` on source i, opening the file if needed. @return false if it
 * cannot be opened. */
static bool open_source(ms__sys_reader *rd, int i, ms__lines *l)
{
    if (!still_ours(rd, i)) {
        rd->src[i].fd = -1; // never opened, or closed by the program: not ours to close
        int fd = open(source_path[i], O_RDONLY | O_CLOEXEC);
        if (fd >= 0 && fd <= 2) { // never hold 0, 1 or 2: the program may expect them free
            int high = fcntl(fd, F_DUPFD_CLOEXEC, 3);
            close(fd);
            fd = high;
        }
        if (fd < 0)
            return false;
        struct stat st;
        if (fstat(fd, &st) != 0) {
            close(fd);
            return false;
        }
        rd->src[i].dev = (uint64_t)st.st_dev;
        rd->src[i].ino = (uint64_t)st.st_ino;
        rd->src[i].fd = fd;
    }
    ms__lines_fd(l, rd->src[i].fd);
    return true;
}

/* A physical disk is a whole device with hardware behind it:
 * /sys/block/NAME/device exists. That leaves out partitions (not in
 * /sys/block), and loop, ram, zram, device-mapper and md devices, whose I/O
 * reaches the physical disks and is counted there. Cached per name. */
static bool is_physical_disk(const char *name, void *ctx)
{
    ms__sys_reader *rd = ctx;
    for (unsigned i = 0; i < rd->ndisks; i++)
        if (strcmp(rd->disks[i].name, name) == 0)
            return rd->disks[i].physical;
    char path[128];
    snprintf(path, sizeof path, "/sys/block/%s/device", name);
    bool physical = access(path, F_OK) == 0;
    if (rd->ndisks < MS__DISK_CACHE && strlen(name) < sizeof rd->disks[0].name) {
        strcpy(rd->disks[rd->ndisks].name, name);
        rd->disks[rd->ndisks].physical = physical;
        rd->ndisks++;
    }
    return physical;
}

static void add_disk(void *ctx, const char *name, uint64_t rd_bytes, uint64_t wr_bytes)
{
    ms__sys_reader *rd = ctx;
    if (is_physical_disk(name, rd))
        ms__devset_add(&rd->disk, name, rd_bytes, wr_bytes);
}

static bool read_disks(ms__sys_reader *rd, ms__lines *l, ms__sys_raw *r)
{
    ms__devset_begin(&rd->disk);
    if (!ms__parse_diskstats(l, add_disk, rd))
        return false; // the device set keeps its last reading
    ms__devset_end(&rd->disk, &r->disk_read, &r->disk_write);
    return true;
}

static void add_interface(void *ctx, const char *name, uint64_t rx, uint64_t tx)
{
    ms__sys_reader *rd = ctx;
    ms__devset_add(strcmp(name, "lo") == 0 ? &rd->lo : &rd->net, name, rx, tx);
}

static bool read_interfaces(ms__sys_reader *rd, ms__lines *l, ms__sys_raw *r)
{
    ms__devset_begin(&rd->net);
    ms__devset_begin(&rd->lo);
    if (!ms__parse_net_dev(l, add_interface, rd))
        return false;
    ms__devset_end(&rd->net, &r->net_rx, &r->net_tx);
    ms__devset_end(&rd->lo, &r->lo_rx, &r->lo_tx);
    return true;
}

void ms__sys_read(ms__sys_reader *rd, ms__sys_raw *r)
{
    ms__lines l; // 4 KiB on the stack, reused for each file
    r->ok = 0;
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) == 0) {
        r->proc_cpu_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
        r->cpu_mono_ns = ms__mono_ns(); // the CPU share's own window: no /proc reads inside
        r->ok |= MS_METRIC_PROCESS_CPU;
    }
    if (open_source(rd, SRC_SELF_STAT, &l) && ms__parse_self_stat(&l, r, rd->page_size))
        r->ok |= MS_METRIC_PROCESS_STAT;
    if (open_source(rd, SRC_SELF_IO, &l) && ms__parse_self_io(&l, r))
        r->ok |= MS_METRIC_PROCESS_IO;
    if (open_source(rd, SRC_STAT, &l) && ms__parse_stat(&l, r))
        r->ok |= MS_METRIC_MACHINE_CPU;
    if (open_source(rd, SRC_MEMINFO, &l) && ms__parse_meminfo(&l, r))
        r->ok |= MS_METRIC_MACHINE_MEMORY;
    if (open_source(rd, SRC_DISKSTATS, &l) && read_disks(rd, &l, r))
        r->ok |= MS_METRIC_MACHINE_DISK;
    if (open_source(rd, SRC_NET_DEV, &l) && read_interfaces(rd, &l, r))
        r->ok |= MS_METRIC_NETWORK;
    // The clocks last: the window ends after every counter was read.
    r->mono_ns = ms__mono_ns();
    r->real_ns = ms__real_ns();
}
