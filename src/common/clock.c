/* clock.c — clocksource detection and tick calibration (Linux: reads
 * /sys/devices/system/clocksource once). Depends on nothing. */
#include "common/clock.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

bool ms__clock_use_tsc;
static uint64_t init_tick, init_real_ns, init_mono_ns;
static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pthread_once_t calib_once = PTHREAD_ONCE_INIT;
static ms__timebase timebase;

static bool kernel_uses_tsc(void)
{
#if MS__HAVE_TSC
    char buf[32] = {0};
    int fd = open("/sys/devices/system/clocksource/clocksource0/current_clocksource",
                  O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    // The kernel only keeps "tsc" as its clocksource when the TSC is invariant
    // and synchronised across CPUs, which is what cross-thread ordering needs.
    return n >= 3 && strncmp(buf, "tsc", 3) == 0 && (buf[3] == '\n' || buf[3] == '\0');
#else
    return false;
#endif
}

/* Reads a (tick, mono ns) pair with the tick taken on both sides of the clock
 * read, keeping the tightest of a few tries. */
static void read_pair(uint64_t *tick, uint64_t *mono)
{
    uint64_t best = UINT64_MAX;
    for (int i = 0; i < 5; i++) {
        uint64_t a = ms__ticks_ordered();
        uint64_t m = ms__mono_ns();
        uint64_t b = ms__ticks_ordered();
        if (b - a < best) {
            best = b - a;
            *tick = a + (b - a) / 2;
            *mono = m;
        }
    }
}

static void do_init(void)
{
    ms__clock_use_tsc = kernel_uses_tsc();
    read_pair(&init_tick, &init_mono_ns);
    init_real_ns = ms__real_ns() - (ms__mono_ns() - init_mono_ns);
}

void ms__clock_init(void) { pthread_once(&init_once, do_init); }

static _Atomic bool calibrate_at_once; /* the process is exiting: no 5 ms wait */

static void do_calibrate(void)
{
    ms__clock_init();
    timebase.tick0 = init_tick;
    timebase.ns0 = init_real_ns;
    if (!ms__clock_use_tsc) {
        timebase.ns_per_tick = 1.0;
        return;
    }
    // A longer baseline gives a better ratio; 5 ms bounds the error near 1e-5.
    const uint64_t min_span_ns = 5000000;
    uint64_t tick, mono;
    read_pair(&tick, &mono);
    while (mono - init_mono_ns < min_span_ns &&
           !atomic_load_explicit(&calibrate_at_once, memory_order_relaxed)) {
        struct timespec ts = {0, (long)(min_span_ns - (mono - init_mono_ns))};
        nanosleep(&ts, NULL);
        read_pair(&tick, &mono);
    }
    timebase.ns_per_tick = (double)(mono - init_mono_ns) / (double)(tick - init_tick);
}

void ms__clock_calibrate_at_exit(void)
{
    atomic_store_explicit(&calibrate_at_once, true, memory_order_relaxed);
    pthread_once(&calib_once, do_calibrate);
}

const ms__timebase *ms__clock_timebase(void)
{
    pthread_once(&calib_once, do_calibrate);
    return &timebase;
}

/* The largest power of two not above the ticks in a millisecond, fixed at the
 * first call. It needs no 5 ms calibration (the first store of a process
 * asks for it, often at start-up): a 50 µs span gives the ratio to well
 * under a percent, unless the full calibration has been made already. A
 * ratio within a few hundredths of a power of two may round either way. */
static uint64_t pow2_per_ms;
static pthread_once_t pow2_once = PTHREAD_ONCE_INIT;

static void do_pow2(void)
{
    ms__clock_init();
    double ns_per_tick = 1.0;
    if (ms__clock_use_tsc) {
        uint64_t t0, m0, t1, m1;
        read_pair(&t0, &m0);
        do
            read_pair(&t1, &m1);
        while (m1 - m0 < 50000);
        ns_per_tick = (double)(m1 - m0) / (double)(t1 - t0);
    }
    double per_ms = 1e6 / ns_per_tick;
    uint64_t p = 1;
    while ((double)(p * 2) <= per_ms)
        p *= 2;
    pow2_per_ms = p;
}

uint64_t ms__clock_ticks_per_ms_pow2(void)
{
    pthread_once(&pow2_once, do_pow2);
    return pow2_per_ms;
}
