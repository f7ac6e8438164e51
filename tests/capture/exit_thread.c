/* exit_thread — a second thread leaks 3 blocks of 64 bytes and calls exit(3)
 * while main waits forever. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

void *volatile sink;

static void *work(void *arg)
{
    for (int i = 0; i < 3; i++)
        sink = malloc(64);
    exit(3);
    return arg;
}

int main(void)
{
    pthread_t t;
    pthread_create(&t, NULL, work, NULL);
    for (;;)
        pause();
}
