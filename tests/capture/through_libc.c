/* through_libc — built with frame pointers, allocating in a comparison
 * function that glibc's qsort (built without them) calls: 6 blocks of 72
 * bytes leak from compare_and_leak(), called from qsort, called from
 * sort_some(), called from main(). Under --stacks the frames above qsort must
 * be named too. */
#include <stdlib.h>

void *volatile sink;
static int leaks_left = 6;

__attribute__((noinline)) static int compare_and_leak(const void *a, const void *b)
{
    if (leaks_left > 0) {
        leaks_left--;
        sink = malloc(72); // dropped at the next call: a leak
    }
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

__attribute__((noinline)) static void sort_some(int *v, size_t n)
{
    qsort(v, n, sizeof *v, compare_and_leak);
    __asm__ volatile("" ::: "memory"); // not a tail call
}

int main(void)
{
    int v[100];
    for (int i = 0; i < 100; i++)
        v[i] = (i * 37) % 100;
    sort_some(v, 100);
    return 0;
}
