/* forker — sleeps argv[1] milliseconds (default 0), forks; the child
 * allocates and exits through exit(); the parent waits, leaks one block of
 * 4321 bytes and exits 0. */
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void *volatile sink;

int main(int argc, char **argv)
{
    long ms = argc > 1 ? atol(argv[1]) : 0;
    struct timespec t = {ms / 1000, ms % 1000 * 1000000L};
    while (ms > 0 && nanosleep(&t, &t) != 0)
        ;
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    if (pid == 0) {
        sink = malloc(1234);
        exit(0); // atexit handlers run in the child too
    }
    int status;
    waitpid(pid, &status, 0);
    sink = malloc(4321);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
