/* cxx_new — allocates through the C++ runtime's own operator new, in its
 * plain, array and nothrow forms, and through libc's strdup, each from a
 * function of its own, and leaks what it allocated: 5 × 48 B from new_some,
 * 4 × 72 B from new_array, 3 × 56 B from new_nothrow, 2 × 6 B from dup_some.
 * Written in C against the runtime's symbols (linked with libstdc++), so the
 * build needs no C++ compiler. With or without call stacks, the report must
 * place each group in its function, not in operator new or strdup: those only
 * allocate for their caller. */
#include <stddef.h>
#include <string.h>

void *cxx_new(size_t n) __asm__("_Znwm");       // operator new(size_t)
void *cxx_new_array(size_t n) __asm__("_Znam"); // operator new[](size_t)
void *cxx_new_nothrow(size_t n, const void *) __asm__("_ZnwmRKSt9nothrow_t");
extern const char cxx_nothrow __asm__("_ZSt7nothrow"); // std::nothrow

void *volatile sink;

__attribute__((noinline)) void new_some(void)
{
    for (volatile int i = 0; i < 5; i++)
        sink = cxx_new(48);
    __asm__ volatile("" ::: "memory"); // not a tail call
}

__attribute__((noinline)) void new_array(void)
{
    for (volatile int i = 0; i < 4; i++)
        sink = cxx_new_array(72);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void new_nothrow(void)
{
    for (volatile int i = 0; i < 3; i++)
        sink = cxx_new_nothrow(56, &cxx_nothrow);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline)) void dup_some(void)
{
    static const char word[] = "hello";
    for (volatile int i = 0; i < 2; i++)
        sink = strdup(word);
    __asm__ volatile("" ::: "memory");
}

int main(void)
{
    new_some();
    new_array();
    new_nothrow();
    dup_some();
    return 0;
}
