/* bench_monitor.c — what the system monitor costs: a read of the latest
 * sample (ms_current_system_snapshot), with the sampler idle between samples
 * and with it publishing every millisecond; and the sampler thread's own CPU
 * time at the default 100 ms interval, from /proc/self/task/<tid>/stat (clock
 * ticks) and from the thread's CPU clock (nanoseconds), over
 * MEMSCOPE_BENCH_MONITOR_SEC seconds (default 10). */
#define _GNU_SOURCE
#include <memscope.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench_util.h"
#include "monitor/monitor.h"

enum { BATCHES = 51, CALLS = 20000 };

static volatile uint64_t sink;

/* Median ns per ms_current_system_snapshot over BATCHES batches of CALLS. */
static double snapshot_ns(ms_tracker *t)
{
    double v[BATCHES];
    for (int b = 0; b < BATCHES; b++) {
        uint64_t acc = 0, t0 = bench_now_ns();
        for (int i = 0; i < CALLS; i++)
            acc += ms_current_system_snapshot(t).memory_usage_bytes;
        v[b] = (double)(bench_now_ns() - t0) / CALLS;
        sink = acc;
    }
    return bench_median(v, BATCHES);
}

/* The thread id of the thread named `name`, 0 if there is none. */
static long find_thread(const char *name)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 0;
    long tid = 0;
    struct dirent *e;
    while (!tid && (e = readdir(d)) != NULL) {
        char path[300], comm[64] = "";
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        if (fgets(comm, sizeof comm, f) && strncmp(comm, name, strlen(name)) == 0)
            tid = strtol(e->d_name, NULL, 10);
        fclose(f);
    }
    closedir(d);
    return tid;
}

/* utime + stime of a thread of this process, in clock ticks; -1 if unreadable. */
static long long thread_ticks(long tid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    // Fields 14 and 15 (utime, stime); field 3 follows the ')'.
    long long v[16] = {0};
    int field = 3;
    for (p++; *p && field <= 15; field++) {
        while (*p == ' ')
            p++;
        v[field] = strtoll(p, NULL, 10);
        while (*p && *p != ' ')
            p++;
    }
    return field > 15 ? v[14] + v[15] : -1;
}

int main(void)
{
    bench_init_output();
    double seconds = 10.0;
    const char *env = getenv("MEMSCOPE_BENCH_MONITOR_SEC");
    if (env && atof(env) > 0)
        seconds = atof(env);

    // ---------------------------------------------------- reading the latest
    ms_tracker *t = ms_tracker_with_system_monitoring(ms_tracker_new());
    if (!t || ms_last_error()) {
        fprintf(stderr, "bench_monitor: cannot start the monitor: %s\n", ms_last_error_message());
        return 1;
    }
    printf("# ns per ms_current_system_snapshot (%zu-byte sample), median of %d batches of %d\n",
           sizeof(ms_system_snapshot), BATCHES, CALLS);
    bench_metric("current_snapshot_ns", snapshot_ns(t), 1);
    ms_tracker_with_monitor_interval(t, 1);
    bench_metric("current_snapshot_publishing_every_1ms_ns", snapshot_ns(t), 1);
    ms_tracker_free(t);

    // ---------------------------------------------------- the sampler's cost
    t = ms_tracker_with_system_monitoring(ms_tracker_new()); // 100 ms: the default
    long tid = find_thread("memscope-mon");
    if (!t || tid == 0) {
        fprintf(stderr, "bench_monitor: no memscope-mon thread\n");
        return 1;
    }
    long hz = sysconf(_SC_CLK_TCK);
    printf("# the sampler thread (tid %ld) at 100 ms for %.0f s; /proc ticks are 1/%ld s\n", tid,
           seconds, hz);
    // From the first sample on: the thread's start (and NVML's one search for
    // its library) is not part of the steady cost.
    uint64_t cpu0, readings0;
    do {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        ms__mon_self_cost(&cpu0, &readings0);
    } while (readings0 == 0);
    long long ticks0 = thread_ticks(tid);
    uint64_t w0 = bench_now_ns();
    struct timespec nap = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    while (nanosleep(&nap, &nap) != 0) {
    }
    uint64_t cpu1, readings1, wall = bench_now_ns() - w0;
    ms__mon_self_cost(&cpu1, &readings1);
    long long ticks1 = thread_ticks(tid);
    uint64_t readings = readings1 - readings0;
    bench_metric_u64("monitor_samples", readings);
    bench_metric("monitor_sample_cpu_us", (double)(cpu1 - cpu0) / 1e3 / (double)readings, 1);
    bench_metric("monitor_cpu_percent_of_one_core", 100.0 * (double)(cpu1 - cpu0) / (double)wall,
                 3);
    if (ticks0 >= 0 && ticks1 >= 0)
        bench_metric("monitor_cpu_percent_of_one_core_proc_stat",
                     100.0 * (double)(ticks1 - ticks0) / (double)hz / ((double)wall / 1e9), 3);
    ms_tracker_free(t);
    return 0;
}
