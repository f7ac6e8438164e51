/* shallow — built with frame pointers: main() itself leaks 4 blocks of 24
 * bytes, so the frame-pointer chain from malloc is two frames long (main, then
 * glibc's start code, which keeps none). */
#include <stdlib.h>

void *volatile sink;

int main(void)
{
    for (int i = 0; i < 4; i++)
        sink = malloc(24);
    return 0;
}
