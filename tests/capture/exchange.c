/* exchange — 6 threads hand blocks to each other through shared slots: each
 * allocates, swaps its block into a random slot and frees the block it took
 * out, which another thread allocated (often moments before, and glibc hands
 * the freed address straight back to the next allocation). At the end every
 * slot is freed; the only blocks left are 37 of 100 bytes from leak_here(). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#define THREADS 6
#define ROUNDS 150000
#define SLOTS 1024

static _Atomic(void *) slot[SLOTS];
void *volatile sink;

__attribute__((noinline)) void leak_here(void)
{
    for (int i = 0; i < 37; i++)
        sink = malloc(100); // dropped at the next round: a leak
}

static void *work(void *arg)
{
    uint64_t x = (uintptr_t)arg * 0x9E3779B97F4A7C15u + 1;
    for (int i = 0; i < ROUNDS; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        char *p = malloc(16 + (x >> 58) * 16);
        if (!p)
            abort();
        p[0] = (char)i;
        free(atomic_exchange(&slot[x % SLOTS], p));
    }
    return NULL;
}

int main(void)
{
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, work, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < SLOTS; i++)
        free(atomic_load(&slot[i]));
    leak_here();
    return 0;
}
