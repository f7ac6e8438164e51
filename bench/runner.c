/* bench_runner — time one command for bench/compare-peers.sh.
 *
 *   bench_runner CMD [ARGS...]
 *
 * Runs CMD (looked up in PATH) with its standard output sent to /dev/null
 * (standard input and error are inherited), waits for it with wait4() and
 * prints one line on its own standard output:
 *
 *   wall_s=1.234 maxrss_kb=5678 status=0
 *
 * wall_s is the monotonic wall time from fork to reaping, maxrss_kb the
 * child's ru_maxrss (KiB on Linux: the largest resident set of the child or
 * of any descendant it waited for), status its exit status or 128+N if signal
 * N killed it. bench_runner exits with that same status, as time(1) does; 127
 * without a line if CMD could not be started, 2 on a usage or system error. */
#define _DEFAULT_SOURCE /* wait4() */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* In the child: stdout to /dev/null, then exec. On failure, errno goes back
 * through @p err_fd (close-on-exec, so a successful exec sends nothing). */
static void start_child(char **argv, int err_fd)
{
    int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd < 0 || dup2(null_fd, STDOUT_FILENO) < 0) {
        int e = errno;
        (void)!write(err_fd, &e, sizeof e);
        _exit(127);
    }
    if (null_fd != STDOUT_FILENO)
        close(null_fd);
    execvp(argv[0], argv);
    int e = errno;
    (void)!write(err_fd, &e, sizeof e);
    _exit(127);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        fprintf(argc < 2 ? stderr : stdout, "usage: bench_runner CMD [ARGS...]\n");
        return argc < 2 ? 2 : 0;
    }
    int errpipe[2];
    if (pipe(errpipe) != 0 || fcntl(errpipe[1], F_SETFD, FD_CLOEXEC) != 0) {
        fprintf(stderr, "bench_runner: pipe: %s\n", strerror(errno));
        return 2;
    }
    fflush(stdout);
    double start = now_s();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "bench_runner: fork: %s\n", strerror(errno));
        return 2;
    }
    if (pid == 0) {
        close(errpipe[0]);
        start_child(argv + 1, errpipe[1]);
    }
    close(errpipe[1]);

    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    pid_t got;
    do
        got = wait4(pid, &status, 0, &ru);
    while (got < 0 && errno == EINTR);
    double wall = now_s() - start;
    if (got < 0) {
        fprintf(stderr, "bench_runner: wait4: %s\n", strerror(errno));
        return 2;
    }

    int exec_errno = 0;
    ssize_t n;
    do
        n = read(errpipe[0], &exec_errno, sizeof exec_errno);
    while (n < 0 && errno == EINTR);
    close(errpipe[0]);
    if (n == (ssize_t)sizeof exec_errno) {
        fprintf(stderr, "bench_runner: %s: %s\n", argv[1], strerror(exec_errno));
        return 127;
    }

    int code = WIFEXITED(status) ? WEXITSTATUS(status)
               : WIFSIGNALED(status) ? 128 + WTERMSIG(status)
                                     : 255;
    printf("wall_s=%.3f maxrss_kb=%ld status=%d\n", wall, ru.ru_maxrss, code);
    return code;
}
