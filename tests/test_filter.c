/* test_filter.c — capture's sampled filter (src/store/filter.h): a slot with
 * one sampled block answers exactly, so a free takes it out at once and an
 * unsampled block at another address of the slot is skipped; a shared slot
 * counts its blocks and answers "maybe" until the fold has counted each out;
 * and under two threads no sampled block is ever lost. */
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdlib.h>

#include "store/filter.h"

static ms__filter *filter_new(void)
{
    ms__filter *f = calloc(1, sizeof *f);
    assert_non_null(f);
    return f;
}

static uint32_t slot_value(ms__filter *f, uintptr_t p)
{
    uint32_t tag;
    return ms_atomic_load_relaxed(&f->s[ms__filter_slot(p, &tag)]);
}

/* An address after p (16-byte aligned, n steps of the search on) in p's slot. */
static uintptr_t same_slot(uintptr_t p, int n)
{
    uint32_t tag, want = ms__filter_slot(p, &tag);
    for (uintptr_t q = p + 16;; q += 16)
        if (ms__filter_slot(q, &tag) == want && n-- == 0)
            return q;
}

static void one_block_should_be_taken_exactly(void **state)
{
    (void)state;
    ms__filter *f = filter_new();
    uintptr_t p = 0x7f1234567890, q = same_slot(p, 0);
    assert_int_equal(ms__filter_take(f, p), MS__FILTER_NO);
    ms__filter_add(f, p);
    // Another address of the same slot is not the sampled block.
    assert_int_equal(ms__filter_take(f, q), MS__FILTER_NO);
    assert_int_equal(ms__filter_take(f, p), MS__FILTER_TAKEN);
    // Taken out at once: the address reused by an unsampled block is skipped.
    assert_int_equal(ms__filter_take(f, p), MS__FILTER_NO);
    assert_int_equal(slot_value(f, p), 0);
    // Added twice (a free capture never saw): one entry, taken once.
    ms__filter_add(f, p);
    ms__filter_add(f, p);
    assert_int_equal(ms__filter_take(f, p), MS__FILTER_TAKEN);
    assert_int_equal(ms__filter_take(f, p), MS__FILTER_NO);
    free(f);
}

static void shared_slot_should_count_until_the_fold_releases_each(void **state)
{
    (void)state;
    ms__filter *f = filter_new();
    uintptr_t p = 0x55aa00001230, q = same_slot(p, 0), r = same_slot(p, 1);
    ms__filter_add(f, p);
    ms__filter_add(f, q);
    assert_int_equal(slot_value(f, p), MS__FILTER_COUNTED | 2);
    assert_int_equal(ms__filter_take(f, p), MS__FILTER_MAYBE);
    assert_int_equal(ms__filter_take(f, r), MS__FILTER_MAYBE); // may be sampled: recorded
    ms__filter_release(f, p);                                  // the fold closed p
    assert_int_equal(slot_value(f, q), MS__FILTER_COUNTED | 1);
    assert_int_equal(ms__filter_take(f, q), MS__FILTER_MAYBE);
    ms__filter_release(f, q);
    assert_int_equal(slot_value(f, q), 0);
    assert_int_equal(ms__filter_take(f, q), MS__FILTER_NO);
    // Releasing a tagged or empty slot does nothing: its block's free took it.
    ms__filter_add(f, r);
    ms__filter_release(f, r);
    assert_int_equal(ms__filter_take(f, r), MS__FILTER_TAKEN);
    ms__filter_release(f, r);
    assert_int_equal(slot_value(f, r), 0);
    free(f);
}

static void untaggable_addresses_should_be_counted(void **state)
{
    (void)state;
    ms__filter *f = filter_new();
    uintptr_t odd = 0x7f0000001238; // not 16-byte aligned
    uint32_t tag;
    ms__filter_slot(odd, &tag);
    assert_int_equal(tag, 0);
    ms__filter_add(f, odd);
    assert_int_equal(ms__filter_take(f, odd), MS__FILTER_MAYBE);
    ms__filter_release(f, odd);
    assert_int_equal(ms__filter_take(f, odd), MS__FILTER_NO);
    // A saturated count stays, never wraps.
    uint32_t i = ms__filter_slot(odd, &tag);
    ms_atomic_store_relaxed(&f->s[i], MS__FILTER_STUCK);
    ms__filter_add(f, odd);
    ms__filter_release(f, odd);
    assert_int_equal(slot_value(f, odd), MS__FILTER_STUCK);
    free(f);
}

static void undo_should_take_back_an_add(void **state)
{
    (void)state;
    ms__filter *f = filter_new();
    uintptr_t p = 0x7f00deadbee0, q = same_slot(p, 0);
    ms__filter_add(f, p);
    ms__filter_undo(f, p);
    assert_int_equal(slot_value(f, p), 0);
    ms__filter_add(f, p);
    ms__filter_add(f, q);
    ms__filter_undo(f, q);
    assert_int_equal(slot_value(f, p), MS__FILTER_COUNTED | 1);
    ms__filter_release(f, p);
    assert_int_equal(slot_value(f, p), 0);
    free(f);
}

/* Two threads add and take blocks of one slot as fast as they can, each
 * releasing what it was told is "maybe" (as the fold would): a sampled block
 * is never answered NO, and the slot ends empty. */
enum { ROUNDS = 200000 };
typedef struct racer {
    ms__filter *f;
    uintptr_t addr[4];
    long lost;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    for (int i = 0; i < ROUNDS; i++) {
        uintptr_t a = r->addr[i & 3];
        ms__filter_add(r->f, a);
        unsigned v = ms__filter_take(r->f, a);
        if (v == MS__FILTER_NO)
            r->lost++;
        else if (v == MS__FILTER_MAYBE)
            ms__filter_release(r->f, a);
    }
    return NULL;
}

static void two_threads_should_never_lose_a_sampled_block(void **state)
{
    (void)state;
    ms__filter *f = filter_new();
    uintptr_t base = 0x7f0011110000;
    racer r[2] = {{f, {0}, 0}, {f, {0}, 0}};
    for (int k = 0; k < 8; k++)
        r[k / 4].addr[k % 4] = k == 0 ? base : same_slot(base, k - 1);
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_create(&th[k], NULL, race, &r[k]), 0);
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_join(th[k], NULL), 0);
    assert_int_equal(r[0].lost + r[1].lost, 0);
    assert_int_equal(slot_value(f, base), 0);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_block_should_be_taken_exactly),
        cmocka_unit_test(shared_slot_should_count_until_the_fold_releases_each),
        cmocka_unit_test(untaggable_addresses_should_be_counted),
        cmocka_unit_test(undo_should_take_back_an_add),
        cmocka_unit_test(two_threads_should_never_lose_a_sampled_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
