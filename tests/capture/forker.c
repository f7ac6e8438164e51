/* forker — forks; the child allocates and exits through exit(); the parent
 * waits, leaks one block of 4321 bytes and exits 0. */
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void *volatile sink;

int main(void)
{
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
