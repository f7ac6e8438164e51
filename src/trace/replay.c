/* replay.c — ms_tracker_from_trace: a tracker holding the run a binary trace
 * recorded. Its live state is rebuilt by applying the trace's records in
 * their order (the order the traced fold chose), in the traced process's
 * ticks with its timebase and series width, so snapshots, ms_analyze and the
 * exports show that run; the system samples go into its monitor's history;
 * stacks are interned from stand-in addresses whose symbols the trace gives
 * (ms__symbol_define), so reports name the same frames. */
#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"
#include "monitor/monitor.h"
#include "stack/stack.h"
#include "store/live.h"
#include "store/store.h"
#include "trace/trace.h"
#include "tracker/tracker.h"

static _Atomic uint32_t instances; /* each rebuilt tracker gets its own stand-in addresses */

typedef struct stack_map {
    uint32_t *from, *to; /* open addressing: trace stack id -> this process's */
    size_t cap, count;
    uint8_t *defined; /* symbol number -> defined yet */
    size_t defined_cap;
} stack_map;

static uint32_t *map_slot(stack_map *m, uint32_t id)
{
    if ((m->count + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 256;
        uint32_t *nf = ms__calloc(ncap, sizeof *nf), *nt = ms__calloc(ncap, sizeof *nt);
        if (!nf || !nt) {
            ms__free(nf);
            ms__free(nt);
            return NULL;
        }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->from[i])
                continue;
            size_t j = (m->from[i] * 2654435761u) & (ncap - 1);
            while (nf[j])
                j = (j + 1) & (ncap - 1);
            nf[j] = m->from[i];
            nt[j] = m->to[i];
        }
        ms__free(m->from);
        ms__free(m->to);
        m->from = nf;
        m->to = nt;
        m->cap = ncap;
    }
    size_t i = (id * 2654435761u) & (m->cap - 1);
    while (m->from[i] && m->from[i] != id)
        i = (i + 1) & (m->cap - 1);
    if (!m->from[i]) {
        m->from[i] = id;
        m->to[i] = 0;
        m->count++;
    }
    return &m->to[i];
}

/* This process's id for the trace's stack `id` (0 if it cannot be made). */
static uint32_t local_stack(ms_trace *tr, stack_map *m, uint64_t base, uint32_t id)
{
    uint32_t *slot = map_slot(m, id);
    if (!slot)
        return 0;
    if (*slot)
        return *slot;
    const uint32_t *syms;
    size_t depth = ms__trace_stack_syms(tr, id, &syms);
    uintptr_t frames[MS__STACK_MAX_DEPTH];
    if (depth > MS__STACK_MAX_DEPTH)
        depth = MS__STACK_MAX_DEPTH;
    for (size_t d = 0; d < depth; d++) {
        frames[d] = (uintptr_t)(base | syms[d]);
        if (syms[d] >= m->defined_cap) {
            size_t ncap = m->defined_cap ? m->defined_cap : 1024;
            while (ncap <= syms[d])
                ncap *= 2;
            uint8_t *n = ms__realloc(m->defined, ncap);
            if (!n)
                return 0;
            memset(n + m->defined_cap, 0, ncap - m->defined_cap);
            m->defined = n;
            m->defined_cap = ncap;
        }
        if (!m->defined[syms[d]]) {
            ms__symbol sym;
            if (!ms__trace_symbol(tr, syms[d], &sym) || ms__symbol_define(frames[d], &sym) < 0)
                return 0;
            m->defined[syms[d]] = 1;
        }
    }
    *slot = depth ? ms__stack_intern(NULL, frames, depth) : 0;
    return *slot;
}

static ms_tracker *from_trace(const char *path)
{
    ms_trace *tr;
    if (ms_trace_open(path, &tr) < 0)
        return NULL;
    ms_tracker *t = ms_tracker_new();
    if (!t) {
        ms_trace_close(tr);
        return NULL;
    }
    ms_event_store *s = t->store;
    const ms_trace_info *info = ms_trace_get_info(tr);
    // Every record a trace of the retained log holds, as its tracker had
    // them; a streamed trace's (any length) in the default budget.
    if (!info->streamed)
        ms__store_set_retained(s, (size_t)1 << 40);
    ms__store_lock(s);
    ms__live_destroy(&s->live);
    s->series_width = ms__trace_series_width(tr);
    int rc = ms__live_init(&s->live, s->series_width);
    s->timebase = ms__trace_timebase(tr);
    ms__store_unlock(s);
    t->trace = tr;
    t->start_ns = info->start_ns;
    t->replay_pid = info->pid;
    snprintf(t->replay_program, sizeof t->replay_program, "%s", info->program);
    if (rc < 0) {
        ms_tracker_free(t);
        ms__fail(MS_ENOMEM, "out of memory replaying %s", path);
        return NULL;
    }
    uint64_t base =
        MS__SYMBOL_DEFINED_BIT | (uint64_t)(ms_atomic_add_relaxed(&instances, 1) & 0xffffu) << 32;
    stack_map map = {0};
    bool configured = false;
    ms__trace_rec x;
    while ((rc = ms__trace_next_rec(tr, &x)) == 1) {
        if (!configured) { // the configuration block comes before any record
            ms_tracker_with_sampling(t, info->sampling);
            configured = true;
        }
        if (x.sample) {
            if ((rc = ms__mon_replay(&t->mon, &x.snap, 0)) < 0)
                break;
            continue;
        }
        uint32_t stack = x.stack ? local_stack(tr, &map, base, x.stack) : 0;
        uint64_t flags = (x.captured ? MS__RF_CAPTURED : 0) |
                         ((x.flags & MS__TF_SOFT) ? MS__RF_SOFT : 0) |
                         ((x.flags & MS__TF_MOVE) ? MS__RF_MOVE : 0);
        ms__rec r;
        ms__rec_set(&r, x.tick, x.type, ms__tids_intern(s->tids, x.tid), x.ptr, x.old_ptr, x.size,
                    stack ? ms__rec_extra(stack, flags) : x.old_size | flags, x.site);
        ms__store_replay(s, &r);
    }
    // The exports show the trace's stack ids: keep the way back.
    t->replay_stacks_cap = map.cap;
    t->replay_local = map.cap ? ms__calloc(map.cap, sizeof *t->replay_local) : NULL;
    t->replay_stack = map.cap ? ms__calloc(map.cap, sizeof *t->replay_stack) : NULL;
    if (map.cap && (!t->replay_local || !t->replay_stack)) {
        t->replay_stacks_cap = 0;
    } else {
        for (size_t i = 0; i < map.cap; i++) {
            uint32_t local = map.from[i] ? map.to[i] : 0;
            if (!local)
                continue;
            size_t j = (local * 2654435761u) & (map.cap - 1);
            while (t->replay_local[j])
                j = (j + 1) & (map.cap - 1);
            t->replay_local[j] = local;
            t->replay_stack[j] = map.from[i];
        }
    }
    ms__free(map.from);
    ms__free(map.to);
    ms__free(map.defined);
    if (rc < 0) {
        ms_tracker_free(t);
        return NULL;
    }
    if (!configured)
        ms_tracker_with_sampling(t, info->sampling);
    ms_atomic_store_relaxed(&t->captured, ms__trace_captured(tr));
    if (info->complete) {
        s->replay_extra = info->stats;
        t->replay_duration_ns = info->duration_ns;
        ms__mon_replay(&t->mon, NULL, info->samples_overwritten);
    }
    return t;
}

ms_tracker *ms_tracker_from_trace(const char *path)
{
    ms__internal_enter(); // under capture the rebuild's memory is not the program's
    ms_tracker *t = from_trace(path);
    ms__internal_leave();
    return t;
}
