/* light — a compute loop with few allocations (a few thousand): the cost of
 * having capture loaded when a program hardly allocates. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
    double acc = 0;
    for (int round = 0; round < 2000; round++) {
        double *v = malloc(4096 * sizeof *v);
        if (!v)
            return 1;
        for (int i = 0; i < 4096; i++)
            v[i] = sin(i * 0.001 + round);
        for (int pass = 0; pass < 20; pass++)
            for (int i = 1; i < 4096; i++)
                acc += v[i] * v[i - 1] / (1.0 + fabs(v[i]));
        free(v);
    }
    printf("light %.6f\n", acc);
    return 0;
}
