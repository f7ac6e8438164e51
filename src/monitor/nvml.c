/* nvml.c — the one place that talks to NVML. Loaded with dlopen so that the
 * library builds and runs without NVIDIA's driver; never spawns a process. */
#include "monitor/nvml.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#define NVML_SUCCESS 0

bool ms__nvml_open(ms__nvml *n, const char *path, char *why, size_t why_len)
{
    memset(n, 0, sizeof *n);
    if (!path)
        path = MS__NVML_LIBRARY;
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *e = dlerror();
        snprintf(why, why_len, "cannot load %s: %s", path, e ? e : "unknown reason");
        return false;
    }
    static const char *const names[] = {"nvmlInit_v2",
                                        "nvmlShutdown",
                                        "nvmlDeviceGetCount_v2",
                                        "nvmlDeviceGetHandleByIndex_v2",
                                        "nvmlDeviceGetUtilizationRates",
                                        "nvmlDeviceGetMemoryInfo"};
    void *fn[sizeof names / sizeof names[0]];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        fn[i] = dlsym(lib, names[i]);
        if (!fn[i]) {
            snprintf(why, why_len, "%s has no %s", path, names[i]);
            dlclose(lib);
            return false;
        }
    }
    // Function pointers from dlsym's void *: POSIX guarantees the conversion.
    int (*init)(void);
    memcpy(&init, &fn[0], sizeof init);
    int rc = init();
    if (rc != NVML_SUCCESS) {
        snprintf(why, why_len, "%s: nvmlInit_v2 failed with code %d", path, rc);
        dlclose(lib);
        return false;
    }
    n->lib = lib;
    memcpy(&n->shutdown, &fn[1], sizeof n->shutdown);
    memcpy(&n->count, &fn[2], sizeof n->count);
    memcpy(&n->handle, &fn[3], sizeof n->handle);
    memcpy(&n->util, &fn[4], sizeof n->util);
    memcpy(&n->mem, &fn[5], sizeof n->mem);
    return true;
}

bool ms__nvml_read(const ms__nvml *n, ms__sys_raw *r)
{
    r->gpu_ok = false;
    r->gpu_count = 0;
    r->gpu_util = 0.0;
    r->gpu_used = r->gpu_total = 0;
    unsigned count = 0;
    if (!n->lib || n->count(&count) != NVML_SUCCESS)
        return false;
    unsigned with_util = 0;
    double util = 0.0;
    for (unsigned i = 0; i < count; i++) {
        void *dev = NULL;
        if (n->handle(i, &dev) != NVML_SUCCESS)
            continue;
        r->gpu_count++;
        ms__nvml_util u;
        if (n->util(dev, &u) == NVML_SUCCESS) {
            util += u.gpu;
            with_util++;
        }
        ms__nvml_mem m;
        if (n->mem(dev, &m) == NVML_SUCCESS) {
            r->gpu_used += m.used;
            r->gpu_total += m.total;
        }
    }
    r->gpu_util = with_util ? util / with_util : 0.0;
    r->gpu_ok = r->gpu_count > 0;
    return r->gpu_ok;
}

void ms__nvml_close(ms__nvml *n)
{
    if (n->lib) {
        n->shutdown();
        dlclose(n->lib);
    }
    memset(n, 0, sizeof *n);
}
