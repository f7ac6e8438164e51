/* stack.c — walking and interning call stacks (see stack.h).
 *
 * The table: entries are appended to an arena reserved once (1 GiB of address
 * space, pages touched only as used): [hash, depth (and the UNINDEXED bit),
 * frames...]; an entry's id is its word offset. An open-addressing index of
 * ids finds them. The index never resizes in place: when it is half full a
 * table twice the size is filled from it and published with a
 * compare-and-swap; the older tables stay (and are searched) so an insert
 * racing with the switch is never lost. A slot holds the entry's whole hash
 * beside its id, so a lookup reads the index only, never the arena (for many
 * distinct stacks, each was a cache miss). Threads that insert the same new
 * stack at once end with one id, whatever the timing: the first to claim its
 * slot decides the slot's entry word by a compare-and-swap, as does a thread
 * that waited for that in vain, and the first decision holds for all. A claim
 * in a table that a newer one has replaced defers to the newer tables
 * (decide).
 *
 * Before the index, a thread looks at the arena entry after the last one it
 * found: a program that repeats a piece of work asks for its stacks in the
 * order they were first appended, and then reads the arena in order (with a
 * prefetch one entry ahead) instead of missing the cache on an index slot per
 * stack, as trees (bench/workloads) did for its 131 072 stacks a round. */
#include "stack/stack.h"

#include <execinfo.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>

#include "common/alloc.h"
#include "common/atomic.h"
#include "common/heap.h"
#include "common/pages.h"
#include "stack/cfi.h"
#include "stack/objects.h"
#include "store/store.h"

#define ARENA_WORDS ((size_t)1 << 27) /* ids fit the block's 30 bits */
#define FIRST_CAP 4096u

/* An index slot: the entry's hash (0 = empty; claimed by a compare-and-swap),
 * then its entry word (0 until decided: see decide). */
typedef struct islot {
    _Atomic uint64_t hash;
    _Atomic uint64_t entry;
} islot;

typedef struct tbl {
    size_t cap; /* a power of two */
    _Atomic size_t count;
    struct tbl *older;
    alignas(16) islot slot[]; /* from pages: no slot straddles a cache line */
} tbl;

static _Atomic(uintptr_t *) arena;
static _Atomic size_t arena_top = 1; /* word 0 is never an entry */
static _Atomic(tbl *) newest;
static _Atomic uint64_t nstacks, ndropped;
static _Atomic int mode = MS__UNWIND_AUTO;

void ms__stack_set_mode(ms__unwind_mode m) { ms_atomic_store_relaxed(&mode, (int)m); }

void ms__stack_warm_up(void)
{
    void *tmp[4];
    ms__internal_enter();
    (void)backtrace(tmp, 4); // the first call loads libgcc_s
    ms__internal_leave();
}

/* ------------------------------------------------------------- walking */

static size_t unwind(const void *fp, uintptr_t ret, uintptr_t *out, size_t max);

/* What the function that called us (the one `ret` returns into) does with
 * the frame register, learnt per call site with the unwinder's help:
 *
 * - FP: it keeps a frame pointer. The chain's second frame is right, and the
 *   chain is taken (frames further up as the chain gives them; where it ends
 *   early, in code without frame pointers such as glibc's start of main, the
 *   unwinder goes on from its last frame under MEMSCOPE_UNWIND=auto: chain_rest).
 * - SKIP: it keeps none, and the return address into its caller sits `word`
 *   words above the return address into it. A small wrapper that leaves the
 *   register alone, such as C++'s operator new around malloc, leaves the chain
 *   going on from its caller's frame, one frame short: a walk reads that word,
 *   then follows the chain (one call site of a function has one frame
 *   layout). When the chain past the word breaks at once (the wrapper's
 *   caller keeps no frame pointer either), the unwinder answers that walk.
 * - BAD: neither can be told (its caller's return address is not in the 64
 *   words above), in 16 walks: the unwinder answers every walk.
 *
 * A site is FP when the unwinder knows no more than `ret` (code without
 * unwind information: the chain is all there is), and when the table has no
 * room for it. Open addressing by site; an entry is (word or walks << 58 |
 * site << 2 | verdict), never removed once decided, until code is unloaded
 * (ms__stack_forget_code). */
#define VERDICTS 16384u /* 2^14 */
enum { V_UNKNOWN = 0, V_FP = 1, V_BAD = 2, V_SKIP = 3 };
#define VERDICT_SITE(e) (((e) >> 2) & ((UINT64_C(1) << 56) - 1))
/* SKIP: the word; UNKNOWN: the walks that could not tell. */
#define VERDICT_ARG(e) ((size_t)((e) >> 58))
#define SKIP_WORDS 64u
#define UNTOLD_WALKS 16u
static _Atomic uint64_t verdicts[VERDICTS];
/* The calling thread's last decided entry: one word, so that a signal
 * handler's walk on the same thread reads an entry whole. */
static _Thread_local volatile uint64_t tl_verdict;
/* The calling thread's last wrapper site and its entry (d << 57 | site): one
 * word, so that a signal handler's walk on the same thread reads it whole. */
static _Thread_local volatile uint64_t tl_wrap_site;

/* Bumped when code is unloaded (ms__stack_forget_code); tl_epoch: the one
 * the calling thread's two entries above are from. */
static _Atomic uint32_t code_epoch;
static _Thread_local uint32_t tl_epoch;

/* Was code unloaded since this thread's walk began (its tl_entries_fresh)?
 * Then what the walk learnt may be of the unloaded code: not kept. */
static inline bool learnt_in_epoch(void) { return tl_epoch == ms_atomic_load_relaxed(&code_epoch); }

/* Forget the calling thread's entries if code was unloaded since. */
static inline void tl_entries_fresh(void)
{
    uint32_t now = ms_atomic_load_relaxed(&code_epoch);
    if (ms_unlikely(tl_epoch != now)) {
        tl_verdict = 0;
        tl_wrap_site = 0;
        tl_epoch = now;
    }
}

static uint64_t verdict_entry(uintptr_t ret, int verdict, size_t arg)
{
    return (uint64_t)arg << 58 | (uint64_t)ret << 2 | (uint64_t)verdict;
}

/* The slot of `site` in a per-site table of 2^bits entries (open addressing,
 * at most `probes` looked at), whose entries hold the site in 56 bits from bit
 * `shift`: its own or an empty one. NULL when the run is full. */
static _Atomic uint64_t *site_slot(_Atomic uint64_t *table, unsigned bits, size_t probes,
                                   unsigned shift, uintptr_t site)
{
    size_t mask = ((size_t)1 << bits) - 1;
    size_t i = (size_t)(((uint64_t)site * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - bits));
    for (size_t k = 0; k < probes; k++, i = (i + 1) & mask) {
        uint64_t v = ms_atomic_load_acquire(&table[i]);
        if (v == 0 || ((v >> shift) & ((UINT64_C(1) << 56) - 1)) == (uint64_t)site)
            return &table[i];
    }
    return NULL;
}

static _Atomic uint64_t *verdict_slot(uintptr_t ret) { return site_slot(verdicts, 14, 64, 2, ret); }

/* The site's entry: 0 when it has none yet, FP when the table has no room. */
static uint64_t verdict_of(uintptr_t ret)
{
    uint64_t e = tl_verdict;
    if (ms_likely(e && VERDICT_SITE(e) == (uint64_t)ret))
        return e;
    _Atomic uint64_t *slot = verdict_slot(ret);
    if (!slot)
        return verdict_entry(ret, V_FP, 0);
    e = ms_atomic_load_acquire(slot);
    if ((e & 3) != V_UNKNOWN)
        tl_verdict = e;
    return e;
}

/* Move the site's entry on to `entry`: a decision, or one more walk that
 * could not tell. A decided entry stays; losing a count to another thread
 * only costs a walk. */
static void verdict_put(uintptr_t ret, uint64_t entry)
{
    _Atomic uint64_t *e = verdict_slot(ret);
    if (!e || !learnt_in_epoch())
        return;
    uint64_t seen = ms_atomic_load_acquire(e);
    while ((seen == 0 || (VERDICT_SITE(seen) == (uint64_t)ret && (seen & 3) == V_UNKNOWN)) &&
           !atomic_compare_exchange_weak(e, &seen, entry)) {
    }
}

/* A word of this thread's stack in another function's frame (pre: inside
 * the stack). AddressSanitizer would take the padding it keeps around a
 * frame's locals for an overflow. */
__attribute__((no_sanitize("address"))) static uintptr_t stack_word(uintptr_t at)
{
    return *(const uintptr_t *)at;
}

/* Is the frame at fp on this thread's stack [lo, hi), where a walk may read
 * its two words? */
static bool frame_on_stack(uintptr_t fp, uintptr_t lo, uintptr_t hi)
{
    return fp >= lo && fp + 16 <= hi && !(fp & 7);
}

/* The word above the caller's return address (fp[1]) that holds `ra`.
 * @return SKIP_WORDS when there is none. */
static size_t skip_word(uintptr_t fp, uintptr_t hi, uintptr_t ra)
{
    for (size_t k = 0; k < SKIP_WORDS && fp + 16 + 8 * k + 8 <= hi; k++)
        if (stack_word(fp + 16 + 8 * k) == ra)
            return k;
    return SKIP_WORDS;
}

/* glibc's unwinder: right for any code, a few hundred ns a frame (libgcc
 * looks up and interprets the call-frame information at every frame, every
 * time). Its own frames are dropped by finding `ret`. It may allocate:
 * inside ms__internal_enter, so a hook that walks (with its own mark down)
 * does not record that. */
static size_t backtrace_from(uintptr_t ret, uintptr_t *out, size_t max)
{
    void *tmp[MS__STACK_MAX_DEPTH + 16];
    ms__internal_enter();
    int got = backtrace(tmp, (int)(sizeof tmp / sizeof *tmp));
    ms__internal_leave();
    for (int i = 0; i < got; i++) {
        if ((uintptr_t)tmp[i] != ret)
            continue;
        size_t n = 0;
        for (int j = i; j < got && n < max; j++)
            out[n++] = (uintptr_t)tmp[j];
        return n;
    }
    return 0;
}

/* The unwinder: the stack of the call whose frame is `fp` (built with frame
 * pointers: the caller's frame register at fp, `ret` above it), by the
 * call-frame information of the code on it (stack/cfi.h: its rules are
 * worked out once per return address, no allocation, no lock), else by
 * glibc's (a walk off this thread's stack, a signal frame, a rule cfi.c does
 * not read). */
static size_t unwind(const void *fp, uintptr_t ret, uintptr_t *out, size_t max)
{
    if (ms_atomic_load_relaxed(&mode) != MS__UNWIND_BACKTRACE) {
        size_t n = ms__cfi_walk_frame((uintptr_t)fp, 0, out, max, NULL);
        if (n && out[0] == ret)
            return n;
    }
    return backtrace_from(ret, out, max);
}

/* ------------------------------------------------- allocator wrappers
 *
 * Code ranges of the functions that only allocate for their caller (C++'s
 * operator new and new[] in every form, strdup and strndup), then read
 * without a lock. A block allocated through one is named where the program
 * called it. Found by their dynamic symbols outside any hook when capture
 * starts (ms__stack_find_wrappers, symbols.c), and in a hook the first time
 * a stack is seen from an object no search has looked at yet
 * (search_object): a C++ runtime that comes with a plugin. The ranges are
 * published as a whole, in order, by a compare-and-swap: a set is never
 * changed once readers can see it, and never freed (a hook may be reading
 * it; one is replaced only when a search finds new wrappers, a few times in
 * a process's life). ms__wrap_gen counts the sets published: the threads'
 * caches of a caller (tracker.c) are from one of them. */
const char *const ms__wrapper_names[MS__WRAPPER_NAMES] = {"_Znwm",
                                                          "_Znam",
                                                          "_ZnwmRKSt9nothrow_t",
                                                          "_ZnamRKSt9nothrow_t",
                                                          "_ZnwmSt11align_val_t",
                                                          "_ZnamSt11align_val_t",
                                                          "_ZnwmSt11align_val_tRKSt9nothrow_t",
                                                          "_ZnamSt11align_val_tRKSt9nothrow_t",
                                                          "strdup",
                                                          "strndup"};

#define MAX_WRAPPERS 160u /* a set fits a page */
typedef struct wrap_set {
    unsigned n;
    uintptr_t min, max; /* all of them lie between */
    uintptr_t lo[MAX_WRAPPERS], hi[MAX_WRAPPERS];
    uintptr_t obj[MAX_WRAPPERS]; /* the object of each (ms__object_of; 0: not known) */
} wrap_set;
_Static_assert(sizeof(wrap_set) <= 4096, "a wrapper set is one page");
static _Atomic(wrap_set *) wraps;
_Atomic uint32_t ms__wrap_gen;

static bool set_has(const wrap_set *w, uintptr_t lo)
{
    for (unsigned i = 0; w && i < w->n; i++)
        if (w->lo[i] == lo)
            return true;
    return false;
}

static void set_add(wrap_set *w, uintptr_t lo, uintptr_t hi, uintptr_t obj)
{
    unsigned n = w->n, at = 0;
    if (lo >= hi || n == MAX_WRAPPERS || set_has(w, lo))
        return;
    while (at < n && w->lo[at] < lo) // kept in order, for the search below
        at++;
    memmove(&w->lo[at + 1], &w->lo[at], (n - at) * sizeof *w->lo);
    memmove(&w->hi[at + 1], &w->hi[at], (n - at) * sizeof *w->hi);
    memmove(&w->obj[at + 1], &w->obj[at], (n - at) * sizeof *w->obj);
    w->lo[at] = lo;
    w->hi[at] = hi;
    w->obj[at] = obj;
    w->n = n + 1;
    if (lo < w->min)
        w->min = lo;
    if (hi > w->max)
        w->max = hi;
}

/* The object that holds code at pc, 0 when the loader knows none. */
static uintptr_t object_id(uintptr_t pc)
{
    uintptr_t id, lo, hi;
    return ms__object_of(pc, &id, &lo, &hi) ? id : 0;
}

/* Is range i of w in an object that is gone (dlclose)? Then other code may
 * be loaded where it was, and would be taken for a wrapper. A range whose
 * object was not known stays. */
static bool range_gone(const wrap_set *w, unsigned i)
{
    return w->obj[i] && object_id(w->lo[i]) != w->obj[i];
}

/* Publish a set of the published one's ranges that are not gone, and of
 * [lo[i], hi[i]) for i < count; none when nothing would change. */
static void wraps_update(const uintptr_t *lo, const uintptr_t *hi, size_t count)
{
    wrap_set *fresh = NULL;
    for (;;) {
        wrap_set *old = ms_atomic_load_acquire(&wraps);
        bool gone = false, more = false;
        for (unsigned i = 0; old && i < old->n; i++)
            gone |= range_gone(old, i);
        for (size_t i = 0; i < count; i++)
            more |= lo[i] < hi[i] && !set_has(old, lo[i]);
        if (!gone && (!more || (old && old->n == MAX_WRAPPERS)))
            break;
        if (!fresh && !(fresh = ms__pages_alloc(sizeof *fresh))) // a page, a few times
            return;
        *fresh = (wrap_set){.min = UINTPTR_MAX};
        for (unsigned i = 0; old && i < old->n; i++)
            if (!range_gone(old, i))
                set_add(fresh, old->lo[i], old->hi[i], old->obj[i]);
        for (size_t i = 0; i < count; i++)
            set_add(fresh, lo[i], hi[i], object_id(lo[i]));
        if (atomic_compare_exchange_strong(&wraps, &old, fresh)) {
            ms_atomic_add_relaxed(&ms__wrap_gen, 1);
            return;
        }
    }
    if (fresh)
        ms__pages_free(fresh, sizeof *fresh);
}

void ms__stack_add_wrappers(const uintptr_t *lo, const uintptr_t *hi, size_t count)
{
    wraps_update(lo, hi, count);
}

void ms__stack_add_wrapper(uintptr_t lo, uintptr_t hi) { wraps_update(&lo, &hi, 1); }

bool ms__stack_in_wrapper(uintptr_t pc)
{
    const wrap_set *w = ms_atomic_load_acquire(&wraps);
    if (!w || pc <= w->min || pc > w->max)
        return false;
    // A return address is just past its call: in (lo, hi]. The last range
    // whose lo is below pc is the only one that may hold it.
    unsigned a = 0, b = w->n;
    while (b - a > 1) {
        unsigned mid = (a + b) / 2;
        if (w->lo[mid] < pc)
            a = mid;
        else
            b = mid;
    }
    return pc > w->lo[a] && pc <= w->hi[a];
}

/* Where a wrapper's caller's return address sits, learnt per call site in a
 * wrapper with the unwinder's help, once (a wrapper's frame has one layout at
 * each of its call sites): `d` words above the return address into the
 * wrapper (1 ..64); WRAP_CHAIN: the wrapper keeps a frame pointer (it may
 * realign its stack, so no fixed word would do), and the address is above
 * its saved frame pointer; WRAP_NEVER: it cannot be learnt (a frame over 64
 * words, no unwind information), and the wrapper is the place. An entry is
 * d << 56 | site; 0 is empty. */
#define WRAP_SITES 256u /* 2^8 */
#define WRAP_CHAIN 126u
#define WRAP_NEVER 127u
static _Atomic uint64_t wrap_sites[WRAP_SITES];

/* The objects a search for wrappers has looked at (their link maps; 0
 * empty), so that each is searched once; when the table is full, later
 * objects are not searched. */
#define SEARCHED 512u /* 2^9 */
static _Atomic uint64_t objects_searched[SEARCHED];

/* A stack was seen for the first time, from code at pc: if pc's object was
 * never searched, look for wrappers in its dynamic symbols (a C++ runtime
 * loaded with a plugin after capture started: its operator new is where the
 * plugin's allocations come from). b (may be NULL) keeps the bounds of the
 * last object the thread looked at. Lock-free; the first search of an
 * object publishes what it finds (ms__stack_wrap_gen moves). */
static void search_object(ms__tbuf *b, uintptr_t pc)
{
    uint32_t now = ms_atomic_load_relaxed(&code_epoch);
    if (b && pc > b->obj_lo && pc <= b->obj_hi && b->obj_epoch == now)
        return; // the object this thread looked at last
    uintptr_t id, lo, hi;
    if (!ms__object_of(pc - 1, &id, &lo, &hi))
        return;
    if (b) {
        b->obj_lo = lo;
        b->obj_hi = hi;
        b->obj_epoch = now;
    }
    _Atomic uint64_t *slot = site_slot(objects_searched, 9, 64, 0, id);
    uint64_t none = 0;
    if (!slot || !atomic_compare_exchange_strong(slot, &none, (uint64_t)id))
        return; // searched (or being searched), or no room
    uintptr_t flo[MS__NEW_NAMES], fhi[MS__NEW_NAMES];
    size_t n = 0;
    for (size_t i = 0; i < MS__NEW_NAMES; i++)
        n += ms__object_function(id, ms__wrapper_names[i], &flo[n], &fhi[n]);
    if (n)
        ms__stack_add_wrappers(flo, fhi, n);
}

void ms__stack_forget_code(void)
{
    ms_atomic_add_relaxed(&code_epoch, 1);
    // Slots never used stay as they are (their pages untouched).
    for (size_t i = 0; i < VERDICTS; i++)
        if (ms_atomic_load_relaxed(&verdicts[i]) != 0)
            ms_atomic_store_relaxed(&verdicts[i], 0);
    for (size_t i = 0; i < WRAP_SITES; i++)
        if (ms_atomic_load_relaxed(&wrap_sites[i]) != 0)
            ms_atomic_store_relaxed(&wrap_sites[i], 0);
    for (size_t i = 0; i < SEARCHED; i++) // another object may be loaded at one's link map
        if (ms_atomic_load_relaxed(&objects_searched[i]) != 0)
            ms_atomic_store_relaxed(&objects_searched[i], 0);
    wraps_update(NULL, NULL, 0); // the wrappers of unloaded objects leave
    ms__cfi_forget();
}

static _Atomic uint64_t *wrap_site_slot(uintptr_t site)
{
    return site_slot(wrap_sites, 8, 16, 0, site);
}

static size_t wrap_site_words(uintptr_t site)
{
    _Atomic uint64_t *e = wrap_site_slot(site);
    return e ? (size_t)(ms_atomic_load_acquire(e) >> 56) : 0;
}

static void wrap_site_learn(uintptr_t site, size_t d)
{
    _Atomic uint64_t *e = wrap_site_slot(site);
    uint64_t empty = 0;
    if (e && learnt_in_epoch())
        atomic_compare_exchange_strong(e, &empty, (uint64_t)d << 56 | site);
}

/* Could a program's code be at x: not in the first page, inside the 47 bits
 * of user space? A word that fails it is data (say, a frame register that
 * held some), not a return address. */
static bool code_address(uintptr_t x) { return x >= 4096 && !(x >> 47); }

/* Is `pc`, read as a return address, plausibly one: a code address, not into
 * this thread's stack [lo, hi). */
static bool plausible_pc(uintptr_t pc, uintptr_t lo, uintptr_t hi)
{
    return code_address(pc) && !(pc >= lo && pc < hi);
}

/* Learn, from the unwinder's frames tmp[0..u) (tmp[0] = ret, stored at
 * `loc`; `rbp`: the frame register the hook saved), how each wrapper's
 * caller's return address is found (pre: the walk is on this thread's stack,
 * [lo, hi)). @return the first frame that is not into a wrapper. */
static uintptr_t wrap_learn(const uintptr_t *tmp, size_t u, uintptr_t loc, uintptr_t rbp,
                            uintptr_t hi)
{
    if (u < 2) { // the unwinder knows nothing past the wrapper
        wrap_site_learn(tmp[0], WRAP_NEVER);
        return tmp[0];
    }
    size_t i = 0;
    for (; i + 1 < u && ms__stack_in_wrapper(tmp[i]); i++) {
        if (rbp > loc && !(rbp & 7) && rbp + 16 <= hi && stack_word(rbp + 8) == tmp[i + 1]) {
            wrap_site_learn(tmp[i], WRAP_CHAIN); // a frame pointer of its own
            loc = rbp + 8;
            rbp = stack_word(rbp);
            continue;
        }
        size_t k = skip_word(loc - 8, hi, tmp[i + 1]); // the word at loc + 8 (k + 1)
        if (k == SKIP_WORDS) {
            wrap_site_learn(tmp[i], WRAP_NEVER); // the unwinder would answer every call
            break;
        }
        wrap_site_learn(tmp[i], k + 1);
        loc += 8 * (k + 1);
    }
    return tmp[i];
}

/* What a walk took from the chain of frame pointers without checking it, and
 * where the unwinder would go on from each of those frames: the chain went
 * from out[k] to out[k + 1], for k in [from, to), through the frame record of
 * the function out[k] returns into, trusting that it keeps a frame pointer
 * (the verdict checks out[0]'s), or, for k = to - 1 = n - 1, ended there
 * without the unwinder going on (a signal frame). Where the unwinder would go
 * on from out[k]: the frame record out[k] was read from, fp + rec[k] (the
 * stack pointer is 16 above it on the return to out[k], the frame register
 * the word there; offsets from the hook's frame `fp`, which the chain only
 * moves up from, keep the walk's frame small for a handler on a small
 * signal stack), or, for the return address a SKIP verdict read at skip_at,
 * skip_at + 8 and the word at fp. Checked only for a stack the thread's cache
 * and the table do not know (chain_wrong_at): the table holds only checked
 * stacks. */
typedef struct chain_state {
    size_t from, to, max;
    uintptr_t fp, skip_at;
    uint32_t rec[MS__STACK_MAX_DEPTH];
} chain_state;

/* The walk past the end of a frame-pointer chain: from `cur`, the last frame
 * it read (out[n - 1] is its return address; out[n - 2], when cur is not the
 * hook's frame `fp`, the return address into the function whose frame it
 * is), by the unwinder, with the thread's kept walk (b). @return the depth, n
 * when the unwinder cannot go on. */
MS_NOINLINE static size_t chain_rest(ms__tbuf *b, uintptr_t fp, uintptr_t cur, uintptr_t *out,
                                     size_t n, size_t max)
{
    if (stack_word(cur + 8) != out[n - 1])
        return n; // not the frame out[n - 1] was read from (no path gives one: a guard)
    size_t more = ms__cfi_walk_frame(cur, cur == fp ? 0 : out[n - 2], out + n - 1, max - n + 1,
                                     b ? &b->cfi_memo : NULL);
    return more > 1 ? n + more - 1 : n;
}

/* A walk's n frames came from the chain, ending at `cur`: gone on from when
 * it ended before max, under MEMSCOPE_UNWIND=auto (mode m), and its links
 * past out[1] left for cs to check (and, when the unwinder could not go on,
 * the function out[n - 1] returns into: a chain that ends in a signal frame
 * ends where the stack does not). */
static inline size_t chain_then_rest(ms__tbuf *b, chain_state *cs, const void *fp, uintptr_t cur,
                                     uintptr_t *out, size_t n, size_t max, int m)
{
    cs->from = 1;
    cs->to = n - 1;
    cs->max = max;
    cs->fp = (uintptr_t)fp;
    if (n == max || m != MS__UNWIND_AUTO)
        return n;
    size_t got = chain_rest(b, (uintptr_t)fp, cur, out, n, max);
    if (got == n)
        cs->to = n;
    return got;
}

/* The walk of ms__stack_take, and in cs what it took from the chain
 * unchecked (none: cs->to <= cs->from). */
static size_t walk_stack(ms__tbuf *b, const void *fp, uintptr_t ret, uintptr_t *out, size_t max,
                         chain_state *cs)
{
    cs->from = cs->to = 0;
    if (max > MS__STACK_MAX_DEPTH)
        max = MS__STACK_MAX_DEPTH;
    if (max == 0 || ret == 0)
        return 0;
    out[0] = ret;
    size_t n = 1;
    int m = ms_atomic_load_relaxed(&mode);
    uint64_t e = 0;
    int v = V_BAD; // the unwinder alone, unless the chain is asked
    tl_entries_fresh();
    uintptr_t lo = 0, hi = 0, cur = (uintptr_t)fp;
    bool in_stack = false;
    cs->skip_at = 0;
    if (m != MS__UNWIND_UNWINDER) {
        e = m == MS__UNWIND_FP ? verdict_entry(ret, V_FP, 0) : verdict_of(ret);
        v = (int)(e & 3);
        // Each frame holds the caller's frame pointer and, above it, the
        // return address. Follow the chain only while it stays inside this
        // thread's stack and moves up it: code without frame pointers leaves
        // anything in that register, and we must never read outside the stack.
        ms__thread_stack(&lo, &hi);
        in_stack = frame_on_stack(cur, lo, hi);
        if (in_stack && v == V_SKIP && n < max) {
            uintptr_t at = cur + 16 + 8 * VERDICT_ARG(e);
            uintptr_t w = at + 8 <= hi ? stack_word(at) : 0;
            cs->skip_at = at;
            if (code_address(w))
                out[n++] = w;
            else
                v = V_BAD; // no return address there: the unwinder answers this walk
        }
        if (in_stack) {
            while (n < max) {
                uintptr_t next = stack_word(cur);
                if (next <= cur || (next & 7) || next + 16 > hi ||
                    next - cur > ((uintptr_t)1 << 24))
                    break;
                uintptr_t ra = stack_word(next + 8);
                if (!code_address(ra)) // the frame register held data, not a frame
                    break;
                cs->rec[n] = (uint32_t)(next - (uintptr_t)fp);
                out[n++] = ra;
                cur = next;
            }
        }
        if (m == MS__UNWIND_FP)
            return n;
        // A walk on another stack (a coroutine's, a signal stack) has no
        // chain to judge: the unwinder answers it, and the site learns nothing.
        // (A SKIP word that is a return address into another wrapper, such
        // as nothrow operator new around operator new: the chain is short by
        // that wrapper's caller too, and the unwinder answers.)
        if (in_stack &&
            (v == V_FP || (v == V_SKIP && (n > 2 || n == max) && !ms__stack_in_wrapper(out[1])))) {
            // A chain that ends early ends in code without frame pointers:
            // glibc's start of main or of a thread, a callback called from
            // qsort. The last frame it read is right, and the unwinder goes
            // on from it (at the bottom of the stack, the same few frames at
            // every call: cfi.c keeps the thread's last such walk).
            return chain_then_rest(b, cs, fp, cur, out, n, max, m);
        }
    }
    // The decision looks at the unwinder's first three frames, whatever depth
    // this walk asks for: a verdict serves every later walk from the site.
    bool learn = v == V_UNKNOWN && in_stack;
    uintptr_t tmp[MS__STACK_MAX_DEPTH];
    size_t u = unwind(fp, ret, tmp, learn ? MS__STACK_MAX_DEPTH : max);
    if (learn) {
        // The caller's frame pointer by its call-frame information too: under
        // recursion through one call site, the chain's second frame may
        // match the unwinder's by chance.
        if (u <= 1 || (n >= 2 && tmp[1] == out[1] && ms__cfi_frame_pointer(ret) != MS__CFI_NO)) {
            verdict_put(ret, verdict_entry(ret, V_FP, 0));
            return chain_then_rest(b, cs, fp, cur, out, n, max, m);
        }
        // SKIP: the caller's return address is in the wrapper's frame, and
        // the chain past it goes on where the unwinder does (or breaks at
        // once: the wrapper's caller keeps no frame pointer either). A chain
        // that goes elsewhere (the frame register holds a pointer into some
        // frame's data) tells nothing.
        size_t k = skip_word((uintptr_t)fp, hi, tmp[1]);
        bool goes_on = u >= 3 && n >= 2 && tmp[2] == out[1];
        if (k < SKIP_WORDS && (goes_on || n == 1)) {
            verdict_put(ret, verdict_entry(ret, V_SKIP, k));
            if (goes_on) {
                // The stack every later walk from this site takes.
                size_t keep = n < max ? n : max - 1;
                memmove(out + 2, out + 1, (keep - 1) * sizeof *out);
                memmove(cs->rec + 2, cs->rec + 1, (keep - 1) * sizeof *cs->rec);
                out[1] = tmp[1];
                cs->skip_at = (uintptr_t)fp + 16 + 8 * k;
                return chain_then_rest(b, cs, fp, cur, out, keep + 1, max, m);
            }
        } else {
            size_t walks = VERDICT_ARG(e) + 1;
            verdict_put(ret, walks >= UNTOLD_WALKS ? verdict_entry(ret, V_BAD, 0)
                                                   : verdict_entry(ret, V_UNKNOWN, walks));
        }
    }
    // The unwinder's frames are right as far as they go: the chain is wrong
    // at its second frame, cut short past the SKIP word, or on another stack.
    if (u > max)
        u = max;
    if (u < 2)
        return n;
    memcpy(out, tmp, u * sizeof *out);
    return u;
}

#define WRAP_SITE(e) ((e) & ((UINT64_C(1) << 57) - 1))

/* Follow the learnt entries from `ret` (stored at `loc`, with the frame
 * register the hook saved, `rbp`) to the first return address that is not
 * into a wrapper. Reads stay below `limit`: this thread's stack top, or, off
 * it, a page above the hook's frame (the wrappers' own frames, which are
 * live). @return it; `ret` for a wrapper that is its own place (WRAP_NEVER);
 * 0 when an entry is missing or what it reads is not a return address. */
static uintptr_t wrap_follow(uintptr_t ret, size_t d0, uintptr_t loc, uintptr_t rbp, uintptr_t lo,
                             uintptr_t hi, uintptr_t limit)
{
    uintptr_t pc = ret;
    for (int level = 0; level < 4; level++) {
        size_t d = level == 0 && d0 ? d0 : wrap_site_words(pc);
        if (d == 0)
            return 0;
        if (level == 0 && d != d0)
            tl_wrap_site = (uint64_t)d << 57 | ret;
        if (d == WRAP_NEVER)
            return pc;
        if (d == WRAP_CHAIN) {
            if (rbp <= loc || (rbp & 7) || rbp + 16 > limit)
                return 0;
            loc = rbp + 8;
            rbp = stack_word(rbp);
        } else {
            loc += 8 * d;
            if (loc + 8 > limit)
                return 0;
        }
        pc = stack_word(loc);
        if (!plausible_pc(pc, lo, hi))
            return 0;
        if (!ms__stack_in_wrapper(pc))
            return pc;
    }
    return 0;
}

/* ms__stack_caller past its fast path: the learnt entries followed from the
 * start, else the unwinder's frames, learnt from when the walk is on this
 * thread's stack (a walk off it teaches nothing). */
MS_NOINLINE static uintptr_t caller_slow(const void *fp, uintptr_t ret, size_t d0)
{
    if (!d0 && (!ms__stack_in_wrapper(ret) || ms_atomic_load_relaxed(&mode) == MS__UNWIND_FP))
        return ret; // not a wrapper; or no unwinder to learn from
    uintptr_t lo, hi, at = (uintptr_t)fp;
    ms__thread_stack(&lo, &hi);
    bool in_stack = frame_on_stack(at, lo, hi);
    uintptr_t limit = in_stack ? hi : at + 4096, loc = at + 8; // where ret is stored
    uintptr_t rbp = stack_word(at);
    uintptr_t pc = wrap_follow(ret, d0, loc, rbp, lo, hi, limit);
    if (pc)
        return pc;
    uintptr_t tmp[8];
    size_t u = unwind(fp, ret, tmp, sizeof tmp / sizeof *tmp);
    if (u == 0)
        return ret;
    if (!in_stack) {
        size_t i = 0;
        while (i + 1 < u && ms__stack_in_wrapper(tmp[i]))
            i++;
        return tmp[i];
    }
    return wrap_learn(tmp, u, loc, rbp, hi);
}

uintptr_t ms__stack_caller(const void *fp, uintptr_t ret)
{
    // The site this thread called last (operator new, called again), when
    // its caller's return address is a word of its frame: no range check, no
    // lookup, and a small function (wrap_follow's first step, alone). The
    // cache never holds a site under MEMSCOPE_UNWIND=fp.
    tl_entries_fresh();
    uint64_t e = tl_wrap_site;
    size_t d0 = e && WRAP_SITE(e) == (uint64_t)ret ? (size_t)(e >> 57) : 0;
    if (d0 == WRAP_NEVER)
        return ret;
    if (d0 && d0 <= SKIP_WORDS) {
        uintptr_t lo, hi, at = (uintptr_t)fp, loc = at + 8 + 8 * d0;
        ms__thread_stack(&lo, &hi);
        uintptr_t limit = frame_on_stack(at, lo, hi) ? hi : at + 4096;
        if (loc + 8 <= limit) {
            uintptr_t pc = stack_word(loc);
            if (plausible_pc(pc, lo, hi) && !ms__stack_in_wrapper(pc))
                return pc;
        }
    }
    return caller_slow(fp, ret, d0);
}

/* ------------------------------------------------------------- the table */

#define MIX(h, x) ((h) = ((h) ^ (uint64_t)(x)) * UINT64_C(0x9E3779B97F4A7C15), (h) ^= (h) >> 29)

/* A chain of multiplies over the frames; from 8 frames, four chains over
 * every fourth frame, merged, so that a 20-frame stack costs the latency of
 * 5 steps and the merge, not of 20. */
static uint64_t stack_hash(const uintptr_t *f, size_t depth)
{
    uint64_t h0 = (uint64_t)depth * UINT64_C(0xD6E8FEB86659FD93), h1 = UINT64_C(0xA0761D6478BD642F),
             h2 = UINT64_C(0xE7037ED1A0B428DB), h3 = UINT64_C(0x8EBC6AF09C88C6E3);
    if (depth < 8) {
        for (size_t i = 0; i < depth; i++)
            MIX(h0, f[i]);
        return h0 | 1;
    }
    size_t i = 0;
    for (; i + 4 <= depth; i += 4) {
        MIX(h0, f[i]);
        MIX(h1, f[i + 1]);
        MIX(h2, f[i + 2]);
        MIX(h3, f[i + 3]);
    }
    for (; i < depth; i++)
        MIX(h0, f[i]);
    MIX(h0, h1);
    MIX(h2, h3);
    MIX(h0, h2);
    return h0 | 1; // 0 marks an empty cache slot
}

/* Set when the arena's address space could not be had: not asked for again
 * (a system call at every stack; its stacks are counted as dropped). */
static _Atomic bool arena_failed;

static uintptr_t *get_arena(void)
{
    uintptr_t *a = ms_atomic_load_acquire(&arena);
    if (ms_likely(a))
        return a;
    if (ms_atomic_load_relaxed(&arena_failed))
        return NULL;
    void *m = mmap(NULL, ARENA_WORDS * sizeof(uintptr_t), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) {
        ms_atomic_store_relaxed(&arena_failed, true);
        return NULL;
    }
    uintptr_t *expect = NULL;
    if (!atomic_compare_exchange_strong_explicit(&arena, &expect, (uintptr_t *)m,
                                                 memory_order_acq_rel, memory_order_acquire)) {
        munmap(m, ARENA_WORDS * sizeof(uintptr_t));
        return expect;
    }
    return (uintptr_t *)m;
}

static tbl *tbl_new(size_t cap)
{
    // Probed before a claim writes it; it fills at random, so all its pages
    // are touched soon anyway.
    tbl *t = ms__pages_alloc_written(sizeof(tbl) + cap * sizeof(islot));
    if (t)
        t->cap = cap;
    return t;
}

/* The loads of `newest` and of a slot's hash, and the compare-and-swaps on
 * them, are sequentially consistent (free on x86: plain loads and locked
 * instructions): a thread that sees a claim in table t and then still reads t
 * as the newest knows that whoever reads a newer table later, and then
 * searches t, sees the claim too (decide, insert). */
static tbl *get_newest(void)
{
    tbl *t = atomic_load(&newest);
    if (ms_likely(t))
        return t;
    tbl *n = tbl_new(FIRST_CAP), *expect = NULL;
    if (!n)
        return NULL;
    if (!atomic_compare_exchange_strong(&newest, &expect, n)) {
        ms__pages_free(n, sizeof(tbl) + FIRST_CAP * sizeof(islot));
        return expect;
    }
    return n;
}

/* A slot's entry word: 0 while undecided, then once, by a compare-and-swap,
 * an arena entry (id | depth << 32, depth ≥ 1), FORWARD (the stack's id is the
 * one the tables newer than this slot's give) or DROPPED (the arena was full:
 * the stack has no id, and never will). */
#define FORWARD UINT64_MAX
#define DROPPED (UINT64_MAX - 1)

static uint64_t entry_of(uint32_t id, size_t depth) { return id | (uint64_t)depth << 32; }

/* The id in a decided slot whose hash matched: 0 if the depth differs too
 * (64-bit hashes of distinct stacks do not meet in practice, as in the
 * threads' caches, so the frames themselves are not compared). */
static uint32_t entry_id(uint64_t e, size_t depth) { return (e >> 32) == depth ? (uint32_t)e : 0; }

/* The slot's entry once it is decided. Its claimer decides right after its
 * compare-and-swap (an append to the arena, or FORWARD), so this waits for a
 * few hundred instructions of another thread, unless that thread was
 * preempted there; then it gives the processor away a bounded number of
 * times (system calls, but only when a thread meets a claim that another,
 * off the processor, has not decided: on the first use of one stack by two
 * threads, or in a grower's copy). @return 0 if still undecided. */
static uint64_t entry_wait(islot *sl)
{
    for (int spin = 0; spin < 4096 + 256; spin++) {
        uint64_t e = ms_atomic_load_acquire(&sl->entry);
        if (e)
            return e;
        if (spin >= 4096)
            sched_yield();
#if defined(__x86_64__) || defined(__i386__)
        else
            __builtin_ia32_pause();
#endif
        ms_compiler_barrier();
    }
    return 0;
}

/* When t is half full, publish a table twice its size holding its entries. */
static void maybe_grow(tbl *t)
{
    if (ms_atomic_load_relaxed(&t->count) * 2 < t->cap || atomic_load(&newest) != t)
        return;
    tbl *n = tbl_new(t->cap * 2);
    if (!n)
        return; // stays usable up to full; inserts then fail, counted
    size_t mask = n->cap - 1, copied = 0;
    for (size_t i = 0; i < t->cap; i++) {
        uint64_t h = atomic_load(&t->slot[i].hash);
        if (h == 0)
            continue;
        // A slot still undecided is left out (lookups find it in t, which
        // stays searched), and so is FORWARD: only a table newer than t gives
        // that stack, and this one is not published if there is one.
        uint64_t e = entry_wait(&t->slot[i]);
        if (e == 0 || e == FORWARD || e == DROPPED)
            continue;
        size_t j = (size_t)h & mask;
        while (ms_atomic_load_relaxed(&n->slot[j].hash) != 0)
            j = (j + 1) & mask;
        ms_atomic_store_relaxed(&n->slot[j].hash, h);
        ms_atomic_store_relaxed(&n->slot[j].entry, e);
        copied++;
    }
    ms_atomic_store_relaxed(&n->count, copied);
    n->older = t;
    tbl *expect = t;
    if (!atomic_compare_exchange_strong(&newest, &expect, n))
        ms__pages_free(n, sizeof(tbl) + n->cap * sizeof(islot));
}

/* An arena entry is appended with this bit in its depth word, cleared once an
 * index slot gives its id: a thread's guess (entry_is) never takes an entry
 * the index does not give. It stays set on an entry whose thread lost the
 * decision (decide). */
#define UNINDEXED ((uintptr_t)1 << 31)

/* Append stack (h, f, depth) to the arena, not yet indexed. @return its id, 0
 * when the arena is full. */
static uint32_t append(uintptr_t *a, uint64_t h, const uintptr_t *f, size_t depth)
{
    size_t need = 2 + depth;
    size_t at = ms_atomic_add_relaxed(&arena_top, need);
    if (at + need > ARENA_WORDS)
        return 0;
    __atomic_store_n(&a[at + 1], depth | UNINDEXED, __ATOMIC_RELAXED);
    memcpy(&a[at + 2], f, depth * sizeof *f);
    // The hash last, released: a thread that guesses this entry (entry_is)
    // and reads the hash with acquire sees the whole entry.
    __atomic_store_n(&a[at], h, __ATOMIC_RELEASE);
    return (uint32_t)at;
}

static uint32_t find_in(uintptr_t *a, tbl *t, uint64_t h, const uintptr_t *f, size_t depth);
static uint32_t insert(uintptr_t *a, uint64_t h, const uintptr_t *f, size_t depth, tbl *searched);

/* The stack's id when a slot of table t holding it says FORWARD: from the
 * tables newer than t (t itself and older ones hold no answer: any claim of
 * the stack in them is decided the same way). Every thread that settles one
 * stack meets the others, and any that inserted it through a newer table
 * without seeing t's claim, on one slot of a newer table (which may in turn
 * defer to a table newer still). */
static uint32_t settle(uintptr_t *a, tbl *t, uint64_t h, const uintptr_t *f, size_t depth)
{
    tbl *top = atomic_load(&newest);
    for (tbl *u = top; u && u != t; u = u->older) {
        uint32_t id = find_in(a, u, h, f, depth);
        if (id)
            return id;
    }
    return insert(a, h, f, depth, top);
}

/* Decide claimed slot sl of table t, for its claimer right after its claim,
 * or for a thread that waited for the decision in vain (the claimer off the
 * processor, or gone: a fork's child). If the decider reads t as the newest
 * table, the slot takes an arena entry: every thread that reads a newer table
 * later, then searches t, sees the claim and takes that id (the
 * compare-and-swap may land after t is replaced). Once t has been replaced, a
 * thread that inserted the stack through the newer table may not have seen
 * the claim, so the slot takes FORWARD and the newer tables decide. The first
 * compare-and-swap on the entry word decides for all: the thread that loses
 * takes the winner's answer. When the arena is full the slot takes DROPPED.
 * @return the id, 0 when full. */
static uint32_t decide(uintptr_t *a, tbl *t, islot *sl, uint64_t h, const uintptr_t *f,
                       size_t depth)
{
    uint64_t want = 0;
    if (atomic_load(&newest) == t) {
        uint32_t at = append(a, h, f, depth);
        if (!at) { // the arena is full, for good: nobody waits for this slot again
            if (atomic_compare_exchange_strong(&sl->entry, &want, DROPPED))
                return 0;
        } else if (atomic_compare_exchange_strong(&sl->entry, &want, entry_of(at, depth))) {
            __atomic_store_n(&a[at + 1], depth, __ATOMIC_RELEASE); // now indexed
            ms_atomic_add_relaxed(&nstacks, 1);
            return at;
        }
    } else if (atomic_compare_exchange_strong(&sl->entry, &want, FORWARD)) {
        return settle(a, t, h, f, depth);
    }
    return want == FORWARD ? settle(a, t, h, f, depth) : entry_id(want, depth); // DROPPED: 0
}

/* The id in claimed slot sl of table t (hash h): 0 if it is another stack of
 * that hash. */
static uint32_t slot_id(uintptr_t *a, tbl *t, islot *sl, uint64_t h, const uintptr_t *f,
                        size_t depth)
{
    uint64_t e = entry_wait(sl);
    if (e == 0)
        return decide(a, t, sl, h, f, depth);
    return e == FORWARD ? settle(a, t, h, f, depth) : entry_id(e, depth);
}

/* Stack (h, f, depth) in table t: its id, or 0 if t does not hold it. */
static uint32_t find_in(uintptr_t *a, tbl *t, uint64_t h, const uintptr_t *f, size_t depth)
{
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)h & mask, probes = 0; probes < t->cap; i = (i + 1) & mask, probes++) {
        uint64_t sh = atomic_load(&t->slot[i].hash);
        if (sh == 0)
            return 0;
        if (sh == h)
            return slot_id(a, t, &t->slot[i], h, f, depth);
    }
    return 0;
}

/* Stack (h, f, depth), which no table held when the caller searched them
 * after reading `searched` as the newest (all of them; or, from settle, those
 * newer than a FORWARD slot's table: a claim in that table or an older one is
 * decided in the newer ones too): its id, from a slot of the newest table
 * claimed by this thread or by another inserting it at the same time; 0 when
 * full. */
static uint32_t insert(uintptr_t *a, uint64_t h, const uintptr_t *f, size_t depth, tbl *searched)
{
    if (ms_atomic_load_relaxed(&arena_top) + 2 + depth > ARENA_WORDS)
        return 0; // full: claim no slot that would stay undecided
    tbl *t = atomic_load(&newest);
    if (t != searched) {
        // Replaced since the search: a claim decided in `searched` or in a
        // table between while it was the newest may have been missed, so
        // those are searched again, after reading t (see get_newest).
        for (tbl *u = t->older; u; u = u->older) {
            uint32_t id = find_in(a, u, h, f, depth);
            if (id || u == searched)
                return id ? id : insert(a, h, f, depth, t);
        }
    }
    if (ms_atomic_load_relaxed(&t->count) + 1 >= t->cap)
        return 0; // full and could not grow
    size_t mask = t->cap - 1;
    for (size_t i = (size_t)h & mask, probes = 0;; i = (i + 1) & mask) {
        if (++probes > t->cap)
            return 0; // filled up meanwhile and could not grow
        islot *sl = &t->slot[i];
        uint64_t sh = atomic_load(&sl->hash);
        if (sh == 0) {
            uint64_t want = 0;
            if (atomic_compare_exchange_strong(&sl->hash, &want, h)) {
                ms_atomic_add_relaxed(&t->count, 1);
                uint32_t id = decide(a, t, sl, h, f, depth);
                maybe_grow(t);
                return id;
            }
            sh = want; // another thread took the slot: is it the same stack?
        }
        if (sh == h) {
            uint32_t id = slot_id(a, t, sl, h, f, depth);
            if (id)
                return id;
        }
    }
}

/* The entry after stack `id` of `depth` frames in the arena: where a thread
 * that found `id` looks first for its next stack. */
static uint32_t entry_after(uint32_t id, size_t depth)
{
    size_t next = (size_t)id + 2 + depth;
    return next + 2 + MS__STACK_MAX_DEPTH <= ARENA_WORDS ? (uint32_t)next : 0;
}

/* Whether the entry at `id` (0: none), which may be unwritten or another
 * thread's being written, is the stack of hash h and this depth. */
static bool entry_is(const uintptr_t *a, uint32_t id, uint64_t h, size_t depth)
{
    return id && __atomic_load_n(&a[id], __ATOMIC_ACQUIRE) == h &&
           __atomic_load_n(&a[id + 1], __ATOMIC_ACQUIRE) == depth;
}

/* What intern answers for a walk whose chain is wrong from out[k] on
 * (chain_wrong_at): never an id (ids are below 2^27). A thread's cache keeps
 * it for that walk's frames, so that the next walk that finds them goes on by
 * the unwinder at once. */
#define CHAIN_WRONG (UINT32_C(1) << 31)

/* The first k in [from, to) at which cs's chain went wrong: where the
 * function out[k] returns into keeps no frame pointer, by its call-frame
 * information (code without it is taken as the chain gives it). 0: none. */
static size_t chain_wrong_at(const uintptr_t *out, const chain_state *cs)
{
    for (size_t k = cs->from; k < cs->to; k++)
        if (ms__cfi_frame_pointer(out[k]) == MS__CFI_NO)
            return k;
    return 0;
}

/* The walk of n frames, whose chain went wrong past out[k], walked again
 * from there by the unwinder (from the start by glibc's if it cannot go on).
 * @return its depth. */
static size_t chain_redo(uintptr_t *out, size_t k, const chain_state *cs)
{
    if (ms_atomic_load_relaxed(&mode) != MS__UNWIND_BACKTRACE) {
        uintptr_t rec = cs->fp + cs->rec[k], sp = rec + 16, rbp;
        if (k == 1 && cs->skip_at) {
            sp = cs->skip_at + 8;
            rbp = stack_word(cs->fp);
        } else {
            rbp = stack_word(rec);
        }
        uintptr_t lo, hi;
        ms__thread_stack(&lo, &hi);
        size_t more = ms__cfi_walk(out[k], sp, rbp, lo, hi, out + k, cs->max - k);
        if (more > 0)
            return k + more;
    }
    size_t u = backtrace_from(out[0], out, cs->max);
    return u >= 2 ? u : k + 1; // out[0 .. k] are right
}

/* ms__stack_intern: with b's cache and guess when `cached` (else b only
 * counts a dropped stack; b may be NULL). With `cs` (a walk whose chain is
 * unchecked), a stack that neither the cache nor the table holds is checked
 * before it is added: CHAIN_WRONG | k when it is wrong past frames[k]. */
static inline uint32_t intern(ms__tbuf *b, bool cached, const uintptr_t *frames, size_t depth,
                              const chain_state *cs, bool *added)
{
    if (depth == 0)
        return 0;
    if (depth > MS__STACK_MAX_DEPTH)
        depth = MS__STACK_MAX_DEPTH;
    uint64_t h = stack_hash(frames, depth);
    ms__stack_slot *c = b && cached ? &b->stack_cache[(h >> 7) & (MS__STACK_CACHE - 1)] : NULL;
    uint32_t id = 0, guess = 0;
    uintptr_t *a = get_arena();
    // A chain found wrong at frame k answers only a walk whose chain took
    // that frame (the same frames from a shorter chain: not in practice).
    if (c && c->hash == h && (!(c->id & CHAIN_WRONG) || (cs && (c->id & ~CHAIN_WRONG) < cs->to))) {
        id = c->id; // 64-bit hashes of distinct stacks do not meet in practice
        if (id & CHAIN_WRONG)
            return id;
    } else if (a && c && (guess = b->stack_next) != 0 &&
               // Not past the arena's top: a read of a page nobody has written
               // maps the zero page there, and the append that writes it then
               // pays a copy-on-write fault and a TLB flush on every CPU.
               (size_t)guess + 2 <= ms_atomic_load_relaxed(&arena_top) &&
               entry_is(a, guess, h, depth)) {
        id = guess; // the guess (above), read once
    } else {
        tbl *top = a ? get_newest() : NULL;
        for (tbl *t = top; t && !id; t = t->older)
            id = find_in(a, t, h, frames, depth);
        size_t k = !id && cs ? chain_wrong_at(frames, cs) : 0;
        if (k) {
            if (c)
                *c = (ms__stack_slot){h, CHAIN_WRONG | (uint32_t)k};
            return CHAIN_WRONG | (uint32_t)k;
        }
        if (!id && top) {
            id = insert(a, h, frames, depth, top);
            if (added)
                *added = id != 0;
        }
        if (!id) {
            ms_atomic_add_relaxed(&ndropped, 1);
            if (b && b->store) // the event goes without its stack: its report says so
                ms_atomic_add_relaxed(&b->store->stackless, 1);
            return 0;
        }
    }
    if (c) {
        *c = (ms__stack_slot){h, id};
        uint32_t next = entry_after(id, depth);
        b->stack_next = next;
        if (next) // by the next call, likely to be the entry it needs (a prefetch never faults)
            __builtin_prefetch(&a[next]);
    }
    return id;
}

uint32_t ms__stack_intern(ms__tbuf *b, const uintptr_t *frames, size_t depth)
{
    if (!b || b->stack_busy) // a signal handler that interrupted this thread's call
        return intern(b, false, frames, depth, NULL, NULL);
    b->stack_busy = 1;
    ms_compiler_barrier();
    uint32_t id = intern(b, true, frames, depth, NULL, NULL);
    ms_compiler_barrier();
    b->stack_busy = 0;
    return id;
}

uint32_t ms__stack_intern_held(ms__tbuf *b, const uintptr_t *frames, size_t depth)
{
    bool added = false;
    uint32_t id = intern(b, true, frames, depth, NULL, &added);
    if (added)
        search_object(b, frames[0]);
    return id;
}

uint32_t ms__stack_take(ms__tbuf *b, const void *fp, uintptr_t ret, size_t max)
{
    uintptr_t out[MS__STACK_MAX_DEPTH];
    chain_state cs;
    size_t n = walk_stack(b, fp, ret, out, max, &cs);
    bool cached = b && !b->stack_busy; // not: a signal handler inside this thread's call
    if (cached) {
        b->stack_busy = 1;
        ms_compiler_barrier();
    }
    bool added = false;
    uint32_t id = intern(b, cached, out, n, cs.to > cs.from ? &cs : NULL, &added);
    if (ms_unlikely(id & CHAIN_WRONG)) {
        n = chain_redo(out, id & ~CHAIN_WRONG, &cs);
        id = intern(b, cached, out, n, NULL, &added);
    }
    if (added) // a handler inside this thread's call leaves b's object be
        search_object(cached ? b : NULL, out[0]);
    if (cached) {
        ms_compiler_barrier();
        b->stack_busy = 0;
    }
    return id;
}

size_t ms__stack_get(uint32_t id, const uintptr_t **frames)
{
    uintptr_t *a = ms_atomic_load_acquire(&arena);
    size_t top = ms_atomic_load_acquire(&arena_top);
    if (top > ARENA_WORDS) // past the end after an append that found it full
        top = ARENA_WORDS;
    if (!a || id == 0 || (size_t)id + 2 > top)
        return 0;
    size_t depth = __atomic_load_n(&a[id + 1], __ATOMIC_ACQUIRE) & ~UNINDEXED;
    // An id that is not an entry's start fails these checks (the hash covers
    // the frames and the depth).
    if (depth == 0 || depth > MS__STACK_MAX_DEPTH || id + 2 + depth > top ||
        stack_hash(&a[id + 2], depth) != a[id])
        return 0;
    *frames = &a[id + 2];
    return depth;
}

uintptr_t ms__stack_top(uint32_t id)
{
    uintptr_t *a = ms_atomic_load_acquire(&arena);
    if (!a || id == 0 || (size_t)id + 3 > ms_atomic_load_acquire(&arena_top) ||
        (size_t)id + 3 > ARENA_WORDS)
        return 0;
    return a[id + 2];
}

uintptr_t ms__stack_place(uint32_t id)
{
    uintptr_t top = ms__stack_top(id);
    // The chain alone (MEMSCOPE_UNWIND=fp) skips the caller of a wrapper that
    // keeps no frame pointer: the frame after the wrapper is not its caller.
    if (!ms__stack_in_wrapper(top) || ms_atomic_load_relaxed(&mode) == MS__UNWIND_FP)
        return top;
    const uintptr_t *f = NULL;
    size_t depth = ms__stack_get(id, &f);
    for (size_t i = 1; i < depth; i++)
        if (!ms__stack_in_wrapper(f[i]))
            return f[i];
    return top;
}

uint64_t ms__stack_count(void) { return ms_atomic_load_relaxed(&nstacks); }
uint64_t ms__stack_dropped(void) { return ms_atomic_load_relaxed(&ndropped); }

/* ------------------------------------------------------------ public API */

size_t ms_stack_frames(uint32_t id, uintptr_t *frames, size_t max)
{
    const uintptr_t *f = NULL;
    size_t depth = ms__stack_get(id, &f);
    if (frames && depth > 0)
        memcpy(frames, f, (depth < max ? depth : max) * sizeof *frames);
    return depth;
}
