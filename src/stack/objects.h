/* objects.h — what the loader has mapped, read without a lock, an allocation
 * or a system call (safe in a malloc hook and a signal handler): the object
 * that holds a code address, and the functions an object defines in its
 * dynamic symbol table. x86-64 ELF with glibc 2.35 or later
 * (_dl_find_object); elsewhere both answer false. Depends on common/. */
#ifndef MS_STACK_OBJECTS_H
#define MS_STACK_OBJECTS_H

#include <stdbool.h>
#include <stdint.h>

/* The loaded object that holds code address pc: *id names it (its link map,
 * the same for every address in it while it stays loaded), [*lo, *hi) its
 * mapping. false when the loader knows none (a JIT's code). */
bool ms__object_of(uintptr_t pc, uintptr_t *id, uintptr_t *lo, uintptr_t *hi);

/* The code [*lo, *hi) of function `name` as object `id` (ms__object_of)
 * defines it in its dynamic symbol table, found by its GNU hash table.
 * false when it defines none (or has no GNU hash table). */
bool ms__object_function(uintptr_t id, const char *name, uintptr_t *lo, uintptr_t *hi);

#endif
