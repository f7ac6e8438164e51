/* export.h — exporters and the format-by-extension dispatch. */
#ifndef MS_EXPORT_EXPORT_H
#define MS_EXPORT_EXPORT_H

#include <memscope.h>
#include <stddef.h>

#include "common/buf.h"

typedef enum ms__format { MS__FORMAT_JSON, MS__FORMAT_HTML, MS__FORMAT_BINARY } ms__format;

/* Caps on the long lists of a JSON document (0: no cap). A capped document
 * says what it left out under "omitted". */
typedef struct ms__json_limits {
    size_t max_allocations, max_leaks, max_hotspots;
} ms__json_limits;

/* Append t's JSON document (docs/json-format.md) to b; lim NULL: complete.
 * pre: t != NULL, inside ms__internal_enter. @return 0 or MS_E... */
int ms__json_build(ms_tracker *t, const ms__json_limits *lim, ms__buf *b);
/* The running program's name (the base name of /proc/self/exe), "" unknown. */
void ms__program_name(char *out, size_t n);
/* Append t's HTML dashboard to b. pre: as ms__json_build. @return 0 or MS_E... */
int ms__html_build(ms_tracker *t, ms__buf *b);

/* @return the format for the path's extension, or MS_ENOTSUP. */
int ms__export_format(const char *path);
/* Export t to path in the format of its extension. @return 0 or MS_E... */
int ms__export_path(ms_tracker *t, const char *path);

/* What an exporter builds: t's whole file into b. @return 0 or MS_E... */
typedef int (*ms__export_build)(ms_tracker *t, ms__buf *b);
/* The public ms_export_*: check t and path (`fn` names the call in messages),
 * build the file outside capture's recording, and write it atomically. */
int ms__export_with(ms_tracker *t, const char *path, const char *fn, ms__export_build build);

/* Write data to path: creates missing parent directories, writes a temporary
 * file beside it, fsyncs, renames. @return 0 or MS_EIO (message set). */
int ms__write_file_atomic(const char *path, const char *data, size_t len);
/* Create (truncate) `path` for writing, its parent directories too.
 * @return the descriptor, or MS_E... (error set). */
int ms__file_create(const char *path);
/* Write all of data. @return 0 or the errno that stopped it. */
int ms__write_all(int fd, const void *data, size_t len);

#endif
