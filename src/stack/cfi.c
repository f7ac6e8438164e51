/* cfi.c — walking a stack by call-frame information (see cfi.h).
 *
 * The rule of a return address comes from the object that holds it:
 * _dl_find_object (lock-free, async-signal-safe) gives its .eh_frame_hdr,
 * whose sorted table finds the FDE; its CIE's and its own instructions are
 * run up to the call, following three things only: the canonical frame
 * address (CFA: the stack pointer before the call), the return address (on
 * x86-64 always at CFA - 8) and the frame register rbp (saved, or left
 * alone), because a caller's CFA may be defined by it. Any other register is
 * not needed to go on. A rule is packed into one word:
 *
 *   bits 0-1   kind: OK, END (the outermost frame, or no unwind information:
 *              the walk ends there, as glibc's unwinder ends it), FAIL (a
 *              signal frame or a rule not read here: the caller falls back)
 *   bits 2-3   the CFA's base: rsp, rbp, or the word at rbp + off (the
 *              frame of a function that realigns its stack, as gcc's main)
 *   bit 4      rbp was saved, at CFA + rbp_off; bit 5: at rbp + rbp_off
 *              (gcc's realigned frame again)
 *   bit 6      UNKEPT: not for the table (an address the loader did not know:
 *              an object dlopen is still loading is not known yet)
 *   bits 8-23  rbp_off (signed)
 *   bits 24-39 the epoch it was worked out in (ms__cfi_forget: code unloaded)
 *   bits 40-63 the CFA's offset (signed)
 *
 * The table: open addressing by return address, 2^16 slots of (key, rule),
 * in .bss (pages touched only as used). A slot is claimed by a
 * compare-and-swap of its key to the address (pending), then gets its rule,
 * then the key is marked ready with a release store; a reader that finds it
 * pending (another thread, or the code a signal handler interrupted) works
 * the rule out itself. Slots are never freed, so a key never changes once
 * ready. An object unloaded and another loaded at its address keep the old
 * rules (docs/capture.md): the walk's reads stay inside the thread's stack
 * whatever a rule says, so that gives a wrong stack, never a crash. */
#include "stack/cfi.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <string.h>

#include "common/atomic.h"
#include "common/cursor.h"
#include "common/heap.h"
#include "common/pages.h"

#if defined(__x86_64__) && defined(DLFO_STRUCT_HAS_EH_DBASE)

enum { K_OK = 1, K_END = 2, K_FAIL = 3 };
enum { B_RSP = 0, B_RBP = 1, B_DEREF_RBP = 2 };
enum { DW_RBP = 6, DW_RSP = 7, DW_RA = 16 };
enum { SAVED_CFA = 1, SAVED_RBP = 2 };

#define RULE(kind, base, saved, rbp_off, cfa_off)                                                  \
    ((uint64_t)(kind) | (uint64_t)(base) << 2 | (uint64_t)(saved) << 4 |                           \
     (uint64_t)(uint16_t)(int16_t)(rbp_off) << 8 | (uint64_t)(uint32_t)(int32_t)(cfa_off) << 40)
#define CFA_OFF_MAX (((int64_t)1 << 23) - 1) /* 24 bits, signed */
#define EPOCH_SHIFT 24
#define EPOCH_MASK ((uint64_t)0xffff << EPOCH_SHIFT)
#define UNKEPT ((uint64_t)1 << 6)
#define RULE_KIND(r) ((int)((r)&3))
#define RULE_BASE(r) ((int)(((r) >> 2) & 3))
#define RULE_SAVED(r) ((int)(((r) >> 4) & 3)) /* 0, SAVED_CFA or SAVED_RBP */
#define RULE_RBP_OFF(r) ((int64_t)(int16_t)(uint16_t)((r) >> 8))
#define RULE_CFA_OFF(r) ((int64_t)(r) >> 40)

/* ------------------------------------------------------------- reading */

/* A pointer in the DW_EH_PE encoding `enc` (absolute or pc-relative; the
 * other bases are not used for code on x86-64). `value_only`: the format
 * without its base, as an FDE's address range is written. */
static uintptr_t read_encoded(ms__cursor *r, uint8_t enc, bool value_only)
{
    const uint8_t *at = r->p;
    uint64_t v;
    switch (enc & 0x0f) {
    case 0x00: // absptr
    case 0x04: // udata8
    case 0x0c: // sdata8
        v = ms__get_le(r, 8);
        break;
    case 0x01:
        v = ms__get_varint(r);
        break;
    case 0x02:
        v = ms__get_le(r, 2);
        break;
    case 0x03:
        v = ms__get_le(r, 4);
        break;
    case 0x09:
        v = (uint64_t)ms__get_svarint(r);
        break;
    case 0x0a:
        v = (uint64_t)(int64_t)(int16_t)ms__get_le(r, 2);
        break;
    case 0x0b:
        v = (uint64_t)(int64_t)(int32_t)ms__get_le(r, 4);
        break;
    default:
        r->bad = true;
        return 0;
    }
    if (value_only)
        return (uintptr_t)v;
    switch (enc & 0x70) {
    case 0x00:
        break;
    case 0x10:
        v += (uintptr_t)at;
        break;
    default:
        r->bad = true;
        break; // datarel, textrel, funcrel, aligned
    }
    return (uintptr_t)v;
}

/* ---------------------------------------------------- finding the FDE */

/* The FDE of pc from the .eh_frame_hdr at hdr: its binary-search table of
 * (start, FDE) pairs, 4-byte offsets from hdr, as every linker writes it.
 * NULL when no entry starts at or below pc; *unread when the table has
 * another form (libgcc would search .eh_frame itself: the caller falls back). */
static const uint8_t *find_fde(const uint8_t *hdr, uintptr_t pc, bool *unread)
{
    *unread = true;
    if (hdr[0] != 1)
        return NULL;
    uint8_t ptr_enc = hdr[1], count_enc = hdr[2], table_enc = hdr[3];
    ms__cursor r = {hdr + 4, hdr + 4 + 32, false};
    (void)read_encoded(&r, ptr_enc, false); // where .eh_frame starts
    uint64_t count = read_encoded(&r, count_enc, false);
    if (r.bad || table_enc != 0x3b || count == 0 || count > ((uint64_t)1 << 31))
        return NULL;
    *unread = false;
    const uint8_t *table = r.p;
    int64_t rel = (int64_t)(pc - (uintptr_t)hdr);
    size_t a = 0, b = (size_t)count; // the last entry whose start is <= pc
    while (b - a > 1) {
        size_t mid = a + (b - a) / 2;
        int32_t start;
        memcpy(&start, table + 8 * mid, 4);
        if (start <= rel)
            a = mid;
        else
            b = mid;
    }
    int32_t start, fde;
    memcpy(&start, table + 8 * a, 4);
    memcpy(&fde, table + 8 * a + 4, 4);
    return start <= rel ? hdr + fde : NULL;
}

/* ------------------------------------------------- running the program */

/* How rbp and the return address are kept: R_AT at CFA + off, R_AT_RBP at
 * rbp + off (rbp only). */
enum { R_SAME, R_AT, R_AT_RBP, R_UNDEF, R_BAD };

typedef struct cfa_state {
    uint64_t cfa_reg;
    int64_t cfa_off;
    bool cfa_deref; /* CFA = the word at rbp + deref_off (cfa_off is then unused,
                       as in libgcc: a later def_cfa_offset leaves the expression) */
    int64_t deref_off;
    bool cfa_bad;
    uint8_t rbp, ra;
    int64_t rbp_off, ra_off;
} cfa_state;

#define STATES 8 /* DW_CFA_remember_state nesting */

typedef struct cie_info {
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    bool has_aug, signal;
} cie_info;

/* v × the data alignment, wrapping as unsigned: malformed input must not
 * overflow a signed type (an offset that large fails the packing's range). */
static int64_t scaled(uint64_t v, int64_t align) { return (int64_t)(v * (uint64_t)align); }

static void set_reg(cfa_state *s, uint64_t reg, uint8_t how, int64_t off)
{
    if (reg == DW_RBP) {
        s->rbp = how;
        s->rbp_off = off;
    } else if (reg == DW_RA) {
        s->ra = how;
        s->ra_off = off;
    }
}

static void restore_reg(cfa_state *s, const cfa_state *init, uint64_t reg)
{
    if (reg == DW_RBP) {
        s->rbp = init->rbp;
        s->rbp_off = init->rbp_off;
    } else if (reg == DW_RA) {
        s->ra = init->ra;
        s->ra_off = init->ra_off;
    }
}

/* Run the instructions in r from code address *loc until the next one would
 * apply past `target` (the end of the call). `init`: the CIE's state, for
 * DW_CFA_restore (NULL while running the CIE's own). @return false when the
 * program is malformed or uses something not read here. */
static bool run(ms__cursor *r, const cie_info *c, uintptr_t *loc, uintptr_t target, cfa_state *s,
                const cfa_state *init)
{
    cfa_state saved[STATES];
    int depth = 0;
    while (r->p < r->end && !r->bad) {
        uint8_t op = *r->p++;
        uint64_t reg, delta = 0;
        bool advance = false;
        switch (op >> 6) {
        case 1: // DW_CFA_advance_loc
            delta = (uint64_t)(op & 0x3f) * c->code_align;
            advance = true;
            break;
        case 2: // DW_CFA_offset
            set_reg(s, op & 0x3f, R_AT, scaled(ms__get_varint(r), c->data_align));
            break;
        case 3: // DW_CFA_restore
            if (!init)
                return false;
            restore_reg(s, init, op & 0x3f);
            break;
        default:
            switch (op) {
            case 0x00:
                break;   // nop
            case 0x01: { // set_loc
                uintptr_t to = read_encoded(r, c->fde_enc, false);
                if (to > target)
                    return !r->bad;
                *loc = to;
                break;
            }
            case 0x02:
                delta = ms__get_u8(r) * c->code_align;
                advance = true;
                break;
            case 0x03:
                delta = ms__get_le(r, 2) * c->code_align;
                advance = true;
                break;
            case 0x04:
                delta = ms__get_le(r, 4) * c->code_align;
                advance = true;
                break;
            case 0x05: // offset_extended
                reg = ms__get_varint(r);
                set_reg(s, reg, R_AT, scaled(ms__get_varint(r), c->data_align));
                break;
            case 0x06: // restore_extended
                if (!init)
                    return false;
                restore_reg(s, init, ms__get_varint(r));
                break;
            case 0x07:
                set_reg(s, ms__get_varint(r), R_UNDEF, 0);
                break;
            case 0x08:
                set_reg(s, ms__get_varint(r), R_SAME, 0);
                break;
            case 0x09: // register: kept in another register
                reg = ms__get_varint(r);
                (void)ms__get_varint(r);
                set_reg(s, reg, R_BAD, 0);
                break;
            case 0x0a: // remember_state
                if (depth == STATES)
                    return false;
                saved[depth++] = *s;
                break;
            case 0x0b: // restore_state: every rule, the CFA's too (as gcc reads it)
                if (depth == 0)
                    return false;
                *s = saved[--depth];
                break;
            case 0x0c: // def_cfa
                s->cfa_reg = ms__get_varint(r);
                s->cfa_off = (int64_t)ms__get_varint(r);
                s->cfa_deref = s->cfa_bad = false;
                break;
            case 0x0d: // def_cfa_register
                s->cfa_reg = ms__get_varint(r);
                s->cfa_deref = false;
                break;
            case 0x0e:
                s->cfa_off = (int64_t)ms__get_varint(r);
                break;   // def_cfa_offset
            case 0x0f: { // def_cfa_expression
                uint64_t len = ms__get_varint(r);
                if (len > (uint64_t)(r->end - r->p))
                    return false;
                ms__cursor e = {r->p, r->p + len, false};
                r->p += len;
                // gcc's realigned frame: DW_OP_breg6 off; DW_OP_deref.
                s->cfa_bad = true;
                if (len >= 3 && ms__get_u8(&e) == 0x76) {
                    int64_t off = ms__get_svarint(&e);
                    if (!e.bad && ms__get_u8(&e) == 0x06 && e.p == e.end && !e.bad) {
                        s->cfa_reg = DW_RBP;
                        s->deref_off = off;
                        s->cfa_deref = true;
                        s->cfa_bad = false;
                    }
                }
                break;
            }
            case 0x10: // expression
            case 0x16: // val_expression
            {
                reg = ms__get_varint(r);
                uint64_t len = ms__get_varint(r);
                if (len > (uint64_t)(r->end - r->p))
                    return false;
                ms__cursor e = {r->p, r->p + len, false};
                r->p += len;
                set_reg(s, reg, R_BAD, 0);
                // gcc's realigned frame keeps rbp at DW_OP_breg6 off.
                if (op == 0x10 && reg == DW_RBP && len >= 2 && ms__get_u8(&e) == 0x76) {
                    int64_t off = ms__get_svarint(&e);
                    if (!e.bad && e.p == e.end)
                        set_reg(s, reg, R_AT_RBP, off);
                }
                break;
            }
            case 0x11: // offset_extended_sf
                reg = ms__get_varint(r);
                set_reg(s, reg, R_AT, scaled((uint64_t)ms__get_svarint(r), c->data_align));
                break;
            case 0x12: // def_cfa_sf
                s->cfa_reg = ms__get_varint(r);
                s->cfa_off = scaled((uint64_t)ms__get_svarint(r), c->data_align);
                s->cfa_deref = s->cfa_bad = false;
                break;
            case 0x13:
                s->cfa_off = scaled((uint64_t)ms__get_svarint(r), c->data_align);
                break; // def_cfa_offset_sf
            case 0x14: // val_offset
            case 0x15: // val_offset_sf
                reg = ms__get_varint(r);
                if (op == 0x14)
                    (void)ms__get_varint(r);
                else
                    (void)ms__get_svarint(r);
                set_reg(s, reg, R_BAD, 0);
                break;
            case 0x2e:
                (void)ms__get_varint(r);
                break; // GNU_args_size
            case 0x2f: // GNU_negative_offset_extended
                reg = ms__get_varint(r);
                set_reg(s, reg, R_AT, scaled(0 - ms__get_varint(r), c->data_align));
                break;
            default:
                return false;
            }
        }
        if (advance) {
            if (*loc + delta > target)
                return !r->bad;
            *loc += delta;
        }
    }
    return !r->bad;
}

/* The CIE at cie (its length word): what its FDEs need, and its initial
 * instructions in *ins. @return false for a form not read here. */
static bool read_cie(const uint8_t *cie, cie_info *c, ms__cursor *ins)
{
    uint32_t len;
    memcpy(&len, cie, 4);
    if (len == 0 || len == 0xffffffffu)
        return false;
    ms__cursor r = {cie + 4, cie + 4 + len, false};
    if (ms__get_le(&r, 4) != 0) // a CIE's id in .eh_frame
        return false;
    uint64_t version = ms__get_u8(&r);
    if (version != 1 && version != 3)
        return false;
    const char *aug = (const char *)r.p;
    size_t alen = 0;
    while (r.p < r.end && *r.p)
        r.p++, alen++;
    if (r.p >= r.end || alen > 8)
        return false;
    r.p++;
    c->code_align = ms__get_varint(&r);
    c->data_align = ms__get_svarint(&r);
    c->ra_reg = version == 1 ? ms__get_u8(&r) : ms__get_varint(&r);
    c->fde_enc = 0;
    c->has_aug = alen > 0 && aug[0] == 'z';
    c->signal = false;
    if (alen > 0 && !c->has_aug)
        return false;
    if (c->has_aug) {
        uint64_t dlen = ms__get_varint(&r);
        if (r.bad || dlen > (uint64_t)(r.end - r.p))
            return false;
        const uint8_t *data_end = r.p + dlen;
        for (size_t i = 1; i < alen && !r.bad; i++) {
            switch (aug[i]) {
            case 'R':
                c->fde_enc = (uint8_t)ms__get_u8(&r);
                break;
            case 'L':
                (void)ms__get_u8(&r);
                break;
            case 'P': {
                uint8_t penc = (uint8_t)ms__get_u8(&r);
                (void)read_encoded(&r, (uint8_t)(penc & 0x7f), true); // the personality: skipped
                break;
            }
            case 'S':
                c->signal = true;
                break;
            default:
                return false;
            }
        }
        if (r.bad || r.p > data_end)
            return false;
        r.p = data_end;
    }
    if (r.bad || c->ra_reg != DW_RA || c->code_align == 0)
        return false;
    *ins = r;
    return true;
}

/* The rule of return address ret: the frame state just before the call that
 * ends at ret (ret - 1 is in the calling function, even when the call is its
 * last instruction). */
static uint64_t rule_for(uintptr_t ret)
{
    const uint64_t fail = RULE(K_FAIL, 0, 0, 0, 0), end = RULE(K_END, 0, 0, 0, 0);
    uintptr_t pc = ret - 1;
    struct dl_find_object dlfo;
    // Code the loader does not know (a JIT's, whose tables libgcc may have
    // from __register_frame), or not yet (an object dlopen is still loading).
    if (_dl_find_object((void *)pc, &dlfo) != 0)
        return fail | UNKEPT;
    bool unread = false;
    const uint8_t *fde = dlfo.dlfo_eh_frame ? find_fde(dlfo.dlfo_eh_frame, pc, &unread) : NULL;
    if (!fde) {
        // A signal handler's return into a restorer of its own, without
        // unwind information: libgcc knows its code (mov $15, %rax; syscall:
        // rt_sigreturn) and its frame by sight. Read only on the page of the
        // call before ret, which is mapped: the next one may not be.
        static const uint8_t sigreturn[9] = {0x48, 0xc7, 0xc0, 0x0f, 0x00, 0x00, 0x00, 0x0f, 0x05};
        if (unread || (((pc & 4095) + 1 + sizeof sigreturn <= 4096) &&
                       memcmp((const void *)ret, sigreturn, sizeof sigreturn) == 0))
            return fail;
        return end; // no unwind information: libgcc ends the stack there too
    }
    uint32_t len, cie_off;
    memcpy(&len, fde, 4);
    memcpy(&cie_off, fde + 4, 4);
    if (len == 0 || len == 0xffffffffu || cie_off == 0)
        return fail;
    cie_info c;
    ms__cursor cie_ins;
    if (!read_cie(fde + 4 - cie_off, &c, &cie_ins))
        return fail;
    ms__cursor r = {fde + 8, fde + 4 + len, false};
    uintptr_t start = read_encoded(&r, c.fde_enc, false);
    uintptr_t range = read_encoded(&r, c.fde_enc, true);
    if (r.bad)
        return fail;
    if (pc < start || pc - start >= range)
        return end; // between functions: no FDE covers it
    if (c.has_aug) {
        uint64_t skip = ms__get_varint(&r);
        if (r.bad || skip > (uint64_t)(r.end - r.p))
            return fail;
        r.p += skip;
    }
    if (c.signal)
        return fail;
    cfa_state s = {.cfa_reg = DW_RSP, .rbp = R_SAME, .ra = R_UNDEF};
    uintptr_t loc = start;
    if (!run(&cie_ins, &c, &loc, UINTPTR_MAX, &s, NULL))
        return fail;
    cfa_state init = s;
    loc = start;
    if (!run(&r, &c, &loc, pc, &s, &init))
        return fail;
    if (s.ra == R_UNDEF)
        return end; // the outermost frame (_start, a thread's start)
    if (s.ra != R_AT || s.ra_off != -8 || s.cfa_bad || s.rbp == R_BAD || s.rbp == R_UNDEF)
        return fail;
    int base;
    if (s.cfa_deref)
        base = B_DEREF_RBP;
    else if (s.cfa_reg == DW_RSP)
        base = B_RSP;
    else if (s.cfa_reg == DW_RBP)
        base = B_RBP;
    else
        return fail;
    int saved = s.rbp == R_AT ? SAVED_CFA : s.rbp == R_AT_RBP ? SAVED_RBP : 0;
    int64_t cfa_off = s.cfa_deref ? s.deref_off : s.cfa_off;
    if (cfa_off > CFA_OFF_MAX || cfa_off < -CFA_OFF_MAX ||
        (saved && s.rbp_off != (int16_t)s.rbp_off))
        return fail;
    return RULE(K_OK, base, saved, saved ? s.rbp_off : 0, cfa_off);
}

/* ------------------------------------------------------------- the table */

#define SLOT_BITS 16u
#define PROBES 32u
/* Tables past the first, each twice the one before, made (from pages: the
 * first use of one is the slow path of a lookup that found no room) when an
 * address's run of PROBES slots in every table before it is full: a program
 * with more distinct return addresses on its stacks than the first table
 * holds keeps rules for up to 15 × 65 536 of them (15 MiB) instead of working
 * the rest out at every walk. */
#define LEVELS 4u

typedef struct slot {
    _Atomic uint64_t key; /* 0 empty; ret << 1 pending; ret << 1 | 1 ready */
    _Atomic uint64_t rule;
} slot;

static slot slots[(size_t)1 << SLOT_BITS];
static _Atomic(slot *) more_slots[LEVELS]; /* [0] unused: slots */
static _Atomic uint64_t nrules;
static _Atomic uint32_t epoch; /* ms__cfi_forget */

uint64_t ms__cfi_rules(void) { return ms_atomic_load_relaxed(&nrules); }

static size_t level_bytes(unsigned l) { return sizeof(slot) << (SLOT_BITS + l); }

/* more_slots[l] when its pages could not be had: not asked for again (a
 * system call at every lookup that reaches it). */
#define NO_TABLE ((slot *)(uintptr_t)1)

/* Table l, made if `make` and not yet there. NULL: none (or no memory). */
static slot *level_table(unsigned l, bool make)
{
    if (l == 0)
        return slots;
    slot *t = ms_atomic_load_acquire(&more_slots[l]);
    if (t == NO_TABLE)
        return NULL;
    if (t || !make)
        return t;
    slot *fresh = ms__pages_alloc(level_bytes(l)), *expect = NULL;
    if (!fresh) {
        atomic_compare_exchange_strong(&more_slots[l], &expect, NO_TABLE);
        return NULL;
    }
    if (!atomic_compare_exchange_strong(&more_slots[l], &expect, fresh)) {
        ms__pages_free(fresh, level_bytes(l)); // another thread made it first (or failed)
        return expect == NO_TABLE ? NULL : expect;
    }
    return fresh;
}

static uint64_t rule_of(uintptr_t ret)
{
    if (ret >> 62)
        return RULE(K_FAIL, 0, 0, 0, 0);
    uint64_t now = (uint64_t)(ms_atomic_load_relaxed(&epoch) & 0xffff) << EPOCH_SHIFT;
    uint64_t want = (uint64_t)ret << 1;
    uint64_t h = (uint64_t)ret * UINT64_C(0x9E3779B97F4A7C15);
    for (unsigned l = 0; l < LEVELS; l++) {
        // A table is made only for an address whose runs before it are full,
        // so an address found nowhere in the tables there are has no rule.
        slot *tab = level_table(l, true);
        if (!tab)
            break;
        unsigned bits = SLOT_BITS + l;
        size_t mask = ((size_t)1 << bits) - 1, i = (size_t)(h >> (64 - bits));
        for (unsigned k = 0; k < PROBES; k++, i = (i + 1) & mask) {
            uint64_t key = ms_atomic_load_acquire(&tab[i].key);
            if (ms_likely(key == (want | 1))) {
                uint64_t rule = ms_atomic_load_relaxed(&tab[i].rule);
                if (ms_likely((rule & EPOCH_MASK) == now))
                    return rule;
                // Worked out before code was unloaded: again, for this epoch
                // (a reader meanwhile takes the old word or the new, and
                // works the rule out itself on the old).
                rule = rule_for(ret) | now;
                if (!(rule & UNKEPT))
                    ms_atomic_store_relaxed(&tab[i].rule, rule);
                return rule;
            }
            if (key == want)
                return rule_for(ret); // another walk is writing it
            if (key == 0) {
                uint64_t rule = rule_for(ret) | now;
                if (!(rule & UNKEPT) && atomic_compare_exchange_strong(&tab[i].key, &key, want)) {
                    ms_atomic_store_relaxed(&tab[i].rule, rule);
                    ms_atomic_store_release(&tab[i].key, want | 1);
                    ms_atomic_add_relaxed(&nrules, 1);
                }
                return rule;
            }
        }
    }
    return rule_for(ret); // every run is full: worked out every time
}

/* ------------------------------------------------------------- the walk */

/* A word of this thread's stack in another function's frame (pre: inside
 * it). AddressSanitizer would take the padding around a frame's locals for
 * an overflow. */
__attribute__((no_sanitize("address"))) static uintptr_t word_at(uintptr_t at)
{
    return *(const uintptr_t *)at;
}

static bool on_stack(uintptr_t at, uintptr_t lo, uintptr_t hi)
{
    return at >= lo && at <= hi - 8 && !(at & 7);
}

/* The stack words a walk read (where, and what it found), while they fit. */

typedef struct reads {
    unsigned n; /* MS__CFI_MEMO_READS + 1: too many to keep */
    uintptr_t at[MS__CFI_MEMO_READS], val[MS__CFI_MEMO_READS];
} reads;

static uintptr_t read_word(reads *r, uintptr_t at)
{
    uintptr_t v = word_at(at);
    if (r->n < MS__CFI_MEMO_READS) {
        r->at[r->n] = at;
        r->val[r->n] = v;
    }
    if (r->n <= MS__CFI_MEMO_READS)
        r->n++;
    return v;
}

static size_t walk(uintptr_t pc, uintptr_t sp, uintptr_t rbp, uintptr_t lo, uintptr_t hi,
                   uintptr_t *out, size_t max, reads *r)
{
    size_t n = 0;
    for (;;) {
        out[n++] = pc;
        if (n == max)
            return n;
        uint64_t rule = rule_of(pc);
        int kind = RULE_KIND(rule);
        if (kind == K_END)
            return n;
        if (kind != K_OK)
            return 0;
        uintptr_t cfa;
        switch (RULE_BASE(rule)) {
        case B_RSP:
            cfa = sp + (uintptr_t)RULE_CFA_OFF(rule);
            break;
        case B_RBP:
            cfa = rbp + (uintptr_t)RULE_CFA_OFF(rule);
            break;
        default: {
            uintptr_t at = rbp + (uintptr_t)RULE_CFA_OFF(rule);
            if (!on_stack(at, lo, hi))
                return 0;
            cfa = read_word(r, at);
        }
        }
        // The caller's frame is above this one, and its return address and
        // saved frame register are words of this thread's stack.
        if (cfa <= sp || !on_stack(cfa - 8, lo, hi))
            return 0;
        if (RULE_SAVED(rule)) {
            uintptr_t at =
                (RULE_SAVED(rule) == SAVED_CFA ? cfa : rbp) + (uintptr_t)RULE_RBP_OFF(rule);
            if (!on_stack(at, lo, hi))
                return 0;
            rbp = read_word(r, at);
        }
        pc = read_word(r, cfa - 8);
        sp = cfa;
        if (pc < 4096)
            return n;
    }
}

/* A kept walk (cfi.h) answers one from the same frame, under the same
 * return address, with the same words at the frame and at every other place
 * it read, asking for a depth it covers (a walk that ended before its depth
 * covers any; a failed walk is not kept), in the same epoch: a rule depends
 * on its return address alone, and the words are what the walk read. */
static bool memo_holds(const ms__cfi_memo *m, uintptr_t frame, uintptr_t below, size_t max)
{
    // Its frame was on this thread's stack when it was kept, and still is.
    if (m->frame != frame || m->below != below || (!m->whole && max > m->max) ||
        m->epoch != ms_atomic_load_relaxed(&epoch) || word_at(frame) != m->rbp ||
        word_at(frame + 8) != m->pc)
        return false;
    for (unsigned i = 0; i < m->nread; i++)
        if (word_at(m->at[i]) != m->val[i])
            return false;
    return true;
}

/* Does the function that ret returns into keep a frame pointer at that call
 * (CFA = rbp + 16, rbp saved at CFA - 16)? */
static bool frame_pointer_rule(uint64_t rule)
{
    return RULE_KIND(rule) == K_OK && RULE_BASE(rule) == B_RBP && RULE_CFA_OFF(rule) == 16 &&
           RULE_SAVED(rule) == SAVED_CFA && RULE_RBP_OFF(rule) == -16;
}

static bool keeps_frame_pointer(uintptr_t ret) { return frame_pointer_rule(rule_of(ret)); }

int ms__cfi_frame_pointer(uintptr_t ret)
{
    uint64_t rule = rule_of(ret);
    // A signal frame, or a rule not read, is not a frame record either; code
    // the loader does not know (a JIT's) or without unwind information is.
    if (RULE_KIND(rule) == K_END || (RULE_KIND(rule) == K_FAIL && (rule & UNKEPT)))
        return MS__CFI_UNKNOWN;
    return frame_pointer_rule(rule) ? MS__CFI_YES : MS__CFI_NO;
}

static void memo_keep(ms__cfi_memo *m, uintptr_t frame, uintptr_t below, uintptr_t pc,
                      uintptr_t rbp, uint32_t now, size_t max, const uintptr_t *out, size_t n,
                      const reads *r)
{
    if (n == 0 || n > MS__CFI_MEMO_FRAMES || r->n > MS__CFI_MEMO_READS || max > UINT8_MAX)
        return;
    m->below = below;
    m->pc = pc;
    m->rbp = rbp;
    m->epoch = now;
    m->max = (uint8_t)max;
    m->n = (uint8_t)n;
    m->nread = (uint8_t)r->n;
    m->whole = n < max;
    for (unsigned i = 0; i < r->n; i++) {
        m->at[i] = r->at[i];
        m->val[i] = r->val[i];
    }
    for (size_t i = 0; i < n; i++)
        m->out[i] = out[i];
    m->frame = frame;
}

size_t ms__cfi_walk(uintptr_t ret, uintptr_t sp, uintptr_t rbp, uintptr_t lo, uintptr_t hi,
                    uintptr_t *out, size_t max)
{
    if (max == 0 || ret == 0 || hi < lo + 16)
        return 0;
    reads r;
    r.n = 0;
    return walk(ret, sp, rbp, lo, hi, out, max, &r);
}

/* ms__cfi_walk_frame past the kept walk: the walk itself, kept in m (may be
 * NULL) when it is short. Out of line, so that an answer from the kept walk
 * does not pay for this one's frame. */
MS_NOINLINE static size_t walk_frame(uintptr_t frame, uintptr_t below, uintptr_t *out, size_t max,
                                     ms__cfi_memo *m)
{
    if (m)
        m->frame = 0;
    uintptr_t lo, hi;
    ms__thread_stack(&lo, &hi);
    if (hi < lo + 16 || frame < lo || frame > hi - 16 || (frame & 7) ||
        (below && !keeps_frame_pointer(below)))
        return 0;
    uintptr_t pc = word_at(frame + 8), rbp = word_at(frame);
    uint32_t now =
        ms_atomic_load_relaxed(&epoch); // a walk made across a forget is of the one before
    reads r;
    r.n = 0;
    size_t n = pc ? walk(pc, frame + 16, rbp, lo, hi, out, max, &r) : 0;
    if (m)
        memo_keep(m, frame, below, pc, rbp, now, max, out, n, &r);
    return n;
}

size_t ms__cfi_walk_frame(uintptr_t frame, uintptr_t below, uintptr_t *out, size_t max,
                          ms__cfi_memo *m)
{
    if (max == 0)
        return 0;
    if (!m || m->busy) // none; or a signal handler, inside this thread's walk
        return walk_frame(frame, below, out, max, NULL);
    m->busy = 1;
    ms_compiler_barrier();
    size_t n;
    if (memo_holds(m, frame, below, max)) {
        n = m->n < max ? m->n : max;
        for (size_t i = 0; i < n; i++) // a few words: no call
            out[i] = m->out[i];
    } else {
        n = walk_frame(frame, below, out, max, m);
    }
    ms_compiler_barrier();
    m->busy = 0;
    return n;
}

void ms__cfi_forget(void)
{
    uint32_t was = ms_atomic_add_relaxed(&epoch, 1);
    if (((was + 1) & 0xffff) != 0)
        return;
    // The rules carry 16 bits of the epoch: at its wrap, a rule 65 536 unloads
    // old would look current. Empty the tables instead (a walk that inserts
    // meanwhile leaves a rule of an epoch before, which is worked out again).
    for (unsigned l = 0; l < LEVELS; l++) {
        slot *tab = level_table(l, false);
        for (size_t i = 0; tab && i < ((size_t)1 << (SLOT_BITS + l)); i++) {
            if (ms_atomic_load_relaxed(&tab[i].key) != 0) {
                ms_atomic_store_relaxed(&tab[i].key, 0);
                ms_atomic_store_relaxed(&tab[i].rule, 0);
            }
        }
    }
}

#else /* no _dl_find_object, or not x86-64 */

size_t ms__cfi_walk(uintptr_t ret, uintptr_t sp, uintptr_t rbp, uintptr_t lo, uintptr_t hi,
                    uintptr_t *out, size_t max)
{
    (void)ret, (void)sp, (void)rbp, (void)lo, (void)hi, (void)out, (void)max;
    return 0;
}

size_t ms__cfi_walk_frame(uintptr_t frame, uintptr_t below, uintptr_t *out, size_t max,
                          ms__cfi_memo *m)
{
    (void)frame, (void)below, (void)out, (void)max, (void)m;
    return 0;
}

int ms__cfi_frame_pointer(uintptr_t ret)
{
    (void)ret;
    return MS__CFI_UNKNOWN;
}

void ms__cfi_forget(void) {}

uint64_t ms__cfi_rules(void) { return 0; }

#endif
