/* system_monitoring.c — the seed's "with system monitoring" example in C: a
 * tracker that also samples CPU, memory, threads, disk, network and GPU in
 * the background (every 100 ms). It works for about half a second, growing
 * a 32 MiB table, then prints the latest sample and how many the report
 * holds. Returns non-zero if a figure is implausible. */
#define _POSIX_C_SOURCE 200809L
#include <memscope.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    ms_tracker *t = TRACKER();
    if (t == NULL) {
        fprintf(stderr, "system_monitoring: %s\n", ms_strerror(ms_last_error()));
        return 1;
    }
    ms_tracker_with_system_monitoring(t);
    if (ms_last_error() != 0) {
        fprintf(stderr, "system_monitoring: %s\n", ms_last_error_message());
        return 1;
    }

    int *data = malloc(3 * sizeof *data);
    if (data == NULL)
        return 1;
    data[0] = 1, data[1] = 2, data[2] = 3;
    TRACK(t, data);

    /* Work for a while: 32 blocks of 1 MiB, filled and summed over and over
     * until half a second has passed and the monitor has taken 3 samples (a
     * loaded machine may run it late; 10 s at most), so it has samples to show. */
    enum { BLOCKS = 32, BLOCK = 1 << 20 };
    unsigned char *table[BLOCKS];
    for (int i = 0; i < BLOCKS; i++) {
        table[i] = malloc(BLOCK);
        if (table[i] == NULL)
            return 1;
        memset(table[i], i, BLOCK);
        TRACK(t, table[i]);
    }
    unsigned long long sum = 0;
    uint64_t seen = ms_current_system_snapshot(t).timestamp;
    int samples = 0;
    for (double start = now_sec(); now_sec() < start + (samples < 3 ? 10.0 : 0.5);) {
        for (int i = 0; i < BLOCKS; i++)
            for (int j = 0; j < BLOCK; j += 64)
                sum += table[i][j];
        uint64_t at = ms_current_system_snapshot(t).timestamp;
        samples += at != seen;
        seen = at;
    }

    /* The current system snapshot: never blocks. */
    ms_system_snapshot snapshot = ms_current_system_snapshot(t);
    printf("CPU usage: %.2f%% of one core (machine: %.2f%% of %u CPUs)\n",
           snapshot.cpu_usage_percent, snapshot.machine_cpu_percent, snapshot.cpu_count);
    printf("Memory usage: %.2f%% (%.1f MiB resident), %zu threads\n", snapshot.memory_usage_percent,
           (double)snapshot.memory_usage_bytes / (1 << 20), snapshot.thread_count);
    printf("GPU: %s\n", snapshot.gpu_available ? "available" : "none found");

    /* The analysis report carries every sample. */
    ms_analysis_report *report = ms_analyze(t);
    if (report == NULL) {
        fprintf(stderr, "system_monitoring: ms_analyze: %s\n", ms_last_error_message());
        return 1;
    }
    printf("System snapshots: %zu\n", report->system_snapshot_count);
    ms_report_print(report, stdout);

    int failed = 0;
    if (report->system_snapshot_count < 3 || snapshot.interval_ns == 0) {
        fprintf(stderr, "system_monitoring: expected samples every 100 ms for 0.5 s, got %zu\n",
                report->system_snapshot_count);
        failed = 1;
    }
    if (snapshot.memory_usage_bytes < (uint64_t)BLOCKS * BLOCK || snapshot.thread_count < 2 ||
        snapshot.cpu_usage_percent <= 0.0) {
        fprintf(stderr, "system_monitoring: implausible sample (RSS %llu, %zu threads, CPU %.1f)\n",
                (unsigned long long)snapshot.memory_usage_bytes, snapshot.thread_count,
                snapshot.cpu_usage_percent);
        failed = 1;
    }
    ms_report_free(report);

    printf("(checksum %llu)\n", sum);
    for (int i = 0; i < BLOCKS; i++)
        MS_FREE(t, table[i]);
    MS_FREE(t, data);
    ms_tracker_free(t); /* stops the monitor */
    return failed;
}
