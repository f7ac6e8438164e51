/* auto_export.c — the seed's auto-export example in C: the report is written
 * when the tracker is freed, to argv[1] or ./output/memory_report.json
 * (missing directories are created). Returns non-zero if the file is missing. */
#include <memscope.h>

#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "./output/memory_report.json";

    ms_tracker *t = ms_tracker_with_auto_export(ms_tracker_new(), path);
    if (t == NULL) {
        fprintf(stderr, "auto_export: cannot create the tracker: %s\n",
                ms_strerror(ms_last_error()));
        return 1;
    }
    if (ms_last_error() != 0) {
        fprintf(stderr, "auto_export: %s: %s\n", path, ms_strerror(ms_last_error()));
        ms_tracker_free(t);
        return 1;
    }

    int *data = malloc(3 * sizeof *data);
    if (data == NULL) {
        ms_tracker_free(t);
        return 1;
    }
    data[0] = 1;
    data[1] = 2;
    data[2] = 3;
    TRACK(t, data);

    ms_tracker_free(t); /* writes the report */
    free(data);

    if (ms_last_error() != 0) {
        fprintf(stderr, "auto_export: the export failed: %s\n", ms_last_error_message());
        return 1;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "auto_export: %s was not written\n", path);
        return 1;
    }
    fclose(f);
    printf("wrote %s\n", path);
    return 0;
}
