/* rates.c — two readings of the counters into one sample: rates over the
 * window between them, levels as of the second. Plain arithmetic. */
#include <string.h>

#include "monitor/sysinfo.h"

/* Bytes per second for a counter that moved from a to b in ns nanoseconds;
 * 0 when it went backwards (a device or interface went away). */
static uint64_t per_sec(uint64_t a, uint64_t b, uint64_t ns)
{
    if (b <= a || ns == 0)
        return 0;
    double r = (double)(b - a) * 1e9 / (double)ns;
    return r >= 0x1.0p64 ? UINT64_MAX : (uint64_t)(r + 0.5);
}

void ms__sys_rates(const ms__sys_raw *prev, const ms__sys_raw *cur, ms_system_snapshot *out)
{
    memset(out, 0, sizeof *out);
    out->timestamp = cur->real_ns;
    uint32_t ok = cur->ok;
    out->missing = ~ok & MS__METRIC_ALL;

    if (ok & MS_METRIC_PROCESS_STAT) {
        out->memory_usage_bytes = cur->rss_bytes;
        out->thread_count = cur->threads;
    }
    if (ok & MS_METRIC_MACHINE_MEMORY) {
        out->machine_memory_total = cur->mem_total;
        out->machine_memory_used = cur->mem_total - cur->mem_avail;
        if ((ok & MS_METRIC_PROCESS_STAT) && cur->mem_total > 0)
            out->memory_usage_percent = 100.0 * (double)cur->rss_bytes / (double)cur->mem_total;
    }
    if (ok & MS_METRIC_MACHINE_CPU)
        out->cpu_count = cur->cpu_count;
    if (cur->gpu_ok) {
        out->gpu_available = true;
        out->gpu_count = cur->gpu_count;
        out->gpu_usage_percent = cur->gpu_util;
        out->gpu_memory_used = cur->gpu_used;
        out->gpu_memory_total = cur->gpu_total;
    }
    if (!prev || cur->mono_ns <= prev->mono_ns)
        return; // the baseline: levels only, every rate 0

    uint64_t ns = cur->mono_ns - prev->mono_ns;
    out->interval_ns = ns;
    // A rate needs its source in both readings; otherwise it is missing.
    uint32_t both = ok & prev->ok;
    out->missing |=
        (ok & ~both) & (MS_METRIC_PROCESS_CPU | MS_METRIC_PROCESS_IO | MS_METRIC_MACHINE_CPU |
                        MS_METRIC_MACHINE_DISK | MS_METRIC_NETWORK);
    if ((both & MS_METRIC_PROCESS_CPU) && cur->cpu_mono_ns > prev->cpu_mono_ns) {
        uint64_t cpu_ns = cur->cpu_mono_ns - prev->cpu_mono_ns;
        double pct = cur->proc_cpu_ns > prev->proc_cpu_ns
                         ? 100.0 * (double)(cur->proc_cpu_ns - prev->proc_cpu_ns) / (double)cpu_ns
                         : 0.0;
        // The clocks are read microseconds apart; no reading can exceed
        // every CPU busy for the whole window.
        if (out->cpu_count && pct > 100.0 * out->cpu_count)
            pct = 100.0 * out->cpu_count;
        out->cpu_usage_percent = pct;
    }
    if (both & MS_METRIC_PROCESS_IO) {
        out->disk_read_bps = per_sec(prev->io_read, cur->io_read, ns);
        out->disk_write_bps = per_sec(prev->io_write, cur->io_write, ns);
    }
    if ((both & MS_METRIC_MACHINE_CPU) && cur->cpu_total > prev->cpu_total &&
        cur->cpu_busy >= prev->cpu_busy) {
        double pct = 100.0 * (double)(cur->cpu_busy - prev->cpu_busy) /
                     (double)(cur->cpu_total - prev->cpu_total);
        out->machine_cpu_percent = pct > 100.0 ? 100.0 : pct;
    }
    if (both & MS_METRIC_MACHINE_DISK) {
        out->machine_disk_read_bps = per_sec(prev->disk_read, cur->disk_read, ns);
        out->machine_disk_write_bps = per_sec(prev->disk_write, cur->disk_write, ns);
    }
    if (both & MS_METRIC_NETWORK) {
        out->network_rx_bps = per_sec(prev->net_rx, cur->net_rx, ns);
        out->network_tx_bps = per_sec(prev->net_tx, cur->net_tx, ns);
        out->loopback_rx_bps = per_sec(prev->lo_rx, cur->lo_rx, ns);
        out->loopback_tx_bps = per_sec(prev->lo_tx, cur->lo_tx, ns);
    }
}
