/* stack.h — call stacks: walked by frame pointers where the code keeps them
 * (else by their call-frame information: stack/cfi.h), interned into one process-wide lock-free
 * table so that events carry a 30-bit id, never frames; symbolized only when a report is written.
 * Depends on common/ (and store/store.h in stack.c: the per-thread cache lives in the thread's
 * store buffer). docs/capture.md has the design. */
#ifndef MS_STACK_STACK_H
#define MS_STACK_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/atomic.h"

struct ms__tbuf;

#define MS__STACK_MAX_DEPTH 64u

/* How stacks are walked (MEMSCOPE_UNWIND: "auto", "fp", "unwinder",
 * "backtrace"). The unwinder is ours (stack/cfi.h: the call-frame information
 * of the code on the stack), with glibc's backtrace() where it cannot go. */
typedef enum ms__unwind_mode {
    MS__UNWIND_AUTO,     /* frame pointers; the unwinder when they break at once */
    MS__UNWIND_FP,       /* frame pointers only */
    MS__UNWIND_UNWINDER, /* the unwinder only */
    MS__UNWIND_BACKTRACE /* glibc's backtrace() only, where the unwinder would be used */
} ms__unwind_mode;

void ms__stack_set_mode(ms__unwind_mode m);
/* Load the unwinder now (its first use loads libgcc_s), outside any hook. */
void ms__stack_warm_up(void);

/* The stack of a call whose caller's frame is `fp` (the frame of the function
 * that was called, built with frame pointers) and whose return address is
 * `ret`, at most `max` return addresses, innermost (ret) first, interned as
 * ms__stack_intern does. `b` (may be NULL): the calling thread's store
 * buffer, which keeps its cache of stacks and its last walk past the end of a
 * chain of frame pointers. A stack the chain gave that neither the cache nor
 * the table knows is checked against the call-frame information first: where
 * a function on it keeps no frame pointer, the chain went wrong, and the
 * unwinder walks on from there (a callback from code without frame pointers
 * that leaves the register alone, or uses it for data).
 * @return the stack's id; 0 when ret is 0 or the table is full. No
 * allocation, no lock. */
uint32_t ms__stack_take(struct ms__tbuf *b, const void *fp, uintptr_t ret, size_t max);

/* Code was unloaded (dlclose): what walks learnt per return address (the
 * call sites' verdicts, the wrappers' frames, cfi.c's rules) is forgotten, so
 * that code loaded at the same address is learnt afresh. Lock-free; a walk
 * that runs meanwhile may still use what it read before. */
void ms__stack_forget_code(void);

/* Allocator wrappers: the functions that only allocate for their caller
 * (C++'s operator new and new[] in every form, strdup, strndup), whose blocks
 * are named where the program called them, with call stacks or without.
 * ms__stack_find_wrappers (symbols.c) looks up the ones the process has loaded
 * when capture starts, outside any hook: it takes the loader's lock. A C++
 * runtime loaded later is found in a hook (ms__stack_add_wrappers). */
void ms__stack_find_wrappers(void);
/* The wrappers' symbols: operator new's forms (the first MS__NEW_NAMES),
 * then strdup and strndup. */
#define MS__NEW_NAMES 8u
#define MS__WRAPPER_NAMES 10u
extern const char *const ms__wrapper_names[MS__WRAPPER_NAMES];
/* Add [lo[i], hi[i]) for i < count as wrappers' code, published together.
 * Lock-free; takes a page when it adds any. Also done in a hook, the first
 * time a stack is seen from an object never searched (a C++ runtime loaded
 * with a plugin after capture started), by its dynamic symbols. */
void ms__stack_add_wrappers(const uintptr_t *lo, const uintptr_t *hi, size_t count);
void ms__stack_add_wrapper(uintptr_t lo, uintptr_t hi);
/* How many sets of wrappers were published: a cache of where a call came
 * from (ms__stack_caller) is good while it has not moved. */
extern _Atomic uint32_t ms__wrap_gen;
static inline uint32_t ms__stack_wrap_gen(void) { return ms_atomic_load_relaxed(&ms__wrap_gen); }
/* Is this return address into a wrapper? Lock-free, a couple of compares for
 * an address outside their libraries. */
bool ms__stack_in_wrapper(uintptr_t pc);
/* For a call with frame `fp` and return address `ret` (as ms__stack_take):
 * ret when it is not into a wrapper, else the first return address above it
 * that is not: where the program called the wrapper. Learnt per wrapper call
 * site with the unwinder's help, then read from the wrapper's frame. No
 * allocation, no lock. */
uintptr_t ms__stack_caller(const void *fp, uintptr_t ret);

/* @return the id of this stack (1 ..), interning it on first sight; 0 when
 * the table is full (counted in ms__stack_dropped, and in b's store). Lock-free; `b` (may be
 * NULL) holds the calling thread's cache, which a call from a signal handler
 * that interrupted one on the same thread does not use (b->stack_busy). */
uint32_t ms__stack_intern(struct ms__tbuf *b, const uintptr_t *frames, size_t depth);
/* The same for a caller that has set b->stack_busy itself (b not NULL). */
uint32_t ms__stack_intern_held(struct ms__tbuf *b, const uintptr_t *frames, size_t depth);

/* @return the depth of stack `id` and its frames in *frames (borrowed, valid
 * for the process's life), 0 for an unknown id. */
size_t ms__stack_get(uint32_t id, const uintptr_t **frames);
/* @return the innermost frame of stack `id`, an id ms__stack_intern gave (a
 * record's): only its bounds are checked, not its hash, so the fold pays one
 * load. 0 for an id past the table. */
uintptr_t ms__stack_top(uint32_t id);
/* The frame of stack `id` a report places its blocks at: its first that is
 * not into an allocator wrapper (its innermost, ms__stack_top, if all are). */
uintptr_t ms__stack_place(uint32_t id);
uint64_t ms__stack_count(void);
uint64_t ms__stack_dropped(void);

/* A symbolized code address. Strings are written into the caller's buffer. */
typedef struct ms__symbol {
    char function[256]; /* "" if unknown */
    char file[512];     /* source file, "" without debug info */
    unsigned line;
    char module[256]; /* the binary's base name */
    uintptr_t offset; /* pc - the function's start, or the module offset */
    uintptr_t shown;  /* the address to print, when not the one symbolized (0: that one) */
} ms__symbol;

/* Symbols that come from elsewhere: a tracker rebuilt from a trace interns
 * stacks of stand-in addresses (MS__SYMBOL_DEFINED_BIT set: never a user
 * code address), and ms__symbolize_pc answers them from this table.
 * @return 0 or MS_ENOMEM. */
#define MS__SYMBOL_DEFINED_BIT (UINT64_C(0xfff0) << 48)
int ms__symbol_define(uintptr_t pc, const ms__symbol *sym);

/* Resolve a return address (the call before it is what is named). Uses libdw
 * when built with it (function, file and line from DWARF and .symtab), else
 * dladdr (exported functions only). Thread-safe; allocates (internal). */
void ms__symbolize_pc(uintptr_t pc, ms__symbol *out);
/* "function (file.c:42)", "function+0x1a (lib.so)" or "0x... (lib.so+0x12)". */
void ms__symbol_format(const ms__symbol *s, uintptr_t pc, char *buf, size_t size);
/* Copy a function's name into dst[size]: whole when it fits, else with
 * template arguments left out ("<...>"), and cut with "..." if still too long. */
void ms__symbol_shorten(char *dst, size_t size, const char *name);
/* Is `function` (a symbol's name, demangled or not) one that only allocates
 * for its caller, C++'s operator new and new[] or strdup? A report names the
 * first frame of a stack that is not one as the place of its blocks. */
bool ms__symbol_is_allocator(const char *function);

#endif
