/* fake_nvml.c — a stand-in for libnvidia-ml.so.1, built by the tests as a
 * loadable module. With FAKE_NVML_FULL: two devices, 30% and 50% busy, 1 GiB
 * of 8 GiB and 2 GiB of 16 GiB used. Without it: only nvmlInit_v2 and
 * nvmlShutdown, so a loader must notice the missing entry points. Written
 * from NVML's documented C interface; no NVIDIA code. */
#define FAKE_API __attribute__((visibility("default")))

FAKE_API int nvmlInit_v2(void);
FAKE_API int nvmlShutdown(void);
FAKE_API int nvmlInit_v2(void) { return 0; }
FAKE_API int nvmlShutdown(void) { return 0; }

#ifdef FAKE_NVML_FULL
typedef struct fake_util {
    unsigned gpu, memory;
} fake_util;
typedef struct fake_mem {
    unsigned long long total, free, used;
} fake_mem;
typedef struct fake_dev {
    unsigned busy;
    unsigned long long used, total;
} fake_dev;

static fake_dev devs[2] = {{30, 1ull << 30, 8ull << 30}, {50, 2ull << 30, 16ull << 30}};

FAKE_API int nvmlDeviceGetCount_v2(unsigned *count);
FAKE_API int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **dev);
FAKE_API int nvmlDeviceGetUtilizationRates(void *dev, fake_util *u);
FAKE_API int nvmlDeviceGetMemoryInfo(void *dev, fake_mem *m);

int nvmlDeviceGetCount_v2(unsigned *count)
{
    *count = 2;
    return 0;
}

int nvmlDeviceGetHandleByIndex_v2(unsigned i, void **dev)
{
    if (i >= 2)
        return 2; // NVML_ERROR_INVALID_ARGUMENT
    *dev = &devs[i];
    return 0;
}

int nvmlDeviceGetUtilizationRates(void *dev, fake_util *u)
{
    const fake_dev *d = dev;
    u->gpu = d->busy;
    u->memory = 0;
    return 0;
}

int nvmlDeviceGetMemoryInfo(void *dev, fake_mem *m)
{
    const fake_dev *d = dev;
    m->total = d->total;
    m->used = d->used;
    m->free = d->total - d->used;
    return 0;
}
#endif
