/* html.c — ms_export_html: the dashboard template (src/export/dashboard/,
 * compiled in by cmake/embed_dashboard.cmake) with the report's JSON document
 * embedded in a <script type="application/json"> element. The page draws
 * everything itself (docs/dashboard.md). */
#include <string.h>

#include "common/buf.h"
#include "common/error.h"
#include "export/export.h"

/* The template, generated at build time; MS__DASHBOARD_SLOT marks where the
 * data goes. */
extern const unsigned char ms__dashboard_html[];
extern const size_t ms__dashboard_html_len;
#define MS__DASHBOARD_SLOT "/*@MEMSCOPE_DATA@*/"

/* The page stays small and quick however long the run: the longest lists are
 * capped (the page says how much it left out, from "omitted"). */
static const ms__json_limits html_limits = {
    .max_allocations = 5000,
    .max_leaks = 2000,
    .max_hotspots = 1000,
};

/* Copy JSON text into a <script> element's content. '<', '>' and '&' occur
 * only inside JSON strings, where \u escapes mean the same: no "</script>" or
 * "<!--" can end or confuse the element, whatever the program named. */
static void put_script_safe(ms__buf *out, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = s[i] == '<'   ? "\\u003c"
                          : s[i] == '>' ? "\\u003e"
                          : s[i] == '&' ? "\\u0026"
                                        : NULL;
        if (!esc)
            continue;
        ms__buf_put(out, s + run, i - run);
        ms__buf_put(out, esc, 6);
        run = i + 1;
    }
    ms__buf_put(out, s + run, n - run);
}

int ms__html_build(ms_tracker *t, ms__buf *out)
{
    const char *tpl = (const char *)ms__dashboard_html;
    size_t slot_len = sizeof MS__DASHBOARD_SLOT - 1;
    const char *slot = memmem(tpl, ms__dashboard_html_len, MS__DASHBOARD_SLOT, slot_len);
    if (!slot)
        return ms__fail(MS_ENOTSUP, "this build's dashboard template has no data slot");
    ms__buf json;
    ms__buf_init(&json);
    int rc = ms__json_build(t, &html_limits, &json);
    if (rc == 0) {
        ms__buf_put(out, tpl, (size_t)(slot - tpl));
        put_script_safe(out, json.data, json.len);
        size_t after = (size_t)(slot - tpl) + slot_len;
        ms__buf_put(out, tpl + after, ms__dashboard_html_len - after);
        if (out->failed)
            rc = ms__fail(MS_ENOMEM, "out of memory writing HTML");
    }
    ms__buf_free(&json);
    return rc;
}

int ms_export_html(ms_tracker *t, const char *path)
{
    return ms__export_with(t, path, "ms_export_html", ms__html_build);
}
