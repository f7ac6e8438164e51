/* getattr — asks glibc for its own stack's attributes (pthread_getattr_np),
 * on the main thread and on another, and strdups a little on each. glibc
 * allocates inside pthread_getattr_np while it holds the thread's lock: a
 * capture that asked for the same attributes from its stack walk there
 * deadlocked (under --stacks). Must exit 0 and print "done". */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>

void *volatile sink;

static void ask(void)
{
    pthread_attr_t at;
    if (pthread_getattr_np(pthread_self(), &at) == 0)
        pthread_attr_destroy(&at);
    sink = strdup("x");
}

static void *on_thread(void *arg)
{
    (void)arg;
    ask();
    return NULL;
}

int main(void)
{
    ask();
    pthread_t t;
    if (pthread_create(&t, NULL, on_thread, NULL) == 0)
        pthread_join(t, NULL);
    puts("done");
    return 0;
}
