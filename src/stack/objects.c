/* objects.c — the loader's objects, read lock-free (see objects.h). The
 * object comes from glibc's _dl_find_object; its dynamic section (l_ld) gives
 * the dynamic symbol and string tables and the GNU hash table, all in pages
 * the loader mapped for as long as the object is loaded. glibc relocates the
 * dynamic section's addresses in place unless the section is read-only
 * (then they are offsets from the object's base): an address below the base
 * is taken as such an offset. */
#include "stack/objects.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>

#if defined(__x86_64__) && defined(DLFO_STRUCT_HAS_EH_DBASE)

bool ms__object_of(uintptr_t pc, uintptr_t *id, uintptr_t *lo, uintptr_t *hi)
{
    struct dl_find_object dlfo;
    if (_dl_find_object((void *)pc, &dlfo) != 0 || !dlfo.dlfo_link_map)
        return false;
    *id = (uintptr_t)dlfo.dlfo_link_map;
    *lo = (uintptr_t)dlfo.dlfo_map_start;
    *hi = (uintptr_t)dlfo.dlfo_map_end;
    return true;
}

static uint32_t gnu_hash(const char *s)
{
    uint32_t h = 5381;
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h;
}

bool ms__object_function(uintptr_t id, const char *name, uintptr_t *lo, uintptr_t *hi)
{
    const struct link_map *map = (const struct link_map *)id;
    if (!map || !map->l_ld)
        return false;
    uintptr_t base = map->l_addr, hash = 0, symtab = 0, strtab = 0, strsz = 0;
    for (const ElfW(Dyn) *d = map->l_ld; d->d_tag != DT_NULL; d++) {
        uintptr_t v = d->d_un.d_ptr;
        if (d->d_tag == DT_STRSZ) {
            strsz = d->d_un.d_val;
            continue;
        }
        if (v < base) // an offset, in a read-only dynamic section
            v += base;
        if (d->d_tag == DT_GNU_HASH)
            hash = v;
        else if (d->d_tag == DT_SYMTAB)
            symtab = v;
        else if (d->d_tag == DT_STRTAB)
            strtab = v;
    }
    if (!hash || !symtab || !strtab)
        return false;
    const uint32_t *gh = (const uint32_t *)hash;
    uint32_t nbuckets = gh[0], symoffset = gh[1], bloom_size = gh[2], shift = gh[3];
    if (nbuckets == 0 || bloom_size == 0 || (bloom_size & (bloom_size - 1)) || shift >= 64)
        return false;
    const uint64_t *bloom = (const uint64_t *)(const void *)&gh[4];
    const uint32_t *buckets = (const uint32_t *)(const void *)&bloom[bloom_size];
    const uint32_t *chain = &buckets[nbuckets];
    uint32_t h = gnu_hash(name);
    uint64_t word = bloom[(h / 64) & (bloom_size - 1)];
    uint64_t mask = (uint64_t)1 << (h % 64) | (uint64_t)1 << ((h >> shift) % 64);
    if ((word & mask) != mask)
        return false;
    uint32_t i = buckets[h % nbuckets];
    if (i < symoffset)
        return false;
    const ElfW(Sym) *syms = (const ElfW(Sym) *)symtab;
    size_t len = strlen(name);
    for (;; i++) {
        uint32_t h2 = chain[i - symoffset];
        const ElfW(Sym) *s = &syms[i];
        if ((h | 1) == (h2 | 1) && s->st_name + len < strsz &&
            memcmp((const char *)strtab + s->st_name, name, len + 1) == 0) {
            if (s->st_shndx == SHN_UNDEF || ELF64_ST_TYPE(s->st_info) != STT_FUNC ||
                s->st_size == 0)
                return false;
            *lo = base + s->st_value;
            *hi = *lo + s->st_size;
            return true;
        }
        if (h2 & 1)
            return false;
    }
}

#else /* no _dl_find_object, or not x86-64 */

bool ms__object_of(uintptr_t pc, uintptr_t *id, uintptr_t *lo, uintptr_t *hi)
{
    (void)pc, (void)id, (void)lo, (void)hi;
    return false;
}

bool ms__object_function(uintptr_t id, const char *name, uintptr_t *lo, uintptr_t *hi)
{
    (void)id, (void)name, (void)lo, (void)hi;
    return false;
}

#endif
