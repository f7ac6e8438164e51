/* quick_end — ends without exit(), so without atexit handlers. argv[1]:
 *   _exit, _Exit, quick_exit: leaks 7 blocks of 48 bytes from leak_seven and
 *     ends with that call, status 5;
 *   fork: the child leaks 3 blocks of 32 bytes from child_leak and ends with
 *     _exit(0), as a forked child should; the parent leaks 7 x 48 and exits
 *     through exit() with status 5 once the child ended with 0;
 *   vfork: the child fails to exec and ends with _exit(9) in the parent's
 *     memory; the parent leaks 7 x 48 and exits through exit() with status 5
 *     once the child ended with 9;
 *   handler: leaks 7 x 48, then allocates and frees in a loop until a
 *     SIGUSR1 from a second thread, whose handler ends the process with
 *     _exit(5) wherever the loop was (inside malloc, often). */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void *volatile sink;

__attribute__((noinline)) static void leak_seven(void)
{
    for (int i = 0; i < 7; i++)
        sink = malloc(48);
}

__attribute__((noinline)) static void child_leak(void)
{
    for (int i = 0; i < 3; i++)
        sink = malloc(32);
}

static void on_usr1(int sig)
{
    (void)sig;
    _exit(5);
}

static void *send_usr1(void *main_thread)
{
    struct timespec t = {0, 50 * 1000000L};
    nanosleep(&t, NULL);
    pthread_kill(*(pthread_t *)main_thread, SIGUSR1);
    return NULL;
}

static int child_status(pid_t pid)
{
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

int main(int argc, char **argv)
{
    const char *how = argc > 1 ? argv[1] : "_exit";
    if (strcmp(how, "fork") == 0) {
        pid_t pid = fork();
        if (pid == 0) {
            child_leak();
            _exit(0);
        }
        leak_seven();
        exit(child_status(pid) == 0 ? 5 : 1);
    }
    if (strcmp(how, "vfork") == 0) {
        char *none[] = {"/nonexistent/quick_end", NULL};
        pid_t pid = vfork();
        if (pid == 0) {
            execv(none[0], none);
            _exit(9);
        }
        leak_seven();
        exit(child_status(pid) == 9 ? 5 : 1);
    }
    leak_seven();
    if (strcmp(how, "_Exit") == 0)
        _Exit(5);
    if (strcmp(how, "quick_exit") == 0)
        quick_exit(5);
    if (strcmp(how, "handler") == 0) {
        signal(SIGUSR1, on_usr1);
        pthread_t self = pthread_self(), t;
        pthread_create(&t, NULL, send_usr1, &self);
        for (unsigned long i = 0;; i++) {
            void *p = malloc(16 + i % 512);
            sink = p;
            free(p);
        }
    }
    _exit(5);
}
