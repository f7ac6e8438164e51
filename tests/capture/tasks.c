/* tasks — allocates a little, then exits with the number of threads the
 * process has (its entries in /proc/self/task): 1 plus what capture added. */
#include <dirent.h>
#include <stdlib.h>

void *volatile sink;

int main(void)
{
    for (int i = 0; i < 1000; i++) {
        sink = malloc(64);
        free(sink);
    }
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return 100;
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}
