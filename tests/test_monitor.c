/* test_monitor.c — the running system monitor: each figure moved by a known
 * load (CPU, memory, threads, disk writes, loopback traffic), the sampler's
 * life (shared by trackers, stopped promptly, started and stopped 100 times,
 * after fork), the history bound, the latch under concurrent readers, the
 * reports and the JSON export. Waits are for samples, never for a time. */
#define _GNU_SOURCE
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "monitor/monitor.h"
#include "test_util.h"

#define MiB (1024u * 1024u)

static uint64_t real_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static ms_tracker *monitored(unsigned interval_ms)
{
    ms_tracker *t = ms_tracker_new();
    assert_non_null(t);
    assert_ptr_equal(ms_tracker_with_monitor_interval(t, interval_ms), t);
    assert_ptr_equal(ms_tracker_with_system_monitoring(t), t);
    return t;
}

/* The first sample whose whole window lies after real time `after_ns`, so
 * that every source it read was read after that moment. */
static ms_system_snapshot sample_after(ms_tracker *t, uint64_t after_ns)
{
    for (int i = 0; i < 20000; i++) { // 20 s at most: a hung sampler fails here
        ms_system_snapshot s = ms_current_system_snapshot(t);
        if (s.interval_ns > 0 && s.timestamp - s.interval_ns > after_ns)
            return s;
        sleep_ms(1);
    }
    fail_msg("no system sample arrived within 20 s");
    return (ms_system_snapshot){0};
}

/* The sum of rate x window over the kept samples whose windows end after
 * `from_ns`: the bytes the rate at `field` says moved since then, give or
 * take the part of the first window before `from_ns`. */
static double integrate(ms_tracker *t, uint64_t from_ns, size_t field)
{
    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    double sum = 0;
    for (size_t i = 0; i < r->system_snapshot_count; i++) {
        const ms_system_snapshot *s = &r->system_snapshots[i];
        if (s->timestamp <= from_ns)
            continue;
        uint64_t bps;
        memcpy(&bps, (const char *)s + field, sizeof bps);
        sum += (double)bps * (double)s->interval_ns / 1e9;
    }
    ms_report_free(r);
    return sum;
}

/* How many of this process's threads are named `name`. */
static int threads_named(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[300], comm[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; // the thread just ended
        if (fgets(comm, sizeof comm, f))
            comm[strcspn(comm, "\n")] = '\0';
        fclose(f);
        n += strcmp(comm, name) == 0;
    }
    closedir(d);
    return n;
}

/* Wait (5 s at most) until `n` threads are named `name`. A joined thread can
 * stay listed in /proc for a moment after pthread_join returns. */
static bool threads_named_become(const char *name, int n)
{
    for (int i = 0; i < 5000; i++) {
        if (threads_named(name) == n)
            return true;
        sleep_ms(1);
    }
    return false;
}

/* Open descriptors naming a file of process `pid` under /proc. */
static int fds_into_proc_of(pid_t pid)
{
    char prefix[64];
    int n = snprintf(prefix, sizeof prefix, "/proc/%d/", (int)pid);
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' || atoi(e->d_name) == dirfd(d))
            continue;
        char path[300], target[300];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len > 0) {
            target[len] = '\0';
            count += strncmp(target, prefix, (size_t)n) == 0;
        }
    }
    closedir(d);
    return count;
}

static int task_count(void) { return count_entries("/proc/self/task"); }

/* "Key:   N kB" from /proc/self/status, in bytes. */
static uint64_t status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    char line[256];
    uint64_t v = 0;
    size_t n = strlen(key);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0 && line[n] == ':')
            v = strtoull(line + n + 1, NULL, 10) * 1024;
    fclose(f);
    return v;
}

/* ------------------------------------------------------------ each figure */

static void baseline_should_answer_at_once_and_first_sample_should_not_spike(void **state)
{
    (void)state;
    uint64_t before = real_now();
    ms_tracker *t = monitored(100);
    ms_system_snapshot b = ms_current_system_snapshot(t);
    assert_true(b.timestamp >= before);
    assert_int_equal(b.interval_ns, 0);
    assert_float_equal(b.cpu_usage_percent, 0.0, 0.0);
    assert_true(b.memory_usage_bytes > 0);
    assert_true(b.thread_count >= 2); // this thread and the monitor's
    assert_true(b.machine_memory_total > 0);
    assert_true(b.cpu_count >= 1);

    // The first sample: its window starts at the baseline, not at process
    // start or boot. (Not sample_after: under load the first window's start,
    // from two clocks read a moment apart, can seem to precede the baseline,
    // and the second window is then shorter, the cadence catching up.)
    ms_system_snapshot s = ms_current_system_snapshot(t);
    for (int i = 0; i < 20000 && s.interval_ns == 0; i++) {
        sleep_ms(1);
        s = ms_current_system_snapshot(t);
    }
    assert_true(s.interval_ns >= 99000000u);
    assert_true(s.interval_ns < 1000000000u);
    assert_true(s.cpu_usage_percent <= 100.0 * s.cpu_count);
    assert_true(s.machine_cpu_percent <= 100.0);
    ms_tracker_free(t);
}

/* The process's CPU time, ns. */
static uint64_t process_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A thread burning CPU for 400 ms: the monitor's windows inside the burn read
 * at least half of what the process really used over it (its CPU clock), and
 * over half a core when the burn got most of one. (A machine whose other
 * work takes the core gets a lower reading, and so does the truth.) */
static void burning_cpu_should_read_over_half_a_core(void **state)
{
    (void)state;
    ms_tracker *t = monitored(100);
    uint64_t start = real_now(), start_mono = mono_now(), cpu0 = process_cpu_ns();
    uint64_t end_mono = start_mono + 400000000u;
    volatile uint64_t x = 0;
    while (mono_now() < end_mono)
        for (int i = 0; i < 10000; i++)
            x += (uint64_t)i;
    (void)x;
    uint64_t end = real_now();
    double used = 100.0 * (double)(process_cpu_ns() - cpu0) / (double)(mono_now() - start_mono);
    sample_after(t, end);
    ms_analysis_report *r = ms_analyze(t);
    assert_non_null(r);
    double peak = 0;
    for (size_t i = 0; i < r->system_snapshot_count; i++) {
        const ms_system_snapshot *s = &r->system_snapshots[i];
        assert_true(s->cpu_usage_percent >= 0.0);
        assert_true(s->cpu_usage_percent <= 100.0 * s->cpu_count);
        // Windows that lie wholly inside the burn.
        if (s->timestamp - s->interval_ns >= start && s->timestamp <= end &&
            s->cpu_usage_percent > peak)
            peak = s->cpu_usage_percent;
    }
    ms_report_free(r);
    ms_tracker_free(t); // before any assertion: a sampler left running fails the next tests
    print_message("peak cpu_usage_percent while burning: %.1f (the process used %.1f%%)\n", peak,
                  used);
    assert_true(peak >= used / 2);
    if (used > 80.0)
        assert_true(peak > 50.0);
}

static void touching_64_mib_should_grow_rss_and_match_vmrss(void **state)
{
    (void)state;
    ms_tracker *t = monitored(50);
    ms_system_snapshot before = sample_after(t, real_now());
    size_t n = 64 * MiB;
    volatile char *p = malloc(n);
    assert_non_null((void *)(uintptr_t)p);
    for (size_t i = 0; i < n; i += 4096)
        p[i] = (char)i; // touch every page
    ms_system_snapshot after = sample_after(t, real_now());
    uint64_t vmrss = status_kb("VmRSS");
    print_message("rss before %llu, after %llu, VmRSS %llu\n",
                  (unsigned long long)before.memory_usage_bytes,
                  (unsigned long long)after.memory_usage_bytes, (unsigned long long)vmrss);
    assert_true(after.memory_usage_bytes >= before.memory_usage_bytes + 60 * MiB);
    double diff = (double)after.memory_usage_bytes - (double)vmrss;
    assert_true(diff < 0.1 * (double)vmrss && -diff < 0.1 * (double)vmrss);
    assert_float_equal(
        after.memory_usage_percent,
        100.0 * (double)after.memory_usage_bytes / (double)after.machine_memory_total, 1e-9);
    free((void *)(uintptr_t)p);
    ms_tracker_free(t);
}

static pthread_mutex_t park_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t park_cond = PTHREAD_COND_INITIALIZER;
static bool park_release;

static void *parked(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&park_lock);
    while (!park_release)
        pthread_cond_wait(&park_cond, &park_lock);
    pthread_mutex_unlock(&park_lock);
    return NULL;
}

static void three_more_threads_should_count_three_more(void **state)
{
    (void)state;
    ms_tracker *t = monitored(50);
    ms_system_snapshot before = sample_after(t, real_now());
    assert_int_equal(before.thread_count, (size_t)task_count());
    park_release = false;
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&th[i], NULL, parked, NULL), 0);
    ms_system_snapshot during = sample_after(t, real_now());
    pthread_mutex_lock(&park_lock);
    park_release = true;
    pthread_cond_broadcast(&park_cond);
    pthread_mutex_unlock(&park_lock);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(during.thread_count, before.thread_count + 3);
    ms_system_snapshot after = sample_after(t, real_now());
    assert_int_equal(after.thread_count, before.thread_count);
    ms_tracker_free(t);
}

/* write_bytes of /proc/self/io, or -1 if it cannot be read. */
static long long io_write_bytes(void)
{
    FILE *f = fopen("/proc/self/io", "r");
    if (!f)
        return -1;
    char line[128];
    long long v = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "write_bytes:", 12) == 0)
            v = strtoll(line + 12, NULL, 10);
    fclose(f);
    return v;
}

static void writing_32_mib_should_show_a_disk_write_rate(void **state)
{
    (void)state;
    long long io0 = io_write_bytes();
    if (io0 < 0) {
        print_message("skipped: /proc/self/io is not readable here\n");
        skip();
    }
    ms_tracker *t = monitored(50);
    uint64_t from = sample_after(t, real_now()).timestamp;
    // In the working directory (the build tree): /tmp may be a tmpfs, whose
    // writes never reach storage.
    char path[] = "memscope-disk-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    static char chunk[MiB];
    memset(chunk, 'm', sizeof chunk);
    long long io1 = io_write_bytes();
    for (int i = 0; i < 32; i++)
        assert_int_equal(write(fd, chunk, sizeof chunk), (ssize_t)sizeof chunk);
    assert_int_equal(fsync(fd), 0);
    close(fd);
    long long written = io_write_bytes() - io1;
    unlink(path);
    sample_after(t, real_now());
    double seen = integrate(t, from, offsetof(ms_system_snapshot, disk_write_bps));
    print_message("storage writes: %lld bytes by /proc/self/io, %.0f by the monitor\n", written,
                  seen);
    if (written <= 0) {
        ms_tracker_free(t);
        print_message("skipped: this file system does not count storage writes\n");
        skip();
    }
    assert_true(seen > 0);
    assert_true(seen >= 0.95 * (double)written);
    ms_tracker_free(t);
}

typedef struct sender {
    int fd;
    size_t bytes;
} sender;

static void *send_all(void *arg)
{
    sender *s = arg;
    static char buf[64 * 1024];
    memset(buf, 's', sizeof buf);
    size_t left = s->bytes;
    while (left > 0) {
        ssize_t n = send(s->fd, buf, left < sizeof buf ? left : sizeof buf, 0);
        if (n <= 0)
            break;
        left -= (size_t)n;
    }
    s->bytes -= left;
    return NULL;
}

static void sending_8_mib_over_loopback_should_move_the_loopback_rate(void **state)
{
    (void)state;
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(ls >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(ls, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(ls, 1), 0);
    assert_int_equal(getsockname(ls, (struct sockaddr *)&a, &alen), 0);
    int cs = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_int_equal(connect(cs, (struct sockaddr *)&a, sizeof a), 0);
    int ss = accept(ls, NULL, NULL);
    assert_true(ss >= 0);

    ms_tracker *t = monitored(50);
    uint64_t from = sample_after(t, real_now()).timestamp;
    sender snd = {cs, 8 * MiB};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, send_all, &snd), 0);
    static char buf[64 * 1024];
    size_t got = 0;
    while (got < 8 * MiB) {
        ssize_t n = recv(ss, buf, sizeof buf, 0);
        assert_true(n > 0);
        got += (size_t)n;
    }
    pthread_join(th, NULL);
    assert_int_equal(snd.bytes, 8 * MiB);
    sample_after(t, real_now());
    double lo_rx = integrate(t, from, offsetof(ms_system_snapshot, loopback_rx_bps));
    double lo_tx = integrate(t, from, offsetof(ms_system_snapshot, loopback_tx_bps));
    double rx = integrate(t, from, offsetof(ms_system_snapshot, network_rx_bps));
    print_message("loopback: %.0f received, %.0f sent; other interfaces: %.0f received\n", lo_rx,
                  lo_tx, rx);
    // The payload plus TCP/IP headers went through "lo". (The other
    // interfaces' figure is printed, not checked: the machine may be busy.)
    assert_true(lo_rx >= 8.0 * MiB);
    assert_true(lo_tx >= 8.0 * MiB);
    close(cs);
    close(ss);
    close(ls);
    ms_tracker_free(t);
}

static void without_nvml_gpu_fields_should_be_zero_and_unavailable(void **state)
{
    (void)state;
    void *lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib) {
        dlclose(lib);
        print_message("skipped: NVML is installed on this machine\n");
        skip();
    }
    ms_tracker *t = monitored(20);
    ms_system_snapshot s = sample_after(t, real_now());
    assert_false(s.gpu_available);
    assert_int_equal(s.gpu_count, 0);
    assert_float_equal(s.gpu_usage_percent, 0.0, 0.0);
    assert_int_equal(s.gpu_memory_used, 0);
    assert_int_equal(s.gpu_memory_total, 0);
    assert_non_null(strstr(ms__mon_gpu_status(), "cannot load libnvidia-ml.so.1"));
    ms_tracker_free(t);
}

/* ------------------------------------------------------------ the sampler */

static void trackers_should_share_one_sampler_at_their_own_intervals(void **state)
{
    (void)state;
    assert_true(threads_named_become("memscope-mon", 0));
    ms_tracker *fast = monitored(10), *slow = monitored(200);
    assert_true(threads_named_become("memscope-mon", 1));
    uint64_t from = ms_current_system_snapshot(slow).timestamp;
    for (int i = 0; i < 4; i++)
        from = sample_after(slow, from).timestamp;
    ms_analysis_report *rf = ms_analyze(fast), *rs = ms_analyze(slow);
    print_message("samples: %zu at 10 ms, %zu at 200 ms\n", rf->system_snapshot_count,
                  rs->system_snapshot_count);
    assert_true(rs->system_snapshot_count >= 4);
    assert_true(rf->system_snapshot_count >= 3 * rs->system_snapshot_count);
    ms_report_free(rf);
    ms_report_free(rs);

    ms_tracker_free(fast); // the other keeps the sampler
    assert_true(threads_named_become("memscope-mon", 1));
    sample_after(slow, ms_current_system_snapshot(slow).timestamp);
    ms_tracker_free(slow); // the last one ends it
    assert_true(threads_named_become("memscope-mon", 0));
}

static void free_should_stop_the_sampler_without_waiting_an_interval(void **state)
{
    (void)state;
    ms_tracker *t = monitored(60000); // a minute between samples
    assert_true(threads_named_become("memscope-mon", 1));
    uint64_t t0 = mono_now();
    ms_tracker_free(t);
    uint64_t took = mono_now() - t0;
    print_message("ms_tracker_free with a 60 s interval took %.3f ms\n", took / 1e6);
    assert_true(took < 5000000000u); // far less than the interval
    assert_true(threads_named_become("memscope-mon", 0));
}

static void start_and_stop_100_times_should_leave_no_thread(void **state)
{
    (void)state;
    int tasks = task_count();
    for (int i = 0; i < 100; i++) {
        ms_tracker *t = monitored(1 + (unsigned)(i % 3));
        if (i % 10 == 0)
            sample_after(t, ms_current_system_snapshot(t).timestamp);
        ms_tracker_free(t);
    }
    assert_true(threads_named_become("memscope-mon", 0));
    for (int i = 0; i < 5000 && task_count() != tasks; i++)
        sleep_ms(1);
    assert_int_equal(task_count(), tasks);
}

static void stop_should_keep_samples_and_a_restart_should_resume(void **state)
{
    (void)state;
    ms_tracker *t = monitored(10);
    sample_after(t, real_now());
    ms_tracker_stop_system_monitoring(t);
    ms_tracker_stop_system_monitoring(t); // twice is fine
    assert_true(threads_named_become("memscope-mon", 0));
    ms_analysis_report *r1 = ms_analyze(t);
    ms_system_snapshot last = ms_current_system_snapshot(t);
    sleep_ms(50);
    ms_analysis_report *r2 = ms_analyze(t);
    assert_true(r1->system_snapshot_count >= 1);
    assert_int_equal(r2->system_snapshot_count, r1->system_snapshot_count);
    assert_int_equal(ms_current_system_snapshot(t).timestamp, last.timestamp);
    ms_report_free(r1);
    ms_report_free(r2);

    ms_tracker_with_system_monitoring(t);
    ms_system_snapshot again = sample_after(t, real_now());
    // The first window after a restart starts at the restart.
    assert_true(again.interval_ns < 1000000000u);
    ms_tracker_free(t);
}

static void changing_the_interval_should_take_effect_while_running(void **state)
{
    (void)state;
    ms_tracker *t = monitored(60000);
    ms_tracker_with_monitor_interval(t, 5);
    uint64_t from = ms_current_system_snapshot(t).timestamp;
    for (int i = 0; i < 10; i++)
        from = sample_after(t, from).timestamp; // would take 10 minutes at 60 s
    ms_system_snapshot s = ms_current_system_snapshot(t);
    assert_true(s.interval_ns < 1000000000u);
    ms_tracker_free(t);
}

static void history_should_keep_the_newest_and_count_the_rest(void **state)
{
    (void)state;
    ms_tracker *t = ms_tracker_with_monitor_history(monitored(2), 4);
    uint64_t from = ms_current_system_snapshot(t).timestamp;
    for (int i = 0; i < 10; i++)
        from = sample_after(t, from).timestamp;
    ms_tracker_stop_system_monitoring(t);
    ms_analysis_report *r = ms_analyze(t);
    assert_int_equal(r->system_snapshot_count, 4);
    assert_true(r->system_snapshots_overwritten >= 6);
    for (size_t i = 1; i < 4; i++)
        assert_true(r->system_snapshots[i].timestamp > r->system_snapshots[i - 1].timestamp);
    // The newest kept is the latest published.
    assert_int_equal(r->system_snapshots[3].timestamp, ms_current_system_snapshot(t).timestamp);
    uint64_t newest = r->system_snapshots[3].timestamp, lost = r->system_snapshots_overwritten;
    ms_report_free(r);

    ms_tracker_with_monitor_history(t, 2); // shrinking keeps the newest two
    r = ms_analyze(t);
    assert_int_equal(r->system_snapshot_count, 2);
    assert_int_equal(r->system_snapshots[1].timestamp, newest);
    assert_int_equal(r->system_snapshots_overwritten, lost + 2);
    ms_report_free(r);
    ms_tracker_free(t);
}

static void fork_child_should_have_no_sampler_and_not_hang(void **state)
{
    (void)state;
    ms_tracker *t = monitored(10);
    sample_after(t, real_now());
    pid_t parent = getpid();
    assert_true(fds_into_proc_of(parent) > 0); // the sampler's /proc/self files
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        alarm(20); // a hang ends the child with SIGALRM, which fails the test
        int bad = 0;
        if (threads_named("memscope-mon") != 0)
            bad |= 1;
        if (fds_into_proc_of(parent) != 0)
            bad |= 32; // the sampler's files name the parent: closed in the child
        ms_system_snapshot s = ms_current_system_snapshot(t); // the parent's last
        if (s.timestamp == 0)
            bad |= 2;
        ms_analysis_report *r = ms_analyze(t);
        if (!r || r->system_snapshot_count == 0)
            bad |= 4;
        ms_report_free(r);
        ms_tracker_stop_system_monitoring(t);
        // ThreadSanitizer does not allow new threads after a multithreaded fork.
        if (!UNDER_TSAN) {
            ms_tracker_with_system_monitoring(t); // a sampler of the child's own
            uint64_t from = ms_current_system_snapshot(t).timestamp;
            uint64_t until = mono_now() + 10000000000u;
            while (ms_current_system_snapshot(t).timestamp == from && mono_now() < until)
                sleep_ms(1);
            if (ms_current_system_snapshot(t).timestamp == from)
                bad |= 8;
            if (threads_named("memscope-mon") != 1)
                bad |= 16;
        }
        ms_tracker_free(t);
        _exit(bad);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("the child died of signal %d", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    // The parent's sampler goes on.
    sample_after(t, real_now());
    ms_tracker_free(t);
}

/* ------------------------------------------------------------ the latch */

typedef struct latch_run {
    ms__mon *m;
    _Atomic bool done;
} latch_run;

static ms_system_snapshot numbered(uint64_t k)
{
    ms_system_snapshot s;
    memset(&s, 0, sizeof s);
    s.timestamp = k;
    s.cpu_usage_percent = (double)k;
    s.memory_usage_bytes = k;
    s.thread_count = (size_t)k;
    s.network_tx_bps = k;
    s.gpu_memory_total = k;
    s.loopback_tx_bps = k;
    s.missing = (uint32_t)k;
    return s;
}

static void *latch_reader(void *arg)
{
    latch_run *run = arg;
    uint64_t last = 0;
    while (!atomic_load(&run->done)) {
        ms_system_snapshot s = ms__mon_current(run->m);
        uint64_t k = s.timestamp;
        // Every field from the same publication, and never going back.
        if (s.memory_usage_bytes != k || s.cpu_usage_percent != (double)k || s.thread_count != k ||
            s.network_tx_bps != k || s.gpu_memory_total != k || s.loopback_tx_bps != k ||
            s.missing != (uint32_t)k || k < last)
            return (void *)1;
        last = k;
    }
    return NULL;
}

static void latch_readers_should_never_see_a_torn_sample(void **state)
{
    (void)state;
    static ms__mon m; // zeroed, not monitoring: only the latch is used
    latch_run run = {.m = &m};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, latch_reader, &run), 0);
    for (uint64_t k = 1; k <= 200000; k++) {
        ms_system_snapshot s = numbered(k);
        ms__mon_publish(&m, &s);
    }
    atomic_store(&run.done, true);
    for (int i = 0; i < 2; i++) {
        void *bad;
        pthread_join(th[i], &bad);
        assert_null(bad);
    }
    assert_int_equal(ms__mon_current(&m).timestamp, 200000);
}

/* ------------------------------------------------------------ reports */

static void report_and_json_should_carry_the_samples(void **state)
{
    (void)state;
    char dir[256], path[300];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/report.json", dir);
    ms_tracker *t = monitored(10);
    uint64_t from = ms_current_system_snapshot(t).timestamp;
    for (int i = 0; i < 3; i++)
        from = sample_after(t, from).timestamp;
    ms_tracker_stop_system_monitoring(t);
    ms_analysis_report *r = ms_analyze(t);
    assert_true(r->system_snapshot_count >= 3);
    assert_int_equal(ms_export_json(t, path), 0);

    FILE *f = fopen(path, "r");
    assert_non_null(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    cJSON *root = cJSON_Parse(text);
    assert_non_null(root);
    const cJSON *snaps = cJSON_GetObjectItemCaseSensitive(root, "system_snapshots");
    assert_true(cJSON_IsArray(snaps));
    assert_int_equal(cJSON_GetArraySize(snaps), (int)r->system_snapshot_count);
    const cJSON *last = cJSON_GetArrayItem(snaps, cJSON_GetArraySize(snaps) - 1);
    const ms_system_snapshot *want = &r->system_snapshots[r->system_snapshot_count - 1];
    const cJSON *j_ts = cJSON_GetObjectItemCaseSensitive(last, "timestamp_ns");
    assert_true(cJSON_IsNumber(j_ts));
    assert_float_equal(j_ts->valuedouble, (double)want->timestamp, 1e3);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(last, "thread_count")->valuedouble,
                     want->thread_count);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(last, "interval_ns")->valuedouble,
                     want->interval_ns);
    assert_true(cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(last, "gpu_available")));
    assert_true(cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(last, "missing")));
    assert_non_null(cJSON_GetObjectItemCaseSensitive(last, "machine_cpu_percent"));
    assert_non_null(cJSON_GetObjectItemCaseSensitive(last, "loopback_rx_bps"));
    const cJSON *rep = cJSON_GetObjectItemCaseSensitive(root, "report");
    assert_non_null(cJSON_GetObjectItemCaseSensitive(rep, "system_snapshots_overwritten"));
    cJSON_Delete(root);
    ms_report_free(r);
    ms_tracker_free(t);
    unlink(path);
    rmdir(dir);
}

static void errors_should_be_reported_and_leave_the_tracker_unchanged(void **state)
{
    (void)state;
    ms_clear_error();
    assert_null(ms_tracker_with_system_monitoring(NULL));
    assert_int_equal(ms_last_error(), MS_ENULLTRACKER);
    assert_null(ms_tracker_with_monitor_interval(NULL, 100));
    assert_null(ms_tracker_with_monitor_history(NULL, 100));
    ms_clear_error();
    ms_system_snapshot z = ms_current_system_snapshot(NULL);
    assert_int_equal(ms_last_error(), MS_ENULLTRACKER);
    assert_int_equal(z.timestamp, 0);
    ms_tracker_stop_system_monitoring(NULL); // accepted

    ms_tracker *t = ms_tracker_new();
    // Never monitored: zeros, and reports with no samples.
    assert_int_equal(ms_current_system_snapshot(t).timestamp, 0);
    ms_analysis_report *r = ms_analyze(t);
    assert_int_equal(r->system_snapshot_count, 0);
    assert_null(r->system_snapshots);
    ms_report_free(r);
    ms_clear_error();
    assert_ptr_equal(ms_tracker_with_monitor_interval(t, 0), t);
    assert_int_equal(ms_last_error(), MS_ERANGE);
    ms_clear_error();
    assert_ptr_equal(ms_tracker_with_monitor_interval(t, 3600001), t);
    assert_int_equal(ms_last_error(), MS_ERANGE);
    ms_clear_error();
    assert_ptr_equal(ms_tracker_with_monitor_history(t, 0), t);
    assert_int_equal(ms_last_error(), MS_ERANGE);
    ms_clear_error();
    assert_ptr_equal(ms_tracker_with_monitor_history(t, ((size_t)1 << 24) + 1), t);
    assert_int_equal(ms_last_error(), MS_ERANGE);
    ms_tracker_free(t);
}

/* A run rebuilt from a trace keeps every sample the trace holds, past the
 * live history's 6000 (a streamed trace has them all). */
static void replay_should_keep_every_sample_of_the_trace(void **state)
{
    (void)state;
    enum { N = MS_MONITOR_DEFAULT_HISTORY + 1000 };
    static ms__mon m; // zeroed: the default history
    for (uint64_t i = 1; i <= N; i++) {
        ms_system_snapshot s = {.timestamp = i};
        assert_int_equal(ms__mon_replay(&m, &s, 0), 0);
    }
    ms_system_snapshot *all;
    size_t n;
    uint64_t overwritten;
    assert_int_equal(ms__mon_samples(&m, &all, &n, &overwritten), 0);
    assert_int_equal(n, N);
    assert_int_equal(overwritten, 0);
    assert_int_equal(all[0].timestamp, 1);
    assert_int_equal(all[N - 1].timestamp, N);
    free(all);
    ms__mon_release(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(baseline_should_answer_at_once_and_first_sample_should_not_spike),
        cmocka_unit_test(burning_cpu_should_read_over_half_a_core),
        cmocka_unit_test(touching_64_mib_should_grow_rss_and_match_vmrss),
        cmocka_unit_test(three_more_threads_should_count_three_more),
        cmocka_unit_test(writing_32_mib_should_show_a_disk_write_rate),
        cmocka_unit_test(sending_8_mib_over_loopback_should_move_the_loopback_rate),
        cmocka_unit_test(without_nvml_gpu_fields_should_be_zero_and_unavailable),
        cmocka_unit_test(trackers_should_share_one_sampler_at_their_own_intervals),
        cmocka_unit_test(free_should_stop_the_sampler_without_waiting_an_interval),
        cmocka_unit_test(start_and_stop_100_times_should_leave_no_thread),
        cmocka_unit_test(stop_should_keep_samples_and_a_restart_should_resume),
        cmocka_unit_test(changing_the_interval_should_take_effect_while_running),
        cmocka_unit_test(history_should_keep_the_newest_and_count_the_rest),
        cmocka_unit_test(fork_child_should_have_no_sampler_and_not_hang),
        cmocka_unit_test(latch_readers_should_never_see_a_torn_sample),
        cmocka_unit_test(report_and_json_should_carry_the_samples),
        cmocka_unit_test(errors_should_be_reported_and_leave_the_tracker_unchanged),
        cmocka_unit_test(replay_should_keep_every_sample_of_the_trace),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
