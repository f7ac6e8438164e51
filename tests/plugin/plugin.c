/* plugin.c — a shared library with memscope linked in, which starts a
 * monitoring tracker when it is loaded and frees it when it is unloaded: in
 * its constructor and destructor, which run under the dynamic loader's lock.
 * The sampler thread must never need that lock, or the free would wait for
 * it forever. */
#include <memscope.h>

#include <time.h>

static ms_tracker *tracker;

__attribute__((constructor)) static void plugin_load(void)
{
    tracker = ms_tracker_with_monitor_interval(ms_tracker_new(), 10);
    ms_tracker_with_system_monitoring(tracker);
}

__attribute__((destructor)) static void plugin_unload(void)
{
    // Long enough for the sampler to take several readings meanwhile.
    struct timespec wait = {0, 100000000};
    nanosleep(&wait, NULL);
    ms_tracker_free(tracker);
}

__attribute__((visibility("default"))) int plugin_samples(void);
int plugin_samples(void) { return ms_current_system_snapshot(tracker).timestamp != 0; }
