/* forker — sleeps argv[1] milliseconds (default 0), allocates 256 blocks and
 * forks; the child frees those blocks, allocates and exits through exit();
 * the parent waits, frees them too, leaks one block of 4321 bytes and exits
 * with the child's status. (Under sampling some of the blocks carry a
 * header: a child that is not traced must still free them right, or glibc
 * aborts it.) */
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void *volatile sink;
static void *blocks[256];

int main(int argc, char **argv)
{
    long ms = argc > 1 ? atol(argv[1]) : 0;
    struct timespec t = {ms / 1000, ms % 1000 * 1000000L};
    while (ms > 0 && nanosleep(&t, &t) != 0)
        ;
    for (int i = 0; i < 256; i++)
        blocks[i] = malloc(16 + (size_t)i * 8);
    pid_t pid = fork();
    if (pid < 0)
        return 1;
    for (int i = 0; i < 256; i++)
        free(blocks[i]);
    if (pid == 0) {
        sink = malloc(1234);
        exit(0); // atexit handlers run in the child too
    }
    int status;
    waitpid(pid, &status, 0);
    sink = malloc(4321);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
