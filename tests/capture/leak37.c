/* leak37 — leaks exactly 37 blocks of 100 bytes from leak_here(), frees
 * everything else, sleeps argv[2] milliseconds (default 0) and exits with the
 * status given as argv[1] (default 0). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

void *volatile sink;

__attribute__((noinline)) void leak_here(void)
{
    for (int i = 0; i < 37; i++) {
        char *p = malloc(100);
        memset(p, i, 100);
        sink = p; // dropped at the next round: a leak
    }
}

int main(int argc, char **argv)
{
    char *tmp = malloc(500);
    leak_here();
    free(tmp);
    long ms = argc > 2 ? atol(argv[2]) : 0;
    struct timespec t = {ms / 1000, ms % 1000 * 1000000L};
    while (ms > 0 && nanosleep(&t, &t) != 0)
        ;
    return argc > 1 ? atoi(argv[1]) : 0;
}
