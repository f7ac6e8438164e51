/* file.c — the one place exports touch the file system: write beside the
 * target, then rename, so a failure never leaves a partial file; and the
 * streamed trace's file, written in place as the run goes. */
#include "export/export.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/error.h"

static int make_parents(const char *path)
{
    char dir[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof dir)
        return ms__fail(MS_EINVAL, "path too long: %s", path);
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(dir, 0777) != 0 && errno != EEXIST)
            return ms__fail(MS_EIO, "cannot create directory %s for %s: %s", dir, path,
                            strerror(errno));
        *p = '/';
    }
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return ms__fail(MS_EIO, "cannot create directory %s for %s: %s", dir, path,
                        strerror(errno));
    return 0;
}

int ms__write_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, p + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return w < 0 ? errno : EIO;
        off += (size_t)w;
    }
    return 0;
}

int ms__file_create(const char *path)
{
    if (!path || !*path)
        return ms__fail(MS_EINVAL, "the path is empty");
    MS_TRY(make_parents(path));
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return ms__fail(MS_EIO, "cannot create %s: %s", path, strerror(errno));
    return fd;
}

int ms__write_file_atomic(const char *path, const char *data, size_t len)
{
    if (!path || !*path)
        return ms__fail(MS_EINVAL, "export path is empty");
    MS_TRY(make_parents(path));
    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path) >= sizeof tmp)
        return ms__fail(MS_EINVAL, "path too long: %s", path);
    int fd = mkstemp(tmp);
    if (fd < 0)
        return ms__fail(MS_EIO, "cannot write %s: %s", path, strerror(errno));
    fchmod(fd, 0644);
    int err = ms__write_all(fd, data, len);
    if (!err && fsync(fd) != 0)
        err = errno;
    if (close(fd) != 0 && !err)
        err = errno;
    if (!err && rename(tmp, path) != 0)
        err = errno;
    if (err) {
        unlink(tmp);
        return ms__fail(MS_EIO, "cannot write %s: %s", path, strerror(err));
    }
    return 0;
}

int ms__export_with(ms_tracker *t, const char *path, const char *fn, ms__export_build build)
{
    if (!t)
        return ms__fail(MS_ENULLTRACKER, "%s: tracker is NULL", fn);
    if (!path || !*path)
        return ms__fail(MS_EINVAL, "%s: path is empty", fn);
    ms__internal_enter(); // under capture the export's memory is not the program's
    ms__buf b;
    ms__buf_init(&b);
    int rc = build(t, &b);
    if (rc == 0)
        rc = ms__write_file_atomic(path, b.data, b.len);
    ms__buf_free(&b);
    ms__internal_leave();
    return rc;
}

int ms__export_format(const char *path)
{
    const char *dot = strrchr(path, '.');
    const char *slash = strrchr(path, '/');
    if (!dot || (slash && dot < slash))
        return MS_ENOTSUP;
    if (strcmp(dot, ".json") == 0)
        return MS__FORMAT_JSON;
    if (strcmp(dot, ".html") == 0)
        return MS__FORMAT_HTML;
    if (strcmp(dot, ".msb") == 0)
        return MS__FORMAT_BINARY;
    return MS_ENOTSUP;
}

int ms__export_path(ms_tracker *t, const char *path)
{
    switch (ms__export_format(path)) {
    case MS__FORMAT_JSON:
        return ms_export_json(t, path);
    case MS__FORMAT_HTML:
        return ms_export_html(t, path);
    case MS__FORMAT_BINARY:
        return ms_export_binary(t, path);
    default:
        return ms__fail(MS_ENOTSUP,
                        "cannot export to %s: supported extensions are .json, .html and .msb",
                        path);
    }
}
