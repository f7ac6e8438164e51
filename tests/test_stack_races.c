/* test_stack_races.c — the stack table's races, staged one step at a time.
 *
 * test_stack races four threads and cannot choose the interleaving; this test
 * includes src/stack/stack.c itself and plays each thread's steps in the
 * order that once split a stack into two ids: a claimer kept off the
 * processor between its claim and its decision (played by claiming a slot by
 * hand and deciding it later), an index table replaced in between (played by
 * publishing a newer table), a lookup that searched before the claim. Each
 * scenario checks that every step gives one id, that the table counts the
 * stack once, and that an entry which lost the decision is never what a
 * thread's guess returns. (A waiter gives up after about a millisecond: the
 * lookups that meet an undecided claim here take that long.) */
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>

#include "stack/stack.c"

/* Stack k of this test: 12 frames (the hash's four lanes) unlike any other.
 * (The depth is a variable: with a constant, gcc 12 warns of an overflow in a
 * stack_hash loop it cannot reach.) */
static size_t depth_12 = 12;

static size_t frames_of(uint32_t k, uintptr_t *f)
{
    for (size_t i = 0; i < depth_12; i++)
        f[i] = 0x5a0000000000u + ((uintptr_t)k << 12) + i * 8;
    return depth_12;
}

/* Claim the slot of hash h in table t as insert does, and leave it
 * undecided: a claimer stopped right after its compare-and-swap. */
static islot *claim(tbl *t, uint64_t h)
{
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        uint64_t want = 0;
        if (atomic_compare_exchange_strong(&t->slot[i].hash, &want, h)) {
            ms_atomic_add_relaxed(&t->count, 1);
            return &t->slot[i];
        }
        assert_int_not_equal(want, h); // the stack is new to the table
    }
}

/* Publish a newer table in front of the newest, as a grower does (empty: the
 * older tables stay searched, so a copy is only a shortcut). */
static tbl *replace(tbl *t)
{
    tbl *n = tbl_new(t->cap * 2);
    assert_non_null(n);
    n->older = t;
    tbl *expect = t;
    assert_true(atomic_compare_exchange_strong(&newest, &expect, n));
    return n;
}

static tbl *table(void)
{
    assert_non_null(get_arena());
    tbl *t = get_newest();
    assert_non_null(t);
    return t;
}

static uint32_t intern(uint32_t k)
{
    uintptr_t f[MS__STACK_MAX_DEPTH];
    return ms__stack_intern(NULL, f, frames_of(k, f));
}

/* The claimer of the slot comes back and decides, as insert would. */
static uint32_t claimer_returns(tbl *t, islot *sl, uint32_t k)
{
    uintptr_t f[MS__STACK_MAX_DEPTH];
    size_t depth = frames_of(k, f);
    return decide(get_arena(), t, sl, stack_hash(f, depth), f, depth);
}

/* A thread whose guess is `id` (the entry after the last one it found) asks
 * for stack k. */
static uint32_t guess(uint32_t id, uint32_t k)
{
    ms__tbuf *b = calloc(1, sizeof *b);
    assert_non_null(b);
    b->stack_next = id;
    uintptr_t f[MS__STACK_MAX_DEPTH];
    uint32_t got = ms__stack_intern(b, f, frames_of(k, f));
    free(b);
    return got;
}

static uint64_t hash_of(uint32_t k)
{
    uintptr_t f[MS__STACK_MAX_DEPTH];
    size_t depth = frames_of(k, f);
    return stack_hash(f, depth);
}

/* The claimer stalls; its table is replaced; another thread gives up on the
 * claim and decides it (FORWARD: the newer table gives the id); the claimer
 * comes back. Once gave two ids. */
static void a_claim_given_up_after_its_table_was_replaced(void **state)
{
    (void)state;
    const uint32_t k = 1;
    uint64_t before = ms__stack_count();
    tbl *t = table();
    islot *sl = claim(t, hash_of(k));
    replace(t);
    uint32_t id = intern(k); // waits for the claim, then decides it
    assert_int_not_equal(id, 0);
    assert_true(atomic_load(&sl->entry) == FORWARD);
    assert_int_equal(claimer_returns(t, sl, k), id);
    assert_int_equal(intern(k), id);
    assert_int_equal(ms__stack_count() - before, 1);
}

/* A thread searches every table and misses; then another claims the stack in
 * the newest and decides it there (or stalls, undecided); the table is
 * replaced; the first thread inserts: it searches the older tables again
 * (after reading the newer one) and finds the claim. Without that second
 * search it put the stack in the newer table under an id of its own. */
static void an_insert_after_the_table_moved_searches_again(void **state)
{
    (void)state;
    for (uint32_t k = 2; k <= 3; k++) {
        bool decided = k == 2;
        uint64_t before = ms__stack_count();
        tbl *t = table();
        uintptr_t f[MS__STACK_MAX_DEPTH];
        size_t depth = frames_of(k, f);
        uint64_t h = hash_of(k);
        assert_int_equal(find_in(get_arena(), t, h, f, depth), 0); // the search: a miss
        islot *sl = claim(t, h);
        uint32_t id = decided ? claimer_returns(t, sl, k) : 0;
        replace(t);
        uint32_t got = insert(get_arena(), h, f, depth, t);
        assert_int_not_equal(got, 0);
        if (decided)
            assert_int_equal(got, id);
        else
            assert_int_equal(claimer_returns(t, sl, k), got);
        assert_int_equal(intern(k), got);
        assert_int_equal(ms__stack_count() - before, 1);
    }
}

/* A claimer that read its table as the newest before a replacement claims
 * there after it, when another thread has already put the stack in the newer
 * table: the claim defers to it. */
static void a_late_claim_in_a_replaced_table_defers(void **state)
{
    (void)state;
    const uint32_t k = 10;
    uint64_t before = ms__stack_count();
    tbl *t = table();
    replace(t);
    uint32_t id = intern(k); // in the newer table
    assert_int_not_equal(id, 0);
    islot *sl = claim(t, hash_of(k));
    assert_int_equal(claimer_returns(t, sl, k), id);
    assert_int_equal(intern(k), id);
    assert_int_equal(ms__stack_count() - before, 1);
}

/* A claimer that never comes back (a thread that was inside the table when
 * another forked: the child has no such thread): the first thread to look
 * decides with an entry of its own, once; the claimer's own entry, if it
 * does come back, loses and is never a guess's answer. */
static void a_claimer_that_never_returns(void **state)
{
    (void)state;
    const uint32_t k = 11;
    uint64_t before = ms__stack_count();
    tbl *t = table();
    islot *sl = claim(t, hash_of(k));
    uint32_t id = intern(k);
    assert_int_not_equal(id, 0);
    assert_int_equal(intern(k), id); // decided now: no second wait, same id
    uint32_t late = (uint32_t)ms_atomic_load_relaxed(&arena_top);
    assert_int_equal(claimer_returns(t, sl, k), id);
    assert_int_not_equal(ms_atomic_load_relaxed(&arena_top), late); // it appended, and lost
    assert_int_equal(guess(late, k), id);
    assert_int_equal(guess(id, k), id); // the indexed entry is a good guess
    const uintptr_t *fr = NULL;
    assert_int_equal(ms__stack_get(late, &fr), 12); // the lost entry still reads back
    assert_int_equal(ms__stack_count() - before, 1);
}

/* The claimer decides while its table is the newest; then the table is
 * replaced: the newer table's lookups find the id in the older one. */
static void a_claim_decided_before_the_replacement(void **state)
{
    (void)state;
    const uint32_t k = 12;
    tbl *t = table();
    islot *sl = claim(t, hash_of(k));
    uint32_t id = claimer_returns(t, sl, k);
    assert_int_not_equal(id, 0);
    replace(t);
    assert_int_equal(intern(k), id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_claim_given_up_after_its_table_was_replaced),
        cmocka_unit_test(an_insert_after_the_table_moved_searches_again),
        cmocka_unit_test(a_late_claim_in_a_replaced_table_defers),
        cmocka_unit_test(a_claimer_that_never_returns),
        cmocka_unit_test(a_claim_decided_before_the_replacement),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
