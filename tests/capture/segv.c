/* segv — leaks 5 blocks of 128 bytes, then dies of SIGSEGV. */
#include <signal.h>
#include <stdlib.h>

void *volatile sink;
int *volatile nowhere;

int main(void)
{
    for (int i = 0; i < 5; i++)
        sink = malloc(128);
    *nowhere = 1;
    return 0;
}
