/* nvml.h — GPU figures from NVIDIA's management library, loaded at run time
 * with dlopen: no build dependency, and no GPU means gpu_available false.
 * Only the few entry points needed are looked up (NVML's C ABI). */
#ifndef MS_MONITOR_NVML_H
#define MS_MONITOR_NVML_H

#include <stdbool.h>
#include <stddef.h>

#include "monitor/sysinfo.h"

#define MS__NVML_LIBRARY "libnvidia-ml.so.1"

typedef struct ms__nvml_util { /* nvmlUtilization_t */
    unsigned gpu, memory;      /* percent of the last sample period */
} ms__nvml_util;

typedef struct ms__nvml_mem {             /* nvmlMemory_t (v1) */
    unsigned long long total, free, used; /* bytes */
} ms__nvml_mem;

typedef struct ms__nvml {
    void *lib;
    int (*shutdown)(void);
    int (*count)(unsigned *);
    int (*handle)(unsigned, void **);
    int (*util)(void *, ms__nvml_util *);
    int (*mem)(void *, ms__nvml_mem *);
} ms__nvml;

/* Load `path` (NULL: MS__NVML_LIBRARY), find the entry points and initialise
 * NVML. @return true, or false with *n zeroed and the reason in `why`. */
bool ms__nvml_open(ms__nvml *n, const char *path, char *why, size_t why_len);
/* Read every device into r's gpu_ fields: utilisation averaged over the
 * devices that report it, memory summed. @return r->gpu_ok. */
bool ms__nvml_read(const ms__nvml *n, ms__sys_raw *r);
/* Shut NVML down and unload it. Accepts a closed one. */
void ms__nvml_close(ms__nvml *n);

#endif
