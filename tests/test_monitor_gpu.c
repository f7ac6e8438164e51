/* test_monitor_gpu.c — the monitor with a fake NVML (two devices): GPU
 * figures reach the samples, the report and ms_current_system_snapshot. A
 * separate program because NVML is loaded once per process. */
#define _GNU_SOURCE
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <time.h>

#include "monitor/monitor.h"

static void fake_gpus_should_reach_the_samples(void **state)
{
    (void)state;
    ms__mon_set_nvml_library(FAKE_NVML);
    ms_tracker *t =
        ms_tracker_with_system_monitoring(ms_tracker_with_monitor_interval(ms_tracker_new(), 10));
    assert_non_null(t);
    ms_system_snapshot s = ms_current_system_snapshot(t);
    for (int i = 0; i < 20000 && s.interval_ns == 0; i++) {
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
        s = ms_current_system_snapshot(t);
    }
    assert_true(s.interval_ns > 0);
    assert_true(s.gpu_available);
    assert_int_equal(s.gpu_count, 2);
    assert_float_equal(s.gpu_usage_percent, 40.0, 1e-9);
    assert_int_equal(s.gpu_memory_used, 3ull << 30);
    assert_int_equal(s.gpu_memory_total, 24ull << 30);
    assert_string_equal(ms__mon_gpu_status(), "");
    ms_tracker_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fake_gpus_should_reach_the_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
