/* test_util.h — small helpers shared by the tests: file-system helpers and
 * UNDER_TSAN (header-only: include after <cmocka.h>). */
#ifndef MS_TEST_UTIL_H
#define MS_TEST_UTIL_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* UNDER_TSAN: 1 in a ThreadSanitizer build (gcc or clang), else 0. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

static inline int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A fresh empty directory under $TMPDIR (or /tmp); its path in buf. */
static inline void make_temp_dir(char *buf, size_t size)
{
    const char *base = getenv("TMPDIR");
    snprintf(buf, size, "%s/memscope-test-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(buf));
}

/* @return the number of entries in dir other than . and .. */
static inline int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

#endif
