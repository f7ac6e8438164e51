/* test_stack.c — the stack table (src/stack/stack.c): one id per distinct
 * stack, the frames it stands for given back by id, and the same answers when
 * four threads intern the same new stacks at once, in the same order, while
 * the index grows from its first 4096 slots past 65 536 (its slots are claimed
 * by a compare-and-swap on the hash and decided by one on the entry word).
 * With a thread's cache (its store buffer), a stack is looked for first in
 * the table entry after the last one the thread found: the same ids whether
 * that guess is right, wrong, or an entry another thread is still writing. */
#include <setjmp.h> /* cmocka needs these first */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "stack/stack.h"
#include "store/store.h"

enum { THREADS = 4, STACKS = 40000 };

/* Stack k: 1 to 20 frames that no other k shares (frame 0 differs by k). */
static size_t make_stack(uint32_t k, uintptr_t *f)
{
    size_t depth = 1 + k % 20;
    for (size_t i = 0; i < depth; i++)
        f[i] = 0x400000u + ((uintptr_t)k << 8) + i * 16;
    return depth;
}

static void stack_should_read_back(uint32_t id, uint32_t k)
{
    uintptr_t want[MS__STACK_MAX_DEPTH];
    size_t depth = make_stack(k, want);
    const uintptr_t *got = NULL;
    assert_int_equal(ms__stack_get(id, &got), depth);
    assert_memory_equal(got, want, depth * sizeof *want);
    assert_true(ms__stack_top(id) == want[0]);
}

static void stacks_should_intern_once_and_read_back(void **state)
{
    (void)state;
    uint64_t before = ms__stack_count();
    static uint32_t ids[1000];
    for (uint32_t k = 0; k < 1000; k++) {
        uintptr_t f[MS__STACK_MAX_DEPTH];
        size_t depth = make_stack(1000000 + k, f);
        ids[k] = ms__stack_intern(NULL, f, depth);
        assert_int_not_equal(ids[k], 0);
        assert_int_equal(ms__stack_intern(NULL, f, depth), ids[k]); // found, not added
        for (uint32_t j = 0; j < k; j += 97)
            assert_int_not_equal(ids[j], ids[k]);
    }
    assert_int_equal(ms__stack_count() - before, 1000);
    for (uint32_t k = 0; k < 1000; k++)
        stack_should_read_back(ids[k], 1000000 + k);
    // Prefixes and extensions of a stack are stacks of their own.
    uintptr_t f[MS__STACK_MAX_DEPTH];
    size_t depth = make_stack(1000019, f); // 20 frames
    assert_int_not_equal(ms__stack_intern(NULL, f, depth - 1), ids[19]);
    assert_int_equal(ms__stack_intern(NULL, f, 0), 0);
}

static uint32_t shared_ids[THREADS][STACKS];
static pthread_barrier_t start;

/* A zeroed thread buffer, for its stack cache (freed by the caller). */
static ms__tbuf *new_tbuf(void)
{
    size_t size = (sizeof(ms__tbuf) + 63) & ~(size_t)63;
    ms__tbuf *b = aligned_alloc(64, size);
    assert_non_null(b);
    memset(b, 0, size);
    return b;
}

/* More stacks than a thread's cache holds, interned again in the order they
 * were first (each then found as the entry after the last), backwards (each
 * guess wrong) and with stacks the guess is close to: a prefix of the
 * guessed stack, the same frames one deeper, a new stack. */
static void a_threads_guess_should_never_change_an_id(void **state)
{
    (void)state;
    enum { N = 3000, BASE = 2000000 };
    static uint32_t ids[N];
    ms__tbuf *b = new_tbuf();
    uintptr_t f[MS__STACK_MAX_DEPTH];
    for (uint32_t k = 0; k < N; k++) {
        ids[k] = ms__stack_intern(b, f, make_stack(BASE + k, f));
        assert_int_not_equal(ids[k], 0);
    }
    uint64_t count = ms__stack_count();
    for (int pass = 0; pass < 2; pass++)
        for (uint32_t k = 0; k < N; k++)
            assert_int_equal(ms__stack_intern(b, f, make_stack(BASE + k, f)), ids[k]);
    for (uint32_t k = N; k-- > 0;)
        assert_int_equal(ms__stack_intern(b, f, make_stack(BASE + k, f)), ids[k]);
    assert_int_equal(ms__stack_count(), count); // nothing added
    for (uint32_t k = 0; k + 1 < N; k++) {
        assert_int_equal(ms__stack_intern(b, f, make_stack(BASE + k, f)), ids[k]);
        // the guess is now stack k + 1: ask for something near it instead
        size_t depth = make_stack(BASE + k + 1, f);
        uint32_t near = depth > 1 ? ms__stack_intern(b, f, depth - 1) : 0;
        assert_int_not_equal(near, ids[k + 1]);
        if (depth > 1) {
            const uintptr_t *got = NULL;
            assert_int_equal(ms__stack_get(near, &got), depth - 1);
            assert_memory_equal(got, f, (depth - 1) * sizeof *f);
        }
        if (k % 100 == 0) { // a new stack: after it, the guess is unwritten
            depth = make_stack(BASE + k, f);
            f[0] = 0x7f0000000000u + k;
            uint32_t fresh = ms__stack_intern(b, f, depth);
            assert_int_not_equal(fresh, 0);
            assert_int_not_equal(fresh, ids[k]);
            f[0] = 0x7e0000000000u + k;
            assert_int_not_equal(ms__stack_intern(b, f, depth), fresh);
            f[0] = 0x7f0000000000u + k;
            assert_int_equal(ms__stack_intern(b, f, depth), fresh);
        }
    }
    free(b);
}

static void *intern_all(void *arg)
{
    unsigned me = (unsigned)(uintptr_t)arg;
    // Half the threads with a cache: they guess at entries the others may be
    // writing at that moment.
    ms__tbuf *b = me % 2 ? new_tbuf() : NULL;
    pthread_barrier_wait(&start);
    // All in the same order, so that the threads race on every first insert.
    for (uint32_t n = 0; n < STACKS; n++) {
        uint32_t k = (n * 7919u) % STACKS;
        uintptr_t f[MS__STACK_MAX_DEPTH];
        size_t depth = make_stack(k, f);
        shared_ids[me][k] = ms__stack_intern(b, f, depth);
    }
    free(b);
    return NULL;
}

static void threads_should_agree_while_the_index_grows(void **state)
{
    (void)state;
    uint64_t before = ms__stack_count();
    pthread_t th[THREADS];
    pthread_barrier_init(&start, NULL, THREADS);
    for (unsigned i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, intern_all, (void *)(uintptr_t)i), 0);
    for (unsigned i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&start);
    // One id per stack, whatever the timing: a thread that gives up waiting
    // for a preempted claimer offers an entry of its own, and the first one
    // published is every thread's id (an earlier version split about 50 of
    // the 40 000 under ThreadSanitizer, 1 under AddressSanitizer).
    size_t split = 0;
    for (uint32_t k = 0; k < STACKS; k++) {
        for (unsigned i = 0; i < THREADS; i++) {
            assert_int_not_equal(shared_ids[i][k], 0);
            stack_should_read_back(shared_ids[i][k], k);
        }
        bool same = true;
        for (unsigned i = 1; i < THREADS; i++)
            same = same && shared_ids[i][k] == shared_ids[0][k];
        split += !same;
        // Afterwards the index gives one of the ids the threads were given.
        uintptr_t f[MS__STACK_MAX_DEPTH];
        uint32_t id = ms__stack_intern(NULL, f, make_stack(k, f));
        bool seen = false;
        for (unsigned i = 0; i < THREADS; i++)
            seen = seen || id == shared_ids[i][k];
        assert_true(seen);
    }
    if (split)
        print_message("%zu of %u stacks have two ids\n", split, (unsigned)STACKS);
    assert_int_equal(split, 0);
    assert_int_equal(ms__stack_count() - before, STACKS); // entries that lost are not counted
}

/* A C++ name too long for its field loses its template arguments, not its
 * end; an operator's own brackets stay; a name that fits is copied whole. */
static void long_names_should_lose_their_template_arguments(void **state)
{
    (void)state;
    char out[64];
    ms__symbol_shorten(out, sizeof out, "main");
    assert_string_equal(out, "main");
    const char *fits = "std::vector<int>::push_back(int const&)";
    ms__symbol_shorten(out, sizeof out, fits);
    assert_string_equal(out, fits);
    ms__symbol_shorten(out, sizeof out,
                       "void std::vector<std::__cxx11::basic_string<char, std::char_traits<char>, "
                       "std::allocator<char> > >::_M_realloc_insert<std::string>(int)");
    assert_string_equal(out, "void std::vector<...>::_M_realloc_insert<...>(int)");
    ms__symbol_shorten(out, sizeof out,
                       "std::basic_ostream<char, std::char_traits<char> >& std::operator<< "
                       "<std::char_traits<char> >(std::basic_ostream<char>&, char const*)");
    assert_string_equal(out, "std::basic_ostream<...>& std::operator<< <...>(std::basic_os...");
    assert_int_equal(strlen(out), sizeof out - 1);
    char tiny[8];
    ms__symbol_shorten(tiny, sizeof tiny, "averyveryverylongname");
    assert_string_equal(tiny, "aver...");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(stacks_should_intern_once_and_read_back),
        cmocka_unit_test(a_threads_guess_should_never_change_an_id),
        cmocka_unit_test(threads_should_agree_while_the_index_grows),
        cmocka_unit_test(long_names_should_lose_their_template_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
