/* threads50 — creates 50 threads one after another; each leaks one block of
 * 200 bytes and frees one; they all exit before main does. */
#include <pthread.h>
#include <stdlib.h>

void *volatile sink;

static void *work(void *arg)
{
    sink = malloc(200);
    free(malloc(300));
    return arg;
}

int main(void)
{
    for (int i = 0; i < 50; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, work, NULL) != 0)
            return 1;
        pthread_join(t, NULL);
    }
    return 0;
}
