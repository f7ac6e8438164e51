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
#include <stdbool.h>
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

/* A moved block after a "maybe" is counted, so the fold can take the move
 * back when the old block was never sampled: whatever happened at the new
 * address in between, no sampled block there is lost. */
static void counted_move_should_be_taken_back_safely(void **state)
{
    (void)state;
    ms__filter *f = filter_new();
    uintptr_t q = 0x7f0000abcd00, b = same_slot(q, 0), c = same_slot(q, 1);
    // An unsampled block moved to q (its old slot answered "maybe").
    ms__filter_add_counted(f, q);
    // The program frees q: recorded, never taken as if sampled.
    assert_int_equal(ms__filter_take(f, q), MS__FILTER_MAYBE);
    // malloc hands q back, sampled this time.
    ms__filter_add(f, q);
    // The fold, late, finds the old block was not sampled: takes the move back.
    ms__filter_release(f, q);
    // The sampled block at q is still there.
    assert_int_equal(ms__filter_take(f, q), MS__FILTER_MAYBE);
    ms__filter_release(f, q); // the fold closes it
    assert_int_equal(slot_value(f, q), 0);

    // The same with two sampled blocks arriving in the slot before the fold.
    ms__filter_add_counted(f, q);
    assert_int_equal(ms__filter_take(f, q), MS__FILTER_MAYBE);
    ms__filter_add(f, b);
    ms__filter_add(f, c);
    ms__filter_release(f, q); // the move taken back
    assert_int_equal(ms__filter_take(f, b), MS__FILTER_MAYBE);
    ms__filter_release(f, b);
    assert_int_equal(ms__filter_take(f, c), MS__FILTER_MAYBE); // not lost
    ms__filter_release(f, c);
    assert_int_equal(slot_value(f, q), 0);

    // A move counted next to a tagged block counts both.
    ms__filter_add(f, b);
    ms__filter_add_counted(f, q);
    assert_int_equal(slot_value(f, q), MS__FILTER_COUNTED | 2);
    free(f);
}

/* A block taken out by its free hook is not counted out again by the fold,
 * even when the slot has since become counted. */
static void taken_block_should_not_be_released_again(void **state)
{
    (void)state;
    ms__filter *f = filter_new();
    uintptr_t p = 0x7f00deadbee0, b = same_slot(p, 0), c = same_slot(p, 1);
    ms__filter_add(f, p);
    assert_int_equal(ms__filter_take(f, p), MS__FILTER_TAKEN); // record flagged MS__RF_TAKEN
    ms__filter_add(f, b);
    ms__filter_add(f, c);
    // The fold closes p later and, seeing MS__RF_TAKEN, releases nothing.
    assert_int_equal(ms__filter_take(f, b), MS__FILTER_MAYBE);
    ms__filter_release(f, b);
    assert_int_equal(ms__filter_take(f, c), MS__FILTER_MAYBE);
    ms__filter_release(f, c);
    assert_int_equal(slot_value(f, p), 0);
    free(f);
}

/* Two threads allocate and free blocks of one slot as fast as they can,
 * reusing addresses at once, half of them sampled; a third thread plays the
 * fold, counting out later (through a queue) each sampled block whose free was
 * answered "maybe". A sampled block is never answered NO, an unsampled one
 * never TAKEN, and the slot ends empty. */
enum { ROUNDS = 200000, QUEUE = 1024 };
typedef struct racer {
    ms__filter *f;
    uintptr_t addr[4];
    long lost, false_taken;
    _Atomic uint64_t head, tail; /* the queue of releases for the fold */
    uintptr_t queue[QUEUE];
    _Atomic bool done;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    uint64_t rng = (uint64_t)(uintptr_t)arg | 1;
    for (int i = 0; i < ROUNDS; i++) {
        uintptr_t a = r->addr[i & 3];
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        bool sampled = rng & 1;
        if (sampled)
            ms__filter_add(r->f, a);
        unsigned v = ms__filter_take(r->f, a);
        if (sampled && v == MS__FILTER_NO)
            r->lost++;
        if (!sampled && v == MS__FILTER_TAKEN)
            r->false_taken++;
        if (sampled && v == MS__FILTER_MAYBE) { // the fold will close it, later
            uint64_t h = ms_atomic_load_relaxed(&r->head);
            while (h - atomic_load_explicit(&r->tail, memory_order_acquire) == QUEUE) {
            } // full: wait for the fold
            r->queue[h % QUEUE] = a;
            atomic_store_explicit(&r->head, h + 1, memory_order_release);
        }
    }
    atomic_store_explicit(&r->done, true, memory_order_release);
    return NULL;
}

static void *fold(void *arg)
{
    racer *r = arg; // two of them
    for (;;) {
        bool all_done = true;
        for (int k = 0; k < 2; k++) {
            bool done = atomic_load_explicit(&r[k].done, memory_order_acquire);
            uint64_t t = ms_atomic_load_relaxed(&r[k].tail);
            uint64_t h = atomic_load_explicit(&r[k].head, memory_order_acquire);
            for (; t < h; t++)
                ms__filter_release(r[k].f, r[k].queue[t % QUEUE]);
            atomic_store_explicit(&r[k].tail, t, memory_order_release);
            all_done =
                all_done && done && t == atomic_load_explicit(&r[k].head, memory_order_acquire);
        }
        if (all_done)
            return NULL;
    }
}

static void two_threads_should_never_lose_a_sampled_block(void **state)
{
    (void)state;
    ms__filter *f = filter_new();
    uintptr_t base = 0x7f0011110000;
    static racer r[2];
    for (int k = 0; k < 2; k++)
        r[k] = (racer){.f = f};
    for (int k = 0; k < 8; k++)
        r[k / 4].addr[k % 4] = k == 0 ? base : same_slot(base, k - 1);
    pthread_t th[3];
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_create(&th[k], NULL, race, &r[k]), 0);
    assert_int_equal(pthread_create(&th[2], NULL, fold, r), 0);
    for (int k = 0; k < 3; k++)
        assert_int_equal(pthread_join(th[k], NULL), 0);
    assert_int_equal(r[0].lost + r[1].lost, 0);
    assert_int_equal(r[0].false_taken + r[1].false_taken, 0);
    assert_int_equal(slot_value(f, base), 0);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_block_should_be_taken_exactly),
        cmocka_unit_test(shared_slot_should_count_until_the_fold_releases_each),
        cmocka_unit_test(untaggable_addresses_should_be_counted),
        cmocka_unit_test(counted_move_should_be_taken_back_safely),
        cmocka_unit_test(taken_block_should_not_be_released_again),
        cmocka_unit_test(two_threads_should_never_lose_a_sampled_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
