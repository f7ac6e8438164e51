/* threads — two threads, each churning small blocks and growing buffers with
 * realloc, and each leaking exactly LEAKS blocks of 64 bytes from
 * leak_some(): a report must show 2 x LEAKS blocks there. `wl_threads N` makes
 * N rounds a thread instead of ROUNDS (N a multiple of LEAKS). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEAKS 500
#define ROUNDS 20000000

static long rounds = ROUNDS;

__attribute__((noinline)) static void leak_some(void **keep, int i)
{
    keep[i] = malloc(64); /* the known leak: the pointer is dropped below */
}

static void *worker(void *arg)
{
    uint64_t rng = (uintptr_t)arg * 0x9E3779B97F4A7C15u + 1;
    static _Thread_local char *slot[1024];
    void *keep[LEAKS];
    char *grow = NULL;
    size_t cap = 0, len = 0;
    uint64_t sum = 0;
    for (long i = 0; i < rounds; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        size_t k = rng & 1023;
        free(slot[k]);
        slot[k] = malloc(16 + (rng >> 56));
        slot[k][0] = (char)i;
        if (len == cap) { /* a growing buffer, restarted every 64 KiB */
            cap = cap ? cap * 2 : 64;
            if (cap > 65536) {
                free(grow);
                grow = NULL;
                cap = 64;
                len = 0;
            }
            grow = realloc(grow, cap);
        }
        grow[len++] = (char)rng;
        sum += (unsigned char)slot[k][0];
        if (i % (rounds / LEAKS) == 0 && i / (rounds / LEAKS) < LEAKS)
            leak_some(keep, (int)(i / (rounds / LEAKS)));
    }
    for (int k = 0; k < 1024; k++)
        free(slot[k]);
    free(grow);
    return (void *)(uintptr_t)sum;
}

int main(int argc, char **argv)
{
    if (argc > 1 && atol(argv[1]) >= LEAKS)
        rounds = atol(argv[1]) / LEAKS * LEAKS;
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    uintptr_t total = 0;
    for (int i = 0; i < 2; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (uintptr_t)r;
    }
    printf("threads %lu leaked %d x 64 B\n", (unsigned long)total, 2 * LEAKS);
    return 0;
}
