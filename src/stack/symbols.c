/* symbols.c — naming code addresses for reports: libdw (elfutils) when the
 * build found it, which reads .symtab and DWARF line tables, so static
 * functions and file:line are named; else dladdr, which knows only exported
 * symbols. Runs at export time (and once at capture's start,
 * ms__stack_find_wrappers), never in a hook. */
#include <ctype.h>
#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/atomic.h"
#include "common/error.h"
#include "stack/stack.h"

#ifdef MEMSCOPE_HAVE_LIBDW
#include <elfutils/libdwfl.h>
#endif

static void copy(char *dst, size_t size, const char *src)
{
    snprintf(dst, size, "%s", src ? src : "");
}

/* C++ names are shown demangled, by the C++ runtime's own demangler when the
 * process has loaded it (every C++ program has; a plugin may have, with
 * RTLD_LOCAL): no dependency of ours, and a program without C++ has no
 * mangled names to show. Looked for again until found: the runtime may be
 * loaded after the first name is shown. */
typedef char *(*demangle_fn)(const char *, char *, size_t *, int *);

/* A reference to the C++ runtime, if the process has loaded it (even with
 * RTLD_LOCAL), else NULL. */
static void *cxx_runtime(void) { return dlopen("libstdc++.so.6", RTLD_LAZY | RTLD_NOLOAD); }
static _Atomic(demangle_fn) demangler;

static demangle_fn find_demangler(void)
{
    demangle_fn fn = ms_atomic_load_acquire(&demangler);
    if (fn)
        return fn;
    // The reference RTLD_NOLOAD takes is kept: the library cannot be unloaded
    // under the pointer kept here. Else a runtime linked into the program.
    void *sym = NULL, *h = cxx_runtime();
    if (h && !(sym = dlsym(h, "__cxa_demangle")))
        dlclose(h);
    if (!sym)
        sym = dlsym(RTLD_DEFAULT, "__cxa_demangle");
    memcpy(&fn, &sym, sizeof fn); // POSIX: a symbol's address converts
    if (fn)
        ms_atomic_store_release(&demangler, fn);
    return fn;
}

void ms__symbol_shorten(char *dst, size_t size, const char *name)
{
    if (size == 0)
        return;
    size_t len = strlen(name);
    if (len < size) {
        memcpy(dst, name, len + 1);
        return;
    }
    // Template arguments out: "std::vector<...>::_M_realloc_insert<...>(...)"
    // names what a cut at `size` would leave half-written. An operator's own
    // '<' and '>' (operator<<, operator->) are kept as they are.
    size_t n = 0, depth = 0;
    for (const char *c = name; *c && n + 1 < size; c++) {
        if (strncmp(c, "operator", 8) == 0 &&
            (c == name || !(isalnum((unsigned char)c[-1]) || c[-1] == '_'))) {
            size_t k = 8;
            while (c[k] && strchr("<>=-", c[k]))
                k++;
            if (depth == 0)
                for (size_t i = 0; i < k && n + 1 < size; i++)
                    dst[n++] = c[i];
            c += k - 1;
            continue;
        }
        if (*c == '<' && depth++ == 0) {
            for (const char *e = "<..."; *e && n + 1 < size; e++)
                dst[n++] = *e;
        } else if (*c == '>' && depth > 0) {
            if (--depth == 0 && n + 1 < size)
                dst[n++] = '>';
        } else if (depth == 0) {
            dst[n++] = *c;
        }
    }
    dst[n] = '\0';
    if (n + 1 == size && size > 4) // still too long: say it is cut
        memcpy(dst + size - 4, "...", 4);
}

static void set_function(char *dst, size_t size, const char *name)
{
    if (name && name[0] == '_' && name[1] == 'Z') {
        demangle_fn demangle = find_demangler();
        int status = -1;
        char *plain = demangle ? demangle(name, NULL, NULL, &status) : NULL;
        if (plain && status == 0) {
            ms__symbol_shorten(dst, size, plain);
            free(plain); // the runtime's malloc: ours, internal here
            return;
        }
        free(plain);
    }
    ms__symbol_shorten(dst, size, name ? name : "");
}

static const char *base_name(const char *path)
{
    const char *slash = path ? strrchr(path, '/') : NULL;
    return slash ? slash + 1 : (path ? path : "");
}

#ifdef MEMSCOPE_HAVE_LIBDW
static pthread_mutex_t dw_lock = PTHREAD_MUTEX_INITIALIZER;
static Dwfl *dw;
static char *debuginfo_path;
static const Dwfl_Callbacks dw_callbacks = {
    .find_elf = dwfl_linux_proc_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .debuginfo_path = &debuginfo_path,
};

/* (Re)read this process's modules: libraries loaded since are found. */
static void dw_report(void)
{
    if (!dw)
        dw = dwfl_begin(&dw_callbacks);
    if (!dw)
        return;
    dwfl_report_begin(dw);
    dwfl_linux_proc_report(dw, getpid());
    dwfl_report_end(dw, NULL, NULL);
}

/* Whether to read a module's line tables. The system's libraries keep theirs
 * in separate, compressed debug files (Debian's -dbg packages): inflating
 * glibc's costs about 40 ms at every report, for file names inside glibc. So
 * only the program's own modules, unless MEMSCOPE_SYMBOLS=full. */
static bool want_lines(const char *path)
{
    static int full = -1;
    if (full < 0) {
        const char *v = getenv("MEMSCOPE_SYMBOLS");
        full = v && strcmp(v, "full") == 0;
    }
    if (full || !path)
        return true;
    static const char *const system_dirs[] = {"/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/"};
    for (size_t i = 0; i < sizeof system_dirs / sizeof *system_dirs; i++)
        if (strncmp(path, system_dirs[i], strlen(system_dirs[i])) == 0)
            return false;
    return true;
}

static bool dw_symbolize(uintptr_t pc, ms__symbol *out)
{
    Dwarf_Addr at = (Dwarf_Addr)(pc - 1); // the call instruction, not the one after it
    pthread_mutex_lock(&dw_lock);
    if (!dw)
        dw_report();
    Dwfl_Module *m = dw ? dwfl_addrmodule(dw, at) : NULL;
    if (!m && dw) {
        dw_report();
        m = dwfl_addrmodule(dw, at);
    }
    bool ok = false;
    if (m) {
        Dwarf_Addr start = 0;
        const char *mod = dwfl_module_info(m, NULL, &start, NULL, NULL, NULL, NULL, NULL);
        copy(out->module, sizeof out->module, base_name(mod));
        GElf_Off off = 0;
        GElf_Sym sym;
        const char *fn = dwfl_module_addrinfo(m, at, &off, &sym, NULL, NULL, NULL);
        if (fn) {
            set_function(out->function, sizeof out->function, fn);
            out->offset = (uintptr_t)off + 1;
        } else {
            out->offset = pc - (uintptr_t)start;
        }
        Dwfl_Line *line = want_lines(mod) ? dwfl_module_getsrc(m, at) : NULL;
        int lineno = 0;
        const char *file = line ? dwfl_lineinfo(line, NULL, &lineno, NULL, NULL, NULL) : NULL;
        if (file && lineno > 0) {
            copy(out->file, sizeof out->file, file);
            out->line = (unsigned)lineno;
        }
        ok = true;
    }
    pthread_mutex_unlock(&dw_lock);
    return ok;
}
#endif

/* ------------------------------------------------------ defined symbols */

static pthread_mutex_t defined_lock = PTHREAD_MUTEX_INITIALIZER;
static ms__symbol *defined; /* open addressing by stand-in address (shown: the address) */
static uintptr_t *defined_pc;
static size_t defined_cap, defined_count;

static size_t defined_slot(uintptr_t *keys, size_t cap, uintptr_t pc)
{
    size_t i = (size_t)((pc * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (cap - 1);
    while (keys[i] && keys[i] != pc)
        i = (i + 1) & (cap - 1);
    return i;
}

int ms__symbol_define(uintptr_t pc, const ms__symbol *sym)
{
    pthread_mutex_lock(&defined_lock);
    int rc = 0;
    if ((defined_count + 1) * 2 > defined_cap) {
        size_t ncap = defined_cap ? defined_cap * 2 : 256;
        ms__symbol *nv = ms__calloc(ncap, sizeof *nv);
        uintptr_t *nk = ms__calloc(ncap, sizeof *nk);
        if (!nv || !nk) {
            ms__free(nv);
            ms__free(nk);
            pthread_mutex_unlock(&defined_lock);
            return ms__fail(MS_ENOMEM, "out of memory defining symbols");
        }
        for (size_t i = 0; i < defined_cap; i++) {
            if (!defined_pc[i])
                continue;
            size_t j = defined_slot(nk, ncap, defined_pc[i]);
            nk[j] = defined_pc[i];
            nv[j] = defined[i];
        }
        ms__free(defined);
        ms__free(defined_pc);
        defined = nv;
        defined_pc = nk;
        defined_cap = ncap;
    }
    size_t i = defined_slot(defined_pc, defined_cap, pc);
    if (!defined_pc[i])
        defined_count++;
    defined_pc[i] = pc;
    defined[i] = *sym;
    pthread_mutex_unlock(&defined_lock);
    return rc;
}

/* @return whether pc is a defined symbol (*out filled). */
static bool defined_lookup(uintptr_t pc, ms__symbol *out)
{
    if (!(pc & MS__SYMBOL_DEFINED_BIT) || (pc & MS__SYMBOL_DEFINED_BIT) != MS__SYMBOL_DEFINED_BIT)
        return false;
    pthread_mutex_lock(&defined_lock);
    bool found = false;
    if (defined_cap) {
        size_t i = defined_slot(defined_pc, defined_cap, pc);
        if (defined_pc[i]) {
            *out = defined[i];
            found = true;
        }
    }
    pthread_mutex_unlock(&defined_lock);
    return found;
}

void ms__symbolize_pc(uintptr_t pc, ms__symbol *out)
{
    memset(out, 0, sizeof *out);
    if (defined_lookup(pc, out))
        return;
    ms__internal_enter();
#ifdef MEMSCOPE_HAVE_LIBDW
    if (dw_symbolize(pc, out) && out->function[0]) {
        ms__internal_leave();
        return;
    }
#endif
    Dl_info info;
    if (dladdr((void *)(pc - 1), &info)) {
        if (!out->module[0])
            copy(out->module, sizeof out->module, base_name(info.dli_fname));
        if (info.dli_sname && info.dli_saddr) {
            set_function(out->function, sizeof out->function, info.dli_sname);
            out->offset = pc - (uintptr_t)info.dli_saddr;
        } else if (!out->offset) {
            out->offset = pc - (uintptr_t)info.dli_fbase;
        }
    }
    ms__internal_leave();
}

void ms__symbol_format(const ms__symbol *s, uintptr_t pc, char *buf, size_t size)
{
    if (s->shown)
        pc = s->shown;
    if (s->function[0] && s->file[0])
        snprintf(buf, size, "%s (%s:%u)", s->function, s->file, s->line);
    else if (s->function[0])
        snprintf(buf, size, "%s+0x%zx (%s)", s->function, (size_t)s->offset,
                 s->module[0] ? s->module : "?");
    else if (s->module[0])
        snprintf(buf, size, "0x%zx (%s+0x%zx)", (size_t)pc, s->module, (size_t)s->offset);
    else
        snprintf(buf, size, "0x%zx", (size_t)pc);
}

int ms_symbolize(uintptr_t pc, char *buf, size_t size)
{
    if (!buf || size == 0)
        return ms__fail(MS_EINVAL, "ms_symbolize: no buffer");
    ms__symbol s;
    ms__symbolize_pc(pc, &s);
    ms__symbol_format(&s, pc, buf, size);
    return 0;
}

/* The wrappers ms__symbol_is_allocator names, by their symbols: in the
 * global scope (the definitions calls bind to, a program's own operator new
 * included) and in the C++ runtime the process loaded, if any. Each one's code
 * range is its symbol's size. */
void ms__stack_find_wrappers(void)
{
    ms__internal_enter(); // dlsym and dladdr may allocate
    void *rt = cxx_runtime();
    void *scopes[] = {RTLD_DEFAULT, rt};
    for (size_t s = 0; s < 2; s++) {
        if (s > 0 && !scopes[s]) // RTLD_DEFAULT is a null pointer itself
            continue;
        for (size_t i = 0; i < MS__WRAPPER_NAMES; i++) {
            void *sym = dlsym(scopes[s], ms__wrapper_names[i]);
            Dl_info info;
            void *entry = NULL; // a const ElfW(Sym) *
            const ElfW(Sym) *e = NULL;
            if (sym && dladdr1(sym, &info, &entry, RTLD_DL_SYMENT))
                e = entry;
            if (e && e->st_size > 0 && info.dli_saddr == sym)
                ms__stack_add_wrapper((uintptr_t)sym, (uintptr_t)sym + e->st_size);
        }
    }
    // rt's reference is kept, as the demangler's is: the ranges stay its code.
    ms__internal_leave();
}

bool ms__symbol_is_allocator(const char *f)
{
    if (!f)
        return false;
    // operator new, new[]: demangled, or mangled (_Znwm, _Znam, and their
    // nothrow and aligned forms) when no demangler was there.
    if (strncmp(f, "operator new", 12) == 0 && (f[12] == '(' || strncmp(f + 12, "[](", 3) == 0))
        return true;
    if (strncmp(f, "_Znw", 4) == 0 || strncmp(f, "_Zna", 4) == 0)
        return true;
    static const char *const plain[] = {"strdup", "__strdup", "strndup", "__strndup"};
    for (size_t i = 0; i < sizeof plain / sizeof *plain; i++)
        if (strcmp(f, plain[i]) == 0)
            return true;
    return false;
}
