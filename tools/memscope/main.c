/* memscope — run a program under malloc capture and report where its memory
 * went.
 *
 *   memscope run [-o FILE] [--format json|html|bin] [--sample-rate R]
 *                [--stacks N] [--monitor MS] [--follow-children] -- PROG ARGS...
 *
 * Starts PROG with libmemscope_preload.so in LD_PRELOAD and the MEMSCOPE_*
 * variables that configure it (docs/capture.md), waits for it, prints a
 * summary of the report it wrote and exits with PROG's status. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "report.h"

#include <memscope.h>

#define PRELOAD_NAME "libmemscope_preload.so"

static const char *prog_name = "memscope";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s run [options] -- PROG [ARGS...]\n"
            "       %s report FILE.msb [--json OUT] [--html OUT] [--summary]\n"
            "       %s --version\n"
            "\n"
            "Runs PROG with every malloc, free, calloc, realloc and aligned allocation\n"
            "recorded, and writes a report when it exits (also on exit() from any thread\n"
            "and on a fatal signal). The exit status is PROG's (128+N if signal N killed it).\n"
            "\n"
            "options:\n"
            "  -o, --output FILE     report path (default memscope-report.json, or\n"
            "                        memscope-report.html / .msb with --format html / bin)\n"
            "  --format FMT          json, html (the dashboard) or bin (a binary trace of\n"
            "                        every event, streamed to the file as the program runs:\n"
            "                        read it with memscope report); default: from FILE's\n"
            "                        extension\n"
            "  --sample-rate R       record a share R of allocations, 0 < R <= 1 (default 1)\n"
            "  --stacks N            record N frames of each allocation's call stack\n"
            "                        (default 0: only the calling function)\n"
            "  --monitor MS          sample CPU, memory, threads, disk, network and GPU\n"
            "                        every MS milliseconds (1 to 3600000) into the report\n"
            "                        (default: no system samples)\n"
            "  --follow-children     trace child processes too, one report per process\n"
            "                        (FILE with .PID before the extension)\n"
            "  -q, --quiet           print nothing but PROG's own output\n",
            prog_name, prog_name, prog_name);
}

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...);
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", prog_name);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 2;
}

/* Where is libmemscope_preload.so? MEMSCOPE_PRELOAD, else beside this
 * program (a build tree), else in the library directory of its install. */
static bool find_preload(char *out, size_t n)
{
    const char *env = getenv("MEMSCOPE_PRELOAD");
    if (env && *env) {
        snprintf(out, n, "%s", env);
        return access(out, R_OK) == 0;
    }
    char self[PATH_MAX - 64];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0)
        return false;
    self[len] = 0;
    char *slash = strrchr(self, '/');
    if (!slash)
        return false;
    *slash = 0;
    const char *tries[] = {"", ("/" MS_BIN_TO_LIB), "/../lib"};
    for (size_t i = 0; i < sizeof tries / sizeof *tries; i++) {
        if ((size_t)snprintf(out, n, "%s%s/" PRELOAD_NAME, self, tries[i]) >= n)
            continue;
        if (access(out, R_OK) == 0)
            return true;
    }
    return false;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : 0.0;
}

/* The report JSON in a report file's text: the whole text of a .json report,
 * the data element's content of an .html dashboard (cut off in place). */
static char *report_json(char *text, const char *path)
{
    static const char tag[] = "<script id=\"ms-data\" type=\"application/json\">";
    const char *ext = strrchr(path, '.');
    if (!ext || strcmp(ext, ".html") != 0)
        return text;
    char *a = strstr(text, tag);
    if (!a)
        return text;
    a += sizeof tag - 1;
    char *b = strstr(a, "</script>");
    if (b)
        *b = '\0';
    return a;
}

/* The summary's line for `n` system samples (--monitor), if there are any:
 * the highest CPU use and resident memory among them. */
static void say_system(size_t n, double overwritten, double cpu, double rss)
{
    if (n == 0 && overwritten == 0)
        return;
    char mem[32];
    memscope_human(mem, sizeof mem, rss);
    fprintf(stderr, "%s: %zu system samples: CPU up to %.0f%%, resident memory up to %s\n",
            prog_name, n, cpu, mem);
    if (overwritten > 0)
        fprintf(stderr,
                "%s: %.0f older system samples were overwritten (the figures above are of the "
                "newest %zu; MEMSCOPE_MONITOR_HISTORY keeps more)\n",
                prog_name, overwritten, n);
}

/* A line of the run's summary: the live blocks from one place (function and
 * location), added up over the stacks that reach it. */
typedef struct place {
    const char *fn, *loc;
    double count, bytes;
} place;

static int place_text(const void *a, const void *b)
{
    const place *x = a, *y = b;
    int c = strcmp(x->fn, y->fn);
    return c ? c : strcmp(x->loc, y->loc);
}

static int place_bytes(const void *a, const void *b)
{
    const place *x = a, *y = b;
    if (x->bytes != y->bytes)
        return x->bytes < y->bytes ? 1 : -1;
    return place_text(a, b);
}

/* Print the 3 places with the most live bytes; p[0..n) may repeat a place
 * (one entry per stack), and is sorted here. */
static void say_places(place *p, size_t n)
{
    qsort(p, n, sizeof *p, place_text);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m > 0 && place_text(&p[m - 1], &p[i]) == 0) {
            p[m - 1].count += p[i].count;
            p[m - 1].bytes += p[i].bytes;
        } else {
            p[m++] = p[i];
        }
    }
    qsort(p, m, sizeof *p, place_bytes);
    for (size_t i = 0; i < m && i < 3; i++) {
        char b[32];
        memscope_human(b, sizeof b, p[i].bytes);
        fprintf(stderr, "%s:   %10s in %6.0f blocks from %s%s%s\n", prog_name, b, p[i].count,
                p[i].fn, *p[i].loc ? " at " : "", p[i].loc);
    }
}

/* The summary of a binary trace: the run rebuilt from it. */
static bool summarize_trace(const char *path)
{
    ms_tracker *t = ms_tracker_from_trace(path);
    ms_analysis_report *r = t ? ms_analyze(t) : NULL;
    if (!r) {
        ms_tracker_free(t);
        return false;
    }
    char peak[32], live[32];
    memscope_human(peak, sizeof peak, (double)r->peak_memory_bytes);
    memscope_human(live, sizeof live, (double)r->leaked_bytes);
    fprintf(stderr, "%s: %zu allocations, %zu frees, peak %s; %zu blocks (%s) live at exit\n",
            prog_name, r->total_allocations, r->total_deallocations, peak, r->leaked_blocks, live);
    place *p = r->leak_count ? calloc(r->leak_count, sizeof *p) : NULL;
    for (size_t i = 0; p && i < r->leak_count; i++) {
        const ms_leak *l = &r->leaks[i];
        p[i] = (place){l->function && *l->function ? l->function : "?",
                       l->location ? l->location : "", (double)l->count, (double)l->bytes};
    }
    if (p)
        say_places(p, r->leak_count);
    free(p);
    double cpu = 0, rss = 0;
    for (size_t i = 0; i < r->system_snapshot_count; i++) {
        const ms_system_snapshot *x = &r->system_snapshots[i];
        cpu = x->cpu_usage_percent > cpu ? x->cpu_usage_percent : cpu;
        rss = (double)x->memory_usage_bytes > rss ? (double)x->memory_usage_bytes : rss;
    }
    say_system(r->system_snapshot_count, (double)r->system_snapshots_overwritten, cpu, rss);
    ms_memory_stats st = ms_tracker_stats(t);
    if (r->dropped_events)
        fprintf(stderr, "%s: %llu events could not be recorded (the report misses them)\n",
                prog_name, (unsigned long long)r->dropped_events);
    if (st.stream_lost_events)
        fprintf(stderr, "%s: %llu events are not in the trace (the disk did not keep up)\n",
                prog_name, (unsigned long long)st.stream_lost_events);
    ms_report_free(r);
    ms_tracker_free(t);
    fprintf(stderr, "%s: trace written to %s (memscope report %s)\n", prog_name, path, path);
    return true;
}

/* Print a few lines from the report PROG wrote. @return false if unreadable. */
static bool summarize(const char *path)
{
    const char *ext = strrchr(path, '.');
    if (ext && strcmp(ext, ".msb") == 0)
        return summarize_trace(path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *text = size > 0 ? malloc((size_t)size + 1) : NULL;
    bool ok = text && fread(text, 1, (size_t)size, f) == (size_t)size;
    fclose(f);
    cJSON *root = NULL;
    if (ok) {
        text[size] = 0;
        root = cJSON_Parse(report_json(text, path));
    }
    free(text);
    const cJSON *r = cJSON_GetObjectItemCaseSensitive(root, "report");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(root, "stats");
    if (!r || !st) {
        cJSON_Delete(root);
        return false;
    }
    char peak[32], live[32];
    memscope_human(peak, sizeof peak, num(r, "peak_memory_bytes"));
    memscope_human(live, sizeof live, num(r, "leaked_bytes"));
    fprintf(stderr, "%s: %.0f allocations, %.0f frees, peak %s; %.0f blocks (%s) live at exit\n",
            prog_name, num(r, "total_allocations"), num(r, "total_deallocations"), peak,
            num(r, "leaked_blocks"), live);
    const cJSON *leaks = cJSON_GetObjectItemCaseSensitive(root, "leaks");
    int nleaks = cJSON_GetArraySize(leaks);
    place *p = nleaks > 0 ? calloc((size_t)nleaks, sizeof *p) : NULL;
    size_t np = 0;
    const cJSON *l;
    cJSON_ArrayForEach(l, leaks)
    {
        if (!p)
            break;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(l, "function");
        const cJSON *loc = cJSON_GetObjectItemCaseSensitive(l, "location");
        p[np++] =
            (place){cJSON_IsString(fn) && *fn->valuestring ? fn->valuestring : "?",
                    cJSON_IsString(loc) ? loc->valuestring : "", num(l, "count"), num(l, "bytes")};
    }
    if (p)
        say_places(p, np);
    free(p);
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(root, "system_snapshots");
    int nsys = cJSON_GetArraySize(sys);
    double cpu = 0, mem = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, sys)
    {
        if (num(x, "cpu_usage_percent") > cpu)
            cpu = num(x, "cpu_usage_percent");
        if (num(x, "memory_usage_bytes") > mem)
            mem = num(x, "memory_usage_bytes");
    }
    say_system((size_t)nsys, num(r, "system_snapshots_overwritten"), cpu, mem);
    double dropped = num(st, "dropped_events");
    if (dropped > 0)
        fprintf(stderr, "%s: %.0f events could not be recorded (the report misses them)\n",
                prog_name, dropped);
    cJSON_Delete(root);
    fprintf(stderr, "%s: report written to %s\n", prog_name, path);
    return true;
}

static int cmd_run(int argc, char **argv)
{
    const char *output = "memscope-report.json", *format = NULL, *rate = NULL, *stacks = NULL,
               *monitor = NULL;
    bool output_set = false;
    bool follow = false, quiet = false;
    int i = 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        } else if ((strcmp(a, "-o") == 0 || strcmp(a, "--output") == 0) && next) {
            output = argv[++i];
            output_set = true;
        } else if (strcmp(a, "--format") == 0 && next) {
            format = argv[++i];
        } else if (strcmp(a, "--sample-rate") == 0 && next) {
            rate = argv[++i];
        } else if (strcmp(a, "--stacks") == 0 && next) {
            stacks = argv[++i];
        } else if (strcmp(a, "--monitor") == 0 && next) {
            monitor = argv[++i];
        } else if (strcmp(a, "--follow-children") == 0) {
            follow = true;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0) {
            quiet = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            return 0;
        } else if (a[0] == '-') {
            usage(stderr);
            return fail("unknown option or missing value: %s", a);
        } else {
            break; // PROG without "--"
        }
    }
    if (i >= argc) {
        usage(stderr);
        return fail("%s", "no program to run");
    }
    // The format: --format, else the extension; the report's extension follows it.
    const char *ext = strrchr(output, '.');
    if (!format)
        format = ext && strcmp(ext, ".html") == 0  ? "html"
                 : ext && strcmp(ext, ".msb") == 0 ? "bin"
                                                   : "json";
    if (strcmp(format, "json") != 0 && strcmp(format, "html") != 0 && strcmp(format, "bin") != 0)
        return fail("unknown format %s (json, html or bin)", format);
    const char *want = strcmp(format, "bin") == 0    ? ".msb"
                       : strcmp(format, "html") == 0 ? ".html"
                                                     : ".json";
    if (!output_set && strcmp(format, "json") != 0) {
        output = strcmp(format, "bin") == 0 ? "memscope-report.msb" : "memscope-report.html";
        ext = want;
    }
    if (!ext || strcmp(ext, want) != 0)
        return fail("the report path must end in %s: %s", want, output);
    if (rate) {
        char *end;
        double r = strtod(rate, &end);
        if (*end || !(r > 0.0 && r <= 1.0))
            return fail("--sample-rate %s: expected a number in (0, 1]", rate);
    }
    if (stacks) {
        char *end;
        long d = strtol(stacks, &end, 10);
        if (*end || d < 0 || d > 64)
            return fail("--stacks %s: expected 0 to 64", stacks);
    }
    if (monitor) {
        char *end;
        errno = 0;
        unsigned long ms = strtoul(monitor, &end, 10);
        if (*end || errno || monitor[0] == '-' || ms < 1 || ms > 3600000)
            return fail("--monitor %s: expected milliseconds, 1 to 3600000", monitor);
    }
    char preload[PATH_MAX];
    if (!find_preload(preload, sizeof preload))
        return fail("cannot find %s (set MEMSCOPE_PRELOAD to its path)", PRELOAD_NAME);
    // An absolute report path: PROG may change its working directory.
    char path[2 * PATH_MAX], cwd[PATH_MAX];
    if (output[0] != '/' && !getcwd(cwd, sizeof cwd))
        return fail("cannot read the working directory: %s", strerror(errno));
    int plen = output[0] == '/' ? snprintf(path, sizeof path, "%s", output)
                                : snprintf(path, sizeof path, "%s/%s", cwd, output);
    if (plen < 0 || (size_t)plen >= sizeof path)
        return fail("report path too long: %s", output);
    unlink(path); // a report left from an earlier run must not pass for this one's

    const char *old = getenv("LD_PRELOAD");
    char ld[2 * PATH_MAX];
    snprintf(ld, sizeof ld, "%s%s%s", preload, old && *old ? ":" : "", old && *old ? old : "");
    setenv("LD_PRELOAD", ld, 1);
    setenv("MEMSCOPE_OUTPUT", path, 1);
    setenv("MEMSCOPE_RUN", "1", 1);
    unsetenv("MEMSCOPE_CAPTURE");
    if (rate)
        setenv("MEMSCOPE_SAMPLE_RATE", rate, 1);
    if (stacks)
        setenv("MEMSCOPE_STACKS", stacks, 1);
    if (monitor)
        setenv("MEMSCOPE_MONITOR_MS", monitor, 1);
    if (follow)
        setenv("MEMSCOPE_FOLLOW_CHILDREN", "1", 1);
    else
        unsetenv("MEMSCOPE_FOLLOW_CHILDREN");

    // Like system(): while PROG runs, ^C and ^\ are its to handle, not ours.
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_int, old_quit;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGINT, &ign, &old_int);
    sigaction(SIGQUIT, &ign, &old_quit);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return fail("cannot start a process: %s", strerror(errno));
    if (pid == 0) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGQUIT, &old_quit, NULL);
        char root[32];
        snprintf(root, sizeof root, "%ld", (long)getpid());
        setenv("MEMSCOPE_ROOT_PID", root, 1);
        execvp(argv[i], argv + i);
        fprintf(stderr, "%s: cannot run %s: %s\n", prog_name, argv[i], strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return fail("waiting for the program failed: %s", strerror(errno));
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (WIFEXITED(status) && (code == 126 || code == 127) && access(path, F_OK) != 0)
        return code; // exec failed: already said
    if (!quiet) {
        if (WIFSIGNALED(status))
            fprintf(stderr, "%s: %s was killed by signal %d (%s)\n", prog_name, argv[i],
                    WTERMSIG(status), strsignal(WTERMSIG(status)));
        if (!summarize(path))
            fprintf(stderr,
                    "%s: %s wrote no report to %s (SIGKILL, a signal whose handler it "
                    "replaced, the exit_group system call made directly, or LD_PRELOAD "
                    "cleared end a program without one)\n",
                    prog_name, argv[i], path);
    }
    return code;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "run") == 0)
        return cmd_run(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "report") == 0)
        return memscope_cmd_report(argc - 2, argv + 2);
    if (argc >= 2 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) {
        printf("memscope %s\n", MS_VERSION_STRING);
        return 0;
    }
    if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    usage(stderr);
    return 2;
}
