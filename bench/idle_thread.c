/* idle_thread.c — LD_PRELOAD=build/bench/libidle_thread.so PROG: PROG with one
 * more thread that only sleeps. What a second thread costs a program by being
 * there: glibc's malloc skips its arena lock while a process has one thread,
 * and takes it at every call its thread cache cannot serve once it has two
 * (docs/PERFORMANCE.md, "No fold thread while sampling"). */
#include <pthread.h>
#include <unistd.h>

static void *idle(void *arg)
{
    (void)arg;
    for (;;)
        pause();
    return NULL;
}

__attribute__((constructor)) static void start_idle_thread(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, idle, NULL) == 0)
        pthread_detach(t);
}
