/* test_util.h — small helpers shared by the tests: file-system helpers and
 * UNDER_TSAN (header-only: include after <cmocka.h>). */
#ifndef MS_TEST_UTIL_H
#define MS_TEST_UTIL_H

#include <memscope.h>

#include <dirent.h>
#include <ftw.h>
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

static inline int ms_test_remove_entry(const char *path, const struct stat *st, int flag,
                                       struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Remove dir and everything under it. (nftw needs _XOPEN_SOURCE or _GNU_SOURCE.) */
static inline void remove_tree(const char *dir)
{
    nftw(dir, ms_test_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* @return the whole file as a NUL-terminated string (free it), *len its length;
 * NULL if it cannot be read. */
static inline char *slurp_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = n;
    }
    return buf;
}

/* Two events are the same one: every field, and the site's text. */
static inline void assert_same_event(const ms_memory_event *a, const ms_memory_event *b)
{
    assert_int_equal(a->timestamp, b->timestamp);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->ptr, b->ptr);
    assert_int_equal(a->old_ptr, b->old_ptr);
    assert_int_equal(a->size, b->size);
    assert_int_equal(a->old_size, b->old_size);
    assert_int_equal(a->thread_id, b->thread_id);
    assert_int_equal(a->site == NULL, b->site == NULL);
    if (a->site) {
        assert_string_equal(a->site->name, b->site->name);
        assert_string_equal(a->site->type, b->site->type);
        assert_string_equal(a->site->file, b->site->file);
        assert_string_equal(a->site->func, b->site->func);
        assert_int_equal(a->site->line, b->site->line);
    }
}

/* The report JSON a memscope HTML dashboard embeds (a copy: free it), NULL
 * when html has no data element. */
static inline char *html_data(const char *html)
{
    static const char open_tag[] = "<script id=\"ms-data\" type=\"application/json\">";
    const char *a = strstr(html, open_tag);
    if (!a)
        return NULL;
    a += sizeof open_tag - 1;
    const char *b = strstr(a, "</script>");
    if (!b)
        return NULL;
    char *out = malloc((size_t)(b - a) + 1);
    if (out) {
        memcpy(out, a, (size_t)(b - a));
        out[b - a] = '\0';
    }
    return out;
}

#endif
