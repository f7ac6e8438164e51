/* test_sysinfo.c — the system monitor's readers through their internal
 * header: the line reader, each /proc parser on canned text (the formats of
 * proc(5), with the awkward cases), the rates between two readings, and the
 * NVML loader against a missing library, a library without NVML's entry
 * points and a fake NVML with two devices. */
#define _GNU_SOURCE
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "monitor/nvml.h"
#include "monitor/sysinfo.h"

/* ------------------------------------------------------------ line reader */

static void lines_should_split_and_keep_a_last_line_without_newline(void **state)
{
    (void)state;
    ms__lines l;
    ms__lines_str(&l, "one\n\nthree");
    assert_string_equal(ms__lines_next(&l), "one");
    assert_string_equal(ms__lines_next(&l), "");
    assert_string_equal(ms__lines_next(&l), "three");
    assert_null(ms__lines_next(&l));
    assert_null(ms__lines_next(&l));
}

static void lines_longer_than_the_buffer_should_be_cut_and_the_next_line_found(void **state)
{
    (void)state;
    static char text[3 * 4096 + 64];
    size_t n = 0;
    memset(text, 'x', 3 * 4096);
    n = 3 * 4096;
    strcpy(text + n, "\nnext line\n");
    ms__lines l;
    ms__lines_str(&l, text);
    char *first = ms__lines_next(&l);
    assert_non_null(first);
    assert_int_equal(strlen(first), sizeof l.buf - 1); // cut at the buffer's end
    assert_string_equal(ms__lines_next(&l), "next line");
    assert_null(ms__lines_next(&l));
}

static void lines_should_read_a_file_in_chunks(void **state)
{
    (void)state;
    char path[] = "/tmp/memscope-lines-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    // 2000 numbered lines: about 17 KB, several chunks.
    for (int i = 0; i < 2000; i++)
        dprintf(fd, "line %d\n", i);
    lseek(fd, 0, SEEK_SET);
    ms__lines l;
    ms__lines_fd(&l, fd);
    int i = 0;
    char want[32];
    for (char *line; (line = ms__lines_next(&l)); i++) {
        snprintf(want, sizeof want, "line %d", i);
        assert_string_equal(line, want);
    }
    assert_int_equal(i, 2000);
    close(fd);
    unlink(path);
}

/* ------------------------------------------------------------ parsers */

static bool parse_text(bool (*parse)(ms__lines *, ms__sys_raw *), const char *text, ms__sys_raw *r)
{
    ms__lines l;
    ms__lines_str(&l, text);
    return parse(&l, r);
}

static void self_stat_should_count_fields_from_the_last_paren(void **state)
{
    (void)state;
    // comm "a) (b c" has blanks and parentheses; priority and nice are negative.
    const char *text = "4242 (a) (b c) S 1 4242 4242 0 -1 4194560 900 0 0 0 12 3 0 0 "
                       "-21 -1 7 0 12345 1000000 321 18446744073709551615 1 1 0 0 0\n";
    ms__sys_raw r = {0};
    ms__lines l;
    ms__lines_str(&l, text);
    assert_true(ms__parse_self_stat(&l, &r, 4096));
    assert_int_equal(r.threads, 7);
    assert_int_equal(r.rss_bytes, 321 * 4096);
}

static void self_stat_should_survive_a_newline_in_comm(void **state)
{
    (void)state;
    const char *text = "77 (two\nlines) R 1 77 77 0 -1 0 0 0 0 0 0 0 0 0 20 0 3 0 5 4096 10 0\n";
    ms__sys_raw r = {0};
    ms__lines l;
    ms__lines_str(&l, text);
    assert_true(ms__parse_self_stat(&l, &r, 4096));
    assert_int_equal(r.threads, 3);
    assert_int_equal(r.rss_bytes, 10 * 4096);
}

static void self_stat_should_reject_a_short_line(void **state)
{
    (void)state;
    ms__sys_raw r = {0};
    ms__lines l;
    ms__lines_str(&l, "1 (x) S 1 2 3\n");
    assert_false(ms__parse_self_stat(&l, &r, 4096));
}

static void self_io_should_read_storage_bytes(void **state)
{
    (void)state;
    ms__sys_raw r = {0};
    assert_true(parse_text(ms__parse_self_io,
                           "rchar: 100\nwchar: 200\nsyscr: 3\nsyscw: 4\nread_bytes: 8192\n"
                           "write_bytes: 40960\ncancelled_write_bytes: 0\n",
                           &r));
    assert_int_equal(r.io_read, 8192);
    assert_int_equal(r.io_write, 40960);
    assert_false(parse_text(ms__parse_self_io, "rchar: 100\nwchar: 200\n", &r));
}

static void stat_should_sum_busy_ticks_and_count_cpus_past_a_long_line(void **state)
{
    (void)state;
    // user nice system idle iowait irq softirq steal guest guest_nice
    static char text[16384];
    int n = snprintf(text, sizeof text,
                     "cpu  100 5 50 1000 20 3 2 10 7 0\n"
                     "cpu0 50 2 25 500 10 1 1 5 3 0\n"
                     "cpu1 50 3 25 500 10 2 1 5 4 0\n"
                     "intr 123");
    for (int i = 0; i < 3000; i++) // an "intr" line of about 6 KB
        n += snprintf(text + n, sizeof text - (size_t)n, " 0");
    snprintf(text + n, sizeof text - (size_t)n, "\nctxt 999\n");
    ms__sys_raw r = {0};
    assert_true(parse_text(ms__parse_stat, text, &r));
    assert_int_equal(r.cpu_busy, 100 + 5 + 50 + 3 + 2 + 10);
    assert_int_equal(r.cpu_total, 100 + 5 + 50 + 3 + 2 + 10 + 1000 + 20);
    assert_int_equal(r.cpu_count, 2);
}

static void meminfo_should_use_mem_available_or_estimate_it(void **state)
{
    (void)state;
    ms__sys_raw r = {0};
    assert_true(parse_text(ms__parse_meminfo,
                           "MemTotal:        8000 kB\nMemFree:         1000 kB\n"
                           "MemAvailable:    6000 kB\nBuffers:          100 kB\n"
                           "Cached:           900 kB\n",
                           &r));
    assert_int_equal(r.mem_total, 8000 * 1024);
    assert_int_equal(r.mem_avail, 6000 * 1024);
    // A kernel before 3.14 has no MemAvailable: free + buffers + cached.
    assert_true(parse_text(ms__parse_meminfo,
                           "MemTotal: 8000 kB\nMemFree: 1000 kB\nBuffers: 100 kB\nCached: 900 kB\n",
                           &r));
    assert_int_equal(r.mem_avail, 2000 * 1024);
    assert_false(parse_text(ms__parse_meminfo, "MemFree: 1000 kB\n", &r));
}

/* Collects what a per-device parser reports. */
typedef struct devices {
    int n;
    char name[8][16];
    uint64_t a[8], b[8];
} devices;

static void collect(void *ctx, const char *name, uint64_t a, uint64_t b)
{
    devices *d = ctx;
    assert_true(d->n < 8);
    snprintf(d->name[d->n], sizeof d->name[0], "%s", name);
    d->a[d->n] = a;
    d->b[d->n] = b;
    d->n++;
}

static void diskstats_should_give_each_device_bytes_read_and_written(void **state)
{
    (void)state;
    const char *text = "   7       0 loop0 5 0 100 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
                       " 254       0 vda 84936 10000 1000 126418 24478 21280 2000 55975 0 42944 "
                       "193474 18893 80 13426336 7504 1565 3574\n"
                       " 254       1 vda1 80000 9000 900 1 2 3 1900 4 0 5 6\n"
                       " 259       0 nvme0n1 1 2 30 4 5 6 70 8 0 9 10\n"
                       "   8       0 short 1 2 3\n";
    devices d = {0};
    ms__lines l;
    ms__lines_str(&l, text);
    assert_true(ms__parse_diskstats(&l, collect, &d));
    assert_int_equal(d.n, 4); // the short line is skipped
    assert_string_equal(d.name[1], "vda");
    assert_int_equal(d.a[1], 1000 * 512);
    assert_int_equal(d.b[1], 2000 * 512);
    assert_string_equal(d.name[3], "nvme0n1");
    assert_int_equal(d.a[3], 30 * 512);
    assert_int_equal(d.b[3], 70 * 512);
}

static void net_dev_should_give_each_interface_bytes_received_and_sent(void **state)
{
    (void)state;
    const char *text =
        "Inter-|   Receive                                                |  Transmit\n"
        " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets "
        "errs drop fifo colls carrier compressed\n"
        "    lo:    6634      60    0    0    0     0          0         0     6634      60    "
        "0    0    0     0       0          0\n"
        "  eth0: 18949673     745    0    0    0     0          0         0    49039     630    "
        "0    0    0     0       0          0\n"
        "  eth1:123456789012 5 0 0 0 0 0 0 987654321098 6 0 0 0 0 0 0\n";
    devices d = {0};
    ms__lines l;
    ms__lines_str(&l, text);
    assert_true(ms__parse_net_dev(&l, collect, &d));
    assert_int_equal(d.n, 3);
    assert_string_equal(d.name[0], "lo");
    assert_int_equal(d.a[0], 6634);
    assert_string_equal(d.name[2], "eth1"); // the counter touches the ':'
    assert_int_equal(d.a[2], 123456789012ull);
    assert_int_equal(d.b[2], 987654321098ull);
}

static void device_totals_should_never_go_backwards(void **state)
{
    (void)state;
    static ms__devset s; // zeroed
    uint64_t a, b;
    ms__devset_begin(&s);
    ms__devset_add(&s, "eth0", 1000, 100);
    ms__devset_add(&s, "veth1", 5000, 500);
    ms__devset_end(&s, &a, &b);
    assert_int_equal(a, 6000);
    assert_int_equal(b, 600);
    // veth1 is gone; eth0 moved on: the total grows by eth0's 200 only.
    ms__devset_begin(&s);
    ms__devset_add(&s, "eth0", 1200, 150);
    ms__devset_end(&s, &a, &b);
    assert_int_equal(a, 6200);
    assert_int_equal(b, 650);
    // eth0's counters restart (a driver reload) and count 30 more.
    ms__devset_begin(&s);
    ms__devset_add(&s, "eth0", 30, 5);
    ms__devset_end(&s, &a, &b);
    assert_int_equal(a, 6230);
    assert_int_equal(b, 655);
    // A new interface adds its counters from its first reading.
    ms__devset_begin(&s);
    ms__devset_add(&s, "eth0", 40, 5);
    ms__devset_add(&s, "wlan0", 7, 7);
    ms__devset_end(&s, &a, &b);
    assert_int_equal(a, 6247);
    assert_int_equal(b, 662);
}

static void reading_this_machine_should_fill_every_source(void **state)
{
    (void)state;
    ms__sys_reader rd;
    ms__sys_reader_init(&rd);
    ms__sys_raw r;
    ms__sys_read(&rd, &r);
    // /proc/self/io may be unreadable in some sandboxes; the rest is always there.
    uint32_t need = MS__METRIC_ALL & ~(uint32_t)MS_METRIC_PROCESS_IO;
    assert_int_equal(r.ok & need, need);
    assert_true(r.threads >= 1);
    assert_true(r.rss_bytes > 0);
    assert_true(r.cpu_count >= 1);
    assert_true(r.mem_total > r.rss_bytes);
    assert_true(r.mono_ns > 0 && r.real_ns > 0);
    ms__sys_reader_close(&rd);
}

static void reader_should_leave_alone_a_descriptor_the_program_reused(void **state)
{
    (void)state;
    ms__sys_reader rd;
    ms__sys_reader_init(&rd);
    ms__sys_raw r;
    ms__sys_read(&rd, &r);
    int ours = rd.src[0].fd; // /proc/self/stat
    assert_true(ours >= 0);
    // The program closes every descriptor it does not know, then opens a
    // file of its own, which gets the same number.
    close(ours);
    char path[] = "/tmp/memscope-reuse-XXXXXX";
    int theirs = mkstemp(path);
    assert_int_equal(theirs, ours);
    assert_int_equal(write(theirs, "theirs", 6), 6);
    ms__sys_read(&rd, &r);
    assert_true(r.ok & MS_METRIC_PROCESS_STAT); // read from a file opened anew
    assert_int_not_equal(rd.src[0].fd, theirs);
    ms__sys_reader_close(&rd);
    // Their file is still open, untouched.
    char buf[8] = "";
    assert_int_equal(pread(theirs, buf, sizeof buf, 0), 6);
    assert_memory_equal(buf, "theirs", 6);
    close(theirs);
    unlink(path);
}

/* ------------------------------------------------------------ rates */

static ms__sys_raw raw_at(uint64_t mono_ns)
{
    ms__sys_raw r = {0};
    r.mono_ns = mono_ns;
    r.cpu_mono_ns = mono_ns - 1000;
    r.real_ns = 1700000000000000000ull + mono_ns;
    r.ok = MS__METRIC_ALL;
    r.cpu_count = 2;
    r.threads = 3;
    r.rss_bytes = 409600;
    r.mem_total = 8ull << 30;
    r.mem_avail = 6ull << 30;
    return r;
}

static void rates_should_be_exact_over_the_window(void **state)
{
    (void)state;
    ms__sys_raw a = raw_at(1000000000), b = raw_at(1100000000); // 100 ms
    a.cpu_busy = 100, a.cpu_total = 400;
    b.proc_cpu_ns = 50000000; // 50 ms of CPU in 100 ms
    b.io_read = 1000000, b.io_write = 200000;
    b.cpu_busy = 150, b.cpu_total = 600;
    b.disk_read = 512000, b.disk_write = 1024;
    b.net_rx = 1000, b.net_tx = 2000, b.lo_rx = 5000, b.lo_tx = 5000;
    ms_system_snapshot s;
    ms__sys_rates(&a, &b, &s);
    assert_int_equal(s.timestamp, b.real_ns);
    assert_int_equal(s.interval_ns, 100000000);
    assert_float_equal(s.cpu_usage_percent, 50.0, 1e-9);
    assert_float_equal(s.machine_cpu_percent, 25.0, 1e-9);
    assert_int_equal(s.disk_read_bps, 10000000);
    assert_int_equal(s.disk_write_bps, 2000000);
    assert_int_equal(s.machine_disk_read_bps, 5120000);
    assert_int_equal(s.machine_disk_write_bps, 10240);
    assert_int_equal(s.network_rx_bps, 10000);
    assert_int_equal(s.network_tx_bps, 20000);
    assert_int_equal(s.loopback_rx_bps, 50000);
    assert_int_equal(s.loopback_tx_bps, 50000);
    assert_int_equal(s.memory_usage_bytes, 409600);
    assert_float_equal(s.memory_usage_percent, 100.0 * 409600 / (8.0 * (1 << 30)), 1e-12);
    assert_int_equal(s.machine_memory_total, 8ull << 30);
    assert_int_equal(s.machine_memory_used, 2ull << 30);
    assert_int_equal(s.thread_count, 3);
    assert_int_equal(s.cpu_count, 2);
    assert_int_equal(s.missing, 0);
    assert_false(s.gpu_available);
    assert_int_equal(s.gpu_memory_total, 0);
}

static void baseline_should_have_levels_and_no_rates(void **state)
{
    (void)state;
    ms__sys_raw b = raw_at(5000);
    b.proc_cpu_ns = 123456789; // CPU since the process started: not a rate
    b.io_write = 1ull << 40;
    ms_system_snapshot s;
    ms__sys_rates(NULL, &b, &s);
    assert_int_equal(s.interval_ns, 0);
    assert_float_equal(s.cpu_usage_percent, 0.0, 0.0);
    assert_int_equal(s.disk_write_bps, 0);
    assert_int_equal(s.memory_usage_bytes, 409600);
    assert_int_equal(s.thread_count, 3);
}

static void counters_going_backwards_should_read_zero_not_a_spike(void **state)
{
    (void)state;
    ms__sys_raw a = raw_at(1000000000), b = raw_at(2000000000);
    a.net_rx = 1000000, a.disk_read = 5000, a.io_read = 7000;
    b.net_rx = 10, b.disk_read = 0, b.io_read = 7000; // an interface or disk went away
    ms_system_snapshot s;
    ms__sys_rates(&a, &b, &s);
    assert_int_equal(s.network_rx_bps, 0);
    assert_int_equal(s.machine_disk_read_bps, 0);
    assert_int_equal(s.disk_read_bps, 0);
}

static void cpu_should_be_capped_at_every_cpu_busy(void **state)
{
    (void)state;
    ms__sys_raw a = raw_at(1000000000), b = raw_at(1100000000);
    b.proc_cpu_ns = 250000000; // 2.5 CPUs' worth on 2 CPUs: clock skew
    ms_system_snapshot s;
    ms__sys_rates(&a, &b, &s);
    assert_float_equal(s.cpu_usage_percent, 200.0, 0.0);
}

static void a_source_missing_from_either_reading_should_be_flagged(void **state)
{
    (void)state;
    ms__sys_raw a = raw_at(1000000000), b = raw_at(1100000000);
    a.ok &= ~(uint32_t)MS_METRIC_PROCESS_IO; // unreadable before: no rate now
    b.ok &= ~(uint32_t)MS_METRIC_NETWORK;    // unreadable now
    b.io_write = 1000;
    b.net_rx = 1000;
    ms_system_snapshot s;
    ms__sys_rates(&a, &b, &s);
    assert_int_equal(s.missing, MS_METRIC_PROCESS_IO | MS_METRIC_NETWORK);
    assert_int_equal(s.disk_write_bps, 0);
    assert_int_equal(s.network_rx_bps, 0);
}

/* ------------------------------------------------------------ NVML */

static void nvml_should_report_a_missing_library(void **state)
{
    (void)state;
    ms__nvml n;
    char why[256] = "";
    assert_false(ms__nvml_open(&n, "/nonexistent/libnvidia-ml.so.1", why, sizeof why));
    assert_non_null(strstr(why, "cannot load /nonexistent/libnvidia-ml.so.1"));
    assert_null(n.lib);
    ms__sys_raw r = {0};
    r.gpu_ok = true;
    assert_false(ms__nvml_read(&n, &r));
    assert_false(r.gpu_ok);
    ms__nvml_close(&n); // closing a closed one is fine
}

static void nvml_should_reject_a_library_without_its_entry_points(void **state)
{
    (void)state;
    ms__nvml n;
    char why[256] = "";
    assert_false(ms__nvml_open(&n, FAKE_NVML_NOSYMS, why, sizeof why));
    assert_non_null(strstr(why, "has no nvmlDeviceGetCount_v2"));
    assert_null(n.lib);
}

static void nvml_should_average_utilisation_and_sum_memory(void **state)
{
    (void)state;
    ms__nvml n;
    char why[256] = "";
    assert_true(ms__nvml_open(&n, FAKE_NVML, why, sizeof why));
    ms__sys_raw r = {0};
    assert_true(ms__nvml_read(&n, &r));
    // The fake has two devices: 30% and 50% busy, 1 of 8 GiB and 2 of 16 GiB used.
    assert_int_equal(r.gpu_count, 2);
    assert_float_equal(r.gpu_util, 40.0, 1e-9);
    assert_int_equal(r.gpu_used, 3ull << 30);
    assert_int_equal(r.gpu_total, 24ull << 30);
    ms__nvml_close(&n);
    assert_null(n.lib);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(lines_should_split_and_keep_a_last_line_without_newline),
        cmocka_unit_test(lines_longer_than_the_buffer_should_be_cut_and_the_next_line_found),
        cmocka_unit_test(lines_should_read_a_file_in_chunks),
        cmocka_unit_test(self_stat_should_count_fields_from_the_last_paren),
        cmocka_unit_test(self_stat_should_survive_a_newline_in_comm),
        cmocka_unit_test(self_stat_should_reject_a_short_line),
        cmocka_unit_test(self_io_should_read_storage_bytes),
        cmocka_unit_test(stat_should_sum_busy_ticks_and_count_cpus_past_a_long_line),
        cmocka_unit_test(meminfo_should_use_mem_available_or_estimate_it),
        cmocka_unit_test(diskstats_should_give_each_device_bytes_read_and_written),
        cmocka_unit_test(net_dev_should_give_each_interface_bytes_received_and_sent),
        cmocka_unit_test(device_totals_should_never_go_backwards),
        cmocka_unit_test(reading_this_machine_should_fill_every_source),
        cmocka_unit_test(reader_should_leave_alone_a_descriptor_the_program_reused),
        cmocka_unit_test(rates_should_be_exact_over_the_window),
        cmocka_unit_test(baseline_should_have_levels_and_no_rates),
        cmocka_unit_test(counters_going_backwards_should_read_zero_not_a_spike),
        cmocka_unit_test(cpu_should_be_capped_at_every_cpu_busy),
        cmocka_unit_test(a_source_missing_from_either_reading_should_be_flagged),
        cmocka_unit_test(nvml_should_report_a_missing_library),
        cmocka_unit_test(nvml_should_reject_a_library_without_its_entry_points),
        cmocka_unit_test(nvml_should_average_utilisation_and_sum_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
