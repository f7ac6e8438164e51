/* abort_in_free — leaks 2 blocks of 256 bytes, then frees a pointer twice:
 * glibc detects it inside free() and aborts with its heap lock state unknown. */
#include <stdlib.h>

void *volatile sink;

int main(void)
{
    for (int i = 0; i < 2; i++)
        sink = malloc(256);
    void *volatile p = malloc(32); // volatile: so the compiler lets it happen
    free(p);
    free(p); // glibc: "free(): double free detected in tcache 2" -> SIGABRT
    return 0;
}
