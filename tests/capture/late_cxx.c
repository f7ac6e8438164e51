/* late_cxx — a C program, without the C++ runtime, that loads a plugin
 * linked with it (argv[1], capture/new_plugin.c) and calls it: the plugin's
 * blocks from operator new must be placed in the plugin's function, as they
 * are when the program itself is linked with the runtime. Exits 2 when the
 * plugin cannot be loaded. */
#include <dlfcn.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "late_cxx: %s\n", dlerror());
        return 2;
    }
    void (*call)(void) = NULL;
    *(void **)&call = dlsym(h, "plugin_new_some");
    if (!call)
        return 2;
    call();
    return 0;
}
