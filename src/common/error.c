/* error.c — ms_last_error and friends: thread-local, like errno. */
#include "common/error.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local int last_code;
static _Thread_local char last_msg[512];

int ms__fail(int code, const char *fmt, ...)
{
    last_code = code;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(last_msg, sizeof last_msg, fmt, ap);
        va_end(ap);
    } else {
        snprintf(last_msg, sizeof last_msg, "%s", ms_strerror(code));
    }
    return code;
}

void ms__fail_fast(int code)
{
    last_code = code;
    last_msg[0] = '\0';
}

int ms_last_error(void) { return last_code; }

const char *ms_last_error_message(void)
{
    if (last_code != 0 && last_msg[0] == '\0')
        return ms_strerror(last_code);
    return last_msg;
}

void ms_clear_error(void)
{
    last_code = 0;
    last_msg[0] = '\0';
}

const char *ms_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define MS__ERROR_TEXT(name, value, text)                                                          \
    case value:                                                                                    \
        return text;
        MS_ERROR_MAP(MS__ERROR_TEXT)
#undef MS__ERROR_TEXT
    default:
        return "unknown error";
    }
}

unsigned ms_version(void) { return MS_VERSION_NUMBER; }
const char *ms_version_string(void) { return MS_VERSION_STRING; }
