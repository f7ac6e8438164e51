/* host.c — loads and unloads tests/plugin/plugin.c (path in PLUGIN). Exits 0
 * when both worked; a hang ends it with SIGALRM, which fails the test. */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    alarm(30);
    void *h = dlopen(PLUGIN, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "host: %s\n", dlerror());
        return 1;
    }
    int (*samples)(void);
    *(void **)&samples = dlsym(h, "plugin_samples");
    if (!samples || !samples()) {
        fprintf(stderr, "host: the plugin's tracker has no sample\n");
        return 1;
    }
    if (dlclose(h) != 0) {
        fprintf(stderr, "host: %s\n", dlerror());
        return 1;
    }
    puts("host: loaded and unloaded the plugin");
    return 0;
}
