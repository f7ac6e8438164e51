/* churn — many short-lived, mixed-size blocks: 7 M malloc/free pairs (14 M
 * operations) over a working set of 4096 blocks, mostly small, some large.
 * The allocation-heavy workload of bench/compare-peers.sh. `wl_churn N` makes
 * N pairs instead (bench/hook-instructions.sh). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define SLOTS 4096
#define PAIRS 7000000

static uint64_t rng = 0x9E3779B97F4A7C15u;
static inline uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static size_t pick_size(uint64_t r)
{
    unsigned k = (unsigned)(r >> 56);
    if (k < 200)
        return 16 + (r & 255); /* 78%: 16..271 B */
    if (k < 250)
        return 256 + (r & 2047); /* 20%: up to 2.3 KiB */
    return 4096 + (r & 65535);   /* 2%: 4..68 KiB */
}

int main(int argc, char **argv)
{
    static char *slot[SLOTS];
    uint64_t sum = 0;
    long pairs = argc > 1 ? atol(argv[1]) : PAIRS;
    for (long i = 0; i < pairs; i++) {
        uint64_t r = next();
        size_t k = r % SLOTS;
        free(slot[k]);
        size_t n = pick_size(r);
        char *p = malloc(n);
        if (!p)
            return 1;
        p[0] = (char)i;
        p[n - 1] = (char)r;
        slot[k] = p;
        sum += (uintptr_t)p[0];
    }
    for (size_t k = 0; k < SLOTS; k++)
        free(slot[k]);
    printf("churn %llu\n", (unsigned long long)sum);
    return 0;
}
