/* test_cfi.c — walking stacks by call-frame information (src/stack/cfi.c):
 * through code built without frame pointers, in the frame layouts gcc gives
 * it most (tests/cfi/shapes.c: on the stack pointer, on rbp, realigned, a
 * 100 KiB frame), on the main thread and another, through glibc's
 * qsort, the walk gives the same return addresses as glibc's backtrace(),
 * to the outermost frame; a second walk reuses the rules the first worked
 * out, and the thread's last walk is reused only where the stack is the same
 * (the same frame under two callers is not), and rules are kept for more
 * return addresses than the first table holds; a walk never reads past the stack it is given (it
 * gives up: the caller falls back); and one from a signal handler either gives up or is right. */
#define _GNU_SOURCE /* dl_iterate_phdr */
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <link.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "cfi/shapes.h"
#include "stack/cfi.h"

/* The whole stack, as glibc's unwinder gives it, and at least `depth` deep. */
static void walk_should_match_backtrace(const cfi_walk *w, size_t depth)
{
    assert_true(w->nbt >= depth);
    assert_int_equal(w->ncfi, w->nbt);
    assert_memory_equal(w->cfi, w->bt, w->nbt * sizeof *w->bt);
}

static void frames_on_the_stack_pointer_should_walk_as_glibc_does(void **state)
{
    (void)state;
    cfi_walk w = {0};
    shape_recurse(&w, 40);
    walk_should_match_backtrace(&w, 42);
}

static void frames_on_rbp_should_walk_as_glibc_does(void **state)
{
    (void)state;
    cfi_walk w = {0};
    shape_vla(&w, 100);
    walk_should_match_backtrace(&w, 7);
}

static void realigned_frames_should_walk_as_glibc_does(void **state)
{
    (void)state;
    cfi_walk w = {0};
    shape_realigned(&w, 100);
    walk_should_match_backtrace(&w, 3);
}

static void a_100_kib_frame_should_walk_as_glibc_does(void **state)
{
    (void)state;
    cfi_walk w = {0};
    shape_big_frame(&w);
    walk_should_match_backtrace(&w, 3);
}

static void a_walk_through_glibc_should_walk_as_glibc_does(void **state)
{
    (void)state;
    cfi_walk w = {0};
    shape_qsort(&w);
    walk_should_match_backtrace(&w, 5); // compare, msort's frames, qsort, shape_qsort
}

static void *on_thread(void *arg)
{
    shape_recurse(arg, 10);
    return NULL;
}

static void another_threads_stack_should_walk_as_glibc_does(void **state)
{
    (void)state;
    cfi_walk w = {0};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, on_thread, &w), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    walk_should_match_backtrace(&w, 12); // to start_thread and clone3
}

static void a_second_walk_should_reuse_its_rules(void **state)
{
    (void)state;
    static cfi_walk w[2];
    uint64_t rules = 0;
    for (volatile int i = 0; i < 2; i++) { // not unrolled: one call site
        shape_recurse(&w[i], 20);
        if (i == 0)
            rules = ms__cfi_rules();
    }
    assert_true(rules > 0);
    assert_true(ms__cfi_rules() == rules);
    walk_should_match_backtrace(&w[1], 22);
    assert_int_equal(w[1].ncfi, w[0].ncfi);
    assert_memory_equal(w[1].cfi, w[0].cfi, w[0].ncfi * sizeof *w[0].cfi);
}

static void a_kept_walk_should_not_answer_for_another_caller(void **state)
{
    (void)state;
    static cfi_walk w[6];
    for (volatile int i = 0; i < 6; i++) { // not unrolled: one call site each
        w[i].max = 4;                      // short enough to be kept
        if (i % 3 == 2)
            shape_via_b(&w[i]);
        else
            shape_via_a(&w[i]);
    }
    for (int i = 0; i < 6; i++) {
        assert_int_equal(w[i].ncfi, 4);
        assert_true(w[i].nbt >= 4);
        assert_memory_equal(w[i].cfi, w[i].bt, 4 * sizeof *w[i].bt);
    }
    assert_true(w[0].bt[2] == w[1].bt[2] && w[1].bt[2] != w[2].bt[2]); // the two callers
}

static void rules_should_be_worked_out_again_when_code_is_unloaded(void **state)
{
    (void)state;
    static cfi_walk w[3];
    uint64_t before[3];
    for (volatile int i = 0; i < 3; i++) { // not unrolled: one call site
        before[i] = ms__cfi_rules();
        if (i == 1)
            ms__cfi_forget(); // stale rules are worked out again in their slots
        if (i == 2)
            for (int k = 0; k < 65536; k++) // the 16-bit epoch wraps: the table is emptied
                ms__cfi_forget();
        shape_recurse(&w[i], 20);
        walk_should_match_backtrace(&w[i], 22);
    }
    assert_true(ms__cfi_rules() > before[2]); // inserted again
    assert_true(before[2] == before[1]);      // refreshed in place
}

/* The start and size of libc's code (its executable segment). */
static int find_libc_code(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    uintptr_t *range = data;
    if (!strstr(info->dlpi_name, "libc.so"))
        return 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_LOAD && (ph->p_flags & PF_X)) {
            range[0] = info->dlpi_addr + ph->p_vaddr;
            range[1] = ph->p_memsz;
            return 1;
        }
    }
    return 0;
}

static void rules_should_be_kept_past_the_first_table(void **state)
{
    (void)state;
    // Every byte of libc's code read as a return address: three times the
    // first table's 65 536 slots. Each gets its rule once, kept, and the
    // kept rule is the one worked out.
    enum { N = 200000 };
    uintptr_t range[2] = {0, 0};
    dl_iterate_phdr(find_libc_code, range);
    if (range[1] < N)
        skip();
    int *first = calloc(N, sizeof *first);
    assert_non_null(first);
    uint64_t before = ms__cfi_rules();
    for (size_t i = 0; i < N; i++)
        first[i] = ms__cfi_frame_pointer(range[0] + 1 + i);
    uint64_t added = ms__cfi_rules() - before;
    assert_true(added + 1024 >= N); // a few were kept by the tests before
    for (size_t i = 0; i < N; i++)
        assert_int_equal(ms__cfi_frame_pointer(range[0] + 1 + i), first[i]);
    assert_true(ms__cfi_rules() - before == added); // none worked out again
    free(first);
}

static void a_walk_should_stop_at_the_depth_asked(void **state)
{
    (void)state;
    cfi_walk w = {.max = 5};
    shape_recurse(&w, 20);
    assert_int_equal(w.ncfi, 5);
    assert_memory_equal(w.cfi, w.bt, 5 * sizeof *w.bt);
}

static void a_walk_should_give_up_rather_than_leave_its_stack(void **state)
{
    (void)state;
    // The stack it may read ends 256 bytes above the probe's frame, inside
    // the 40 frames of the recursion: it must neither read past that nor
    // give a stack cut there as if whole.
    cfi_walk w = {.keep = 256};
    shape_recurse(&w, 40);
    assert_true(w.nbt >= 42);
    assert_int_equal(w.ncfi, 0);
}

static void a_walk_in_a_signal_handler_should_give_up_or_be_right(void **state)
{
    (void)state;
    cfi_walk w = {0};
    shape_signal(&w);
    assert_true(w.nbt >= 3);
    if (w.ncfi != 0) // the signal frame is not read here: the caller falls back
        walk_should_match_backtrace(&w, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(frames_on_the_stack_pointer_should_walk_as_glibc_does),
        cmocka_unit_test(frames_on_rbp_should_walk_as_glibc_does),
        cmocka_unit_test(realigned_frames_should_walk_as_glibc_does),
        cmocka_unit_test(a_100_kib_frame_should_walk_as_glibc_does),
        cmocka_unit_test(a_walk_through_glibc_should_walk_as_glibc_does),
        cmocka_unit_test(another_threads_stack_should_walk_as_glibc_does),
        cmocka_unit_test(a_second_walk_should_reuse_its_rules),
        cmocka_unit_test(a_kept_walk_should_not_answer_for_another_caller),
        cmocka_unit_test(rules_should_be_worked_out_again_when_code_is_unloaded),
        cmocka_unit_test(rules_should_be_kept_past_the_first_table),
        cmocka_unit_test(a_walk_should_stop_at_the_depth_asked),
        cmocka_unit_test(a_walk_should_give_up_rather_than_leave_its_stack),
        cmocka_unit_test(a_walk_in_a_signal_handler_should_give_up_or_be_right),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
