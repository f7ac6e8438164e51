/* export.h — exporters and the format-by-extension dispatch. */
#ifndef MS_EXPORT_EXPORT_H
#define MS_EXPORT_EXPORT_H

#include <memscope.h>
#include <stddef.h>

typedef enum ms__format { MS__FORMAT_JSON } ms__format;

/* @return the format for the path's extension, or MS_ENOTSUP. */
int ms__export_format(const char *path);
/* Export t to path in the format of its extension. @return 0 or MS_E... */
int ms__export_path(ms_tracker *t, const char *path);

/* Write data to path: creates missing parent directories, writes a temporary
 * file beside it, fsyncs, renames. @return 0 or MS_EIO (message set). */
int ms__write_file_atomic(const char *path, const char *data, size_t len);

#endif
