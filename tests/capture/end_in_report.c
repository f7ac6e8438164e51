/* end_in_report — another thread ends the process while exit() has memscope
 * write the report. main leaks 100 000 blocks of 24 bytes from leak_many (a
 * report of that many blocks takes tens of milliseconds to write) and calls
 * exit(3). Its atexit handler, which runs before memscope's (registered
 * earlier, at start), lets a second thread go, which 2 ms later, inside the
 * report, ends the process: argv[1] "segv" dies of SIGSEGV, "_exit" calls
 * _exit(4). */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void *volatile sink;
static atomic_int go;

__attribute__((noinline)) static void leak_many(void)
{
    for (int i = 0; i < 100000; i++)
        sink = malloc(24);
}

static void *end_late(void *by_exit)
{
    while (!atomic_load(&go))
        ;
    struct timespec t = {0, 2 * 1000000L};
    nanosleep(&t, NULL);
    if (by_exit)
        _exit(4);
    raise(SIGSEGV);
    return NULL;
}

static void let_go(void) { atomic_store(&go, 1); }

int main(int argc, char **argv)
{
    leak_many();
    bool by_exit = argc > 1 && strcmp(argv[1], "_exit") == 0;
    pthread_t t;
    if (pthread_create(&t, NULL, end_late, by_exit ? &go : NULL) != 0)
        return 1;
    atexit(let_go);
    exit(3);
}
