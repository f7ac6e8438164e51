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
#include <zlib.h>

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put_le32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* This build checks CRCs, the fuzz build does not: give the header and every
 * whole block of `d` a right one, so an input the fuzzer found reaches the
 * decoders here too. */
static void fix_crcs(uint8_t *d, size_t n)
{
    if (n < MS__TRACE_HEADER_FIXED)
        return;
    size_t plen = (size_t)d[74] | (size_t)d[75] << 8;
    size_t hl = MS__TRACE_HEADER_FIXED + plen;
    if (hl + 4 > n)
        return;
    put_le32(d + hl, (uint32_t)crc32(0, d, (uInt)hl));
    for (size_t at = le32(d + 12); at + 9 <= n;) {
        size_t len = le32(d + at + 1);
        if (len > n || at + 9 + len > n)
            return;
        put_le32(d + at + 5 + len, (uint32_t)crc32(0, d + at, (uInt)(5 + len)));
        at += 9 + len;
    }
}

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
        LLVMFuzzerTestOneInput(buf, (size_t)n); // as it is: the CRCs must catch damage
        fix_crcs(buf, (size_t)n);
        LLVMFuzzerTestOneInput(buf, (size_t)n); // and with right CRCs: the decoders' turn
        free(buf);
    }
    printf("fuzz_trace_replay: %d inputs read without a fault\n", argc - 1);
    return 0;
}
#endif
