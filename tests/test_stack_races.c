/* test_stack_races.c — the stack table's races, staged one step at a time.
 *
 * test_stack races four threads and cannot choose the interleaving; this test
 * includes src/stack/stack.c itself and plays each thread's steps in the
 * order that once split a stack into two ids, or might: a claimer kept off
 * the processor between its claim and its decision (played by claiming a
 * slot by hand and deciding it later), an index table replaced in between
 * (played by publishing a newer table, or by the real grower), a lookup that
 * searched before the claim. The scenarios check that every step gives one
 * id and that the table counts the stack once; those where a decision is
 * lost check that the losing entry is never what a thread's guess returns.
 * Then a signal handler on a thread that is inside the table, and, last (it
 * leaves the arena full), a stack that comes when the arena is full. (A
 * waiter gives up after a fraction of a millisecond: the lookups that meet
 * an undecided claim here take that long.) */
#define _GNU_SOURCE /* dlinfo */
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>

#include "stack/stack.c"
#include "tracker/tracker.h"

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

static uint32_t lookup(uint32_t k)
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
    uint32_t id = lookup(k); // waits for the claim, then decides it
    assert_int_not_equal(id, 0);
    assert_true(atomic_load(&sl->entry) == FORWARD);
    assert_int_equal(claimer_returns(t, sl, k), id);
    assert_int_equal(lookup(k), id);
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
        assert_int_equal(lookup(k), got);
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
    uint32_t id = lookup(k); // in the newer table
    assert_int_not_equal(id, 0);
    islot *sl = claim(t, hash_of(k));
    assert_int_equal(claimer_returns(t, sl, k), id);
    assert_int_equal(lookup(k), id);
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
    uint32_t id = lookup(k);
    assert_int_not_equal(id, 0);
    assert_int_equal(lookup(k), id); // decided now: no second wait, same id
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
    assert_int_equal(lookup(k), id);
}

/* A claim in a table twice replaced: a late claimer in the middle table
 * decides FORWARD through the newest; the first claimer, back, defers to the
 * middle table's answer. */
static void a_claim_deferred_through_two_tables(void **state)
{
    (void)state;
    const uint32_t k = 20;
    uint64_t before = ms__stack_count();
    tbl *t = table();
    islot *first = claim(t, hash_of(k));
    tbl *middle = replace(t);
    islot *late = claim(middle, hash_of(k)); // it read `middle` as the newest
    replace(middle);
    uint32_t id = lookup(k); // waits on `late` in vain, forwards it, inserts in the newest
    assert_int_not_equal(id, 0);
    assert_true(atomic_load(&late->entry) == FORWARD);
    assert_true(atomic_load(&first->entry) == 0); // nobody had to look there
    assert_int_equal(claimer_returns(middle, late, k), id);
    assert_int_equal(claimer_returns(t, first, k), id);
    assert_true(atomic_load(&first->entry) == FORWARD);
    assert_int_equal(lookup(k), id);
    assert_int_equal(ms__stack_count() - before, 1);
}

/* The claimer read its table as the newest and appended its entry; the table
 * is replaced before its compare-and-swap. Either a waiter forwards the slot
 * first (the claimer's entry loses, never to be guessed) or the claimer's
 * late compare-and-swap wins (and the newer table's lookups find it). */
static void a_decision_late_after_the_replacement(void **state)
{
    (void)state;
    for (uint32_t order = 0; order < 2; order++) {
        const uint32_t k = 21 + order;
        uint64_t before = ms__stack_count();
        uintptr_t f[MS__STACK_MAX_DEPTH];
        size_t depth = frames_of(k, f);
        uint64_t h = hash_of(k);
        uintptr_t *a = get_arena();
        tbl *t = table();
        islot *sl = claim(t, h);
        assert_true(atomic_load(&newest) == t); // decide's first step,
        uint32_t at = append(a, h, f, depth);   // its second,
        replace(t);                             // and here it is preempted
        uint64_t want = 0;
        uint32_t id;
        if (order == 0) {
            id = lookup(k); // waits in vain, forwards, inserts in the newer table
            assert_false(atomic_compare_exchange_strong(&sl->entry, &want, entry_of(at, depth)));
            assert_true(want == FORWARD);
            assert_int_equal(settle(a, t, h, f, depth), id); // what decide does then
            assert_int_not_equal(id, at);
            assert_int_equal(guess(at, k), id);
        } else {
            assert_true(atomic_compare_exchange_strong(&sl->entry, &want, entry_of(at, depth)));
            __atomic_store_n(&a[at + 1], depth, __ATOMIC_RELEASE); // decide's last steps
            ms_atomic_add_relaxed(&nstacks, 1);
            id = at;
        }
        assert_int_equal(lookup(k), id);
        assert_int_equal(ms__stack_count() - before, 1);
    }
}

/* The real grower meets a claim not yet decided: after its wait it leaves
 * the claim out of the new table; the claimer, back, finds its table
 * replaced and defers to the new one. */
static void a_grower_leaves_an_undecided_claim_out(void **state)
{
    (void)state;
    tbl *t = table();
    uint32_t *ids = calloc(t->cap, sizeof *ids);
    assert_non_null(ids);
    uint32_t k = 100000;
    for (; ms_atomic_load_relaxed(&t->count) * 2 + 4 < t->cap; k++)
        assert_int_not_equal(ids[k - 100000] = lookup(k), 0);
    assert_true(atomic_load(&newest) == t);
    const uint32_t u = 30;
    islot *sl = claim(t, hash_of(u));
    for (; atomic_load(&newest) == t; k++) // the insert that fills t to half grows it
        assert_int_not_equal(ids[k - 100000] = lookup(k), 0);
    tbl *n = atomic_load(&newest);
    assert_true(n->older == t);
    uintptr_t f[MS__STACK_MAX_DEPTH];
    size_t depth = frames_of(u, f);
    uint64_t before = ms__stack_count();
    assert_int_equal(find_in(get_arena(), n, hash_of(u), f, depth), 0); // left out
    uint32_t id = claimer_returns(t, sl, u);
    assert_int_not_equal(id, 0);
    assert_true(atomic_load(&sl->entry) == FORWARD);
    assert_int_equal(lookup(u), id);
    assert_int_equal(ms__stack_count() - before, 1);
    for (uint32_t j = 100000; j < k; j++) // the others: copied, the same ids
        assert_int_equal(find_in(get_arena(), n, hash_of(j), f, depth), ids[j - 100000]);
    free(ids);
}

/* A signal handler that interns a stack while its thread is inside the table
 * with the same store buffer (stack_busy set) answers right and leaves the
 * thread's cache, guess and caller-only stack as they were: the thread
 * resumes with what it had read. */
static void a_signal_handler_leaves_the_threads_cache_be(void **state)
{
    (void)state;
    ms__tbuf *b = calloc(1, sizeof *b);
    assert_non_null(b);
    uint32_t mine = 0, theirs = lookup(41);
    uintptr_t f[MS__STACK_MAX_DEPTH];
    mine = ms__stack_intern(b, f, frames_of(40, f)); // fills the cache and the guess
    assert_int_equal(mine, lookup(40));
    ms__tbuf saved = *b;
    b->stack_busy = 1; // the thread is inside ms__stack_intern: the handler runs
    assert_int_equal(ms__stack_intern(b, f, frames_of(41, f)), theirs);
    uintptr_t site = 0x5b0000000000u;
    uint32_t caller = ms__tracker_caller_stack(b, NULL, site);
    assert_int_not_equal(caller, 0);
    b->stack_busy = 0;
    assert_memory_equal(b, &saved, sizeof *b); // nothing of the thread's moved
    assert_int_equal(ms__tracker_caller_stack(b, NULL, site), caller); // not busy: cached
    assert_true(b->caller_pc == site && b->caller_stack == caller);
    free(b);
}

/* Allocator wrappers: a range holds the return addresses just past its
 * calls (lo excluded, hi included); a caller of one is read from the word its
 * call site learnt, through a wrapper around a wrapper too; a caller-only stack
 * and a stack's place are that caller, not the wrapper. */
/* A wrapper range in an object that dlclose unloads leaves the set when code
 * is forgotten: other code may be loaded where it was. (A range in glibc's
 * libanl stub, which nothing here loads: any address of an object will do.) */
static void wrappers_of_an_unloaded_object_should_go(void **state)
{
    (void)state;
    void *h = dlopen("libanl.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!h)
        skip();
    struct link_map *m = NULL;
    assert_int_equal(dlinfo(h, RTLD_DI_LINKMAP, &m), 0);
    const uintptr_t lo = (uintptr_t)m->l_ld, keep = 0x7e0000009000u;
    ms__stack_add_wrapper(lo, lo + 16);
    ms__stack_add_wrapper(keep, keep + 16); // no object: stays
    assert_true(ms__stack_in_wrapper(lo + 1));
    uint32_t gen = ms__stack_wrap_gen();
    dlclose(h);
    if (dlopen("libanl.so.1", RTLD_NOW | RTLD_NOLOAD))
        skip(); // still loaded: nothing to see
    ms__stack_forget_code();
    assert_false(ms__stack_in_wrapper(lo + 1));
    assert_true(ms__stack_in_wrapper(keep + 1));
    assert_int_not_equal(ms__stack_wrap_gen(), gen); // the callers' caches are emptied
}

static void a_wrappers_caller_is_where_the_program_called_it(void **state)
{
    (void)state;
    const uintptr_t a = 0x7e0000001000u, c = 0x7e0000002000u; // two wrappers
    ms__stack_add_wrapper(a, a + 0x40);
    ms__stack_add_wrapper(c, c + 0x20);
    ms__stack_add_wrapper(c, c + 0x20); // once
    assert_int_equal(ms_atomic_load_relaxed(&wraps)->n, 2);
    assert_false(ms__stack_in_wrapper(a));
    assert_true(ms__stack_in_wrapper(a + 1));
    assert_true(ms__stack_in_wrapper(a + 0x40));
    assert_false(ms__stack_in_wrapper(a + 0x41));
    assert_false(ms__stack_in_wrapper(0x401000u)); // the program's code
    assert_true(ms__stack_in_wrapper(c + 0x20));

    // The hook's frame on this thread's stack: saved frame register, the
    // return address into wrapper a (site ra), one word a pushed, then its
    // caller's return address; the same behind a call from wrapper c (site rc).
    const uintptr_t ra = a + 0x17, rc = c + 0x9, user = 0x401234u, user2 = 0x401300u;
    volatile uintptr_t frame[8] = {0, ra, 0x5555, user, 0, 0, 0, 0};
    const void *fp = (const void *)(uintptr_t)frame;
    assert_int_equal(ms__stack_caller(fp, user), user); // not a wrapper: itself
    wrap_site_learn(ra, 2);
    assert_int_equal(ms__stack_caller(fp, ra), user);
    frame[3] = rc; // a called from c, which keeps one word, then user2
    frame[5] = user2;
    wrap_site_learn(rc, 2);
    assert_int_equal(ms__stack_caller(fp, ra), user2);
    wrap_site_learn(rc, 7); // a decided site stays
    assert_int_equal(wrap_site_words(rc), 2);

    // A wrapper with a frame pointer of its own (it may realign its stack):
    // its caller's return address is above the frame register the hook saved.
    const uintptr_t rchain = a + 0x21, rnever = a + 0x33, rbad = a + 0x3a;
    volatile uintptr_t cframe[10] = {0, rchain}; // the hook's frame, then the wrapper's at [6]
    cframe[0] = (uintptr_t)&cframe[6];           // the frame register, up the stack
    cframe[7] = user;
    const void *cfp = (const void *)(uintptr_t)cframe;
    wrap_site_learn(rchain, WRAP_CHAIN);
    assert_int_equal(ms__stack_caller(cfp, rchain), user);
    // A site that cannot be learnt is its own place; a word that is no return
    // address is not taken (the unwinder, which knows nothing of these
    // made-up frames, leaves the wrapper).
    wrap_site_learn(rnever, WRAP_NEVER);
    assert_int_equal(ms__stack_caller(fp, rnever), rnever);
    assert_int_equal(ms__stack_caller(fp, rnever), rnever); // from the thread's cache
    frame[2] = 0;
    wrap_site_learn(rbad, 1);
    assert_int_equal(ms__stack_caller(fp, rbad), rbad);

    ms__tbuf *b = calloc(1, sizeof *b);
    assert_non_null(b);
    uintptr_t one = user2;
    uint32_t id = ms__tracker_caller_stack(b, fp, ra);
    assert_int_equal(id, ms__stack_intern(NULL, &one, 1));
    assert_true(b->wcaller_pc == user2 && b->wcaller_stack == id);
    assert_true(b->caller_pc == 0 && b->caller_stack == 0); // the plain cache is not the wrapper's
    free(b);

    uintptr_t f[3] = {ra, rc, user};
    assert_int_equal(ms__stack_place(ms__stack_intern(NULL, f, 3)), user);
    assert_int_equal(ms__stack_place(ms__stack_intern(NULL, f, 2)), ra); // all wrappers: the top
    assert_int_equal(ms__stack_place(ms__stack_intern(NULL, f + 2, 1)), user);
}

/* Last: the arena fills between a claim and its decision. The slot takes
 * DROPPED, so no later lookup waits for it or appends again, and an id past
 * the arena's end reads nothing. (The arena stays full: nothing may follow.) */
static void a_stack_that_comes_when_the_arena_is_full(void **state)
{
    (void)state;
    const uint32_t k = 50;
    uint64_t dropped = ms__stack_dropped();
    tbl *t = table();
    islot *sl = claim(t, hash_of(k));
    ms_atomic_store_relaxed(&arena_top, ARENA_WORDS - 5);
    assert_int_equal(claimer_returns(t, sl, k), 0);
    assert_true(atomic_load(&sl->entry) == DROPPED);
    size_t top = ms_atomic_load_relaxed(&arena_top);
    assert_true(top > ARENA_WORDS);
    assert_int_equal(lookup(k), 0);
    assert_int_equal(lookup(51), 0); // a stack never seen: no slot claimed either
    assert_int_equal(ms_atomic_load_relaxed(&arena_top), top);
    assert_int_equal(ms__stack_dropped() - dropped, 2);
    // Through a thread's buffer, its store counts the event that goes without
    // its stack (the JSON report's sampling.stacks_dropped).
    ms__tbuf *b = calloc(1, sizeof *b);
    ms_event_store *s = calloc(1, sizeof *s);
    assert_true(b && s);
    b->store = s;
    uintptr_t f[MS__STACK_MAX_DEPTH];
    assert_int_equal(ms__stack_intern(b, f, frames_of(52, f)), 0);
    assert_int_equal(ms_atomic_load_relaxed(&s->stackless), 1);
    free(s);
    free(b);
    uintptr_t fr[MS__STACK_MAX_DEPTH];
    assert_int_equal(ms_stack_frames((uint32_t)ARENA_WORDS + 1, fr, MS__STACK_MAX_DEPTH), 0);
    assert_int_equal(ms__stack_top((uint32_t)ARENA_WORDS - 2), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        // first, while the first table is small (the others replace it with
        // empty ones twice its size)
        cmocka_unit_test(a_grower_leaves_an_undecided_claim_out),
        cmocka_unit_test(a_claim_given_up_after_its_table_was_replaced),
        cmocka_unit_test(an_insert_after_the_table_moved_searches_again),
        cmocka_unit_test(a_late_claim_in_a_replaced_table_defers),
        cmocka_unit_test(a_claimer_that_never_returns),
        cmocka_unit_test(a_claim_decided_before_the_replacement),
        cmocka_unit_test(a_claim_deferred_through_two_tables),
        cmocka_unit_test(a_decision_late_after_the_replacement),
        cmocka_unit_test(a_signal_handler_leaves_the_threads_cache_be),
        cmocka_unit_test(a_wrappers_caller_is_where_the_program_called_it),
        cmocka_unit_test(wrappers_of_an_unloaded_object_should_go),
        cmocka_unit_test(a_stack_that_comes_when_the_arena_is_full), // last
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
