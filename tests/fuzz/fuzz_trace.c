/* fuzz_trace.c — the trace reader on any bytes: open, read every item, look
 * up every stack. Built as a libFuzzer target with MEMSCOPE_FUZZ=ON (clang;
 * CRCs are not checked then, so the fuzzer reaches the decoders), and, with
 * FUZZ_REPLAY, as a plain program that feeds it the files it is given: the
 * seed corpus and tests/fuzz/regressions/ under ctest, in every build. */
#define _GNU_SOURCE
#include <memscope.h>

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "trace/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0; // fmemopen refuses an empty buffer
    FILE *f = fmemopen((void *)(uintptr_t)data, size, "rb");
    if (!f)
        return 0;
    ms_trace *tr;
    if (ms__trace_open_stream(f, "input", &tr) < 0)
        return 0;
    ms_trace_item it;
    while (ms_trace_next(tr, &it) == 1) {
        if (it.kind == MS_TRACE_EVENT && it.stack_id) {
            const char *const *frames;
            size_t depth = ms_trace_stack(tr, it.stack_id, &frames);
            for (size_t i = 0; i < depth; i++)
                if (!frames[i])
                    abort(); // a defined stack has every frame
        }
    }
    (void)ms_trace_get_info(tr);
    ms_trace_close(tr);
    return 0;
}

#ifdef FUZZ_REPLAY
int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        if (!f) {
            perror(argv[i]);
            return 1;
        }
        fseek(f, 0, SEEK_END);
        long n = ftell(f);
        rewind(f);
        uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
        if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
            fclose(f);
            return 1;
        }
        fclose(f);
        LLVMFuzzerTestOneInput(buf, (size_t)n);
        free(buf);
    }
    printf("fuzz_trace_replay: %d inputs read without a fault\n", argc - 1);
    return 0;
}
#endif
