/* TRACK_TYPED checks the spelled type at compile time: built once with the
 * right type (must compile) and once with -DWRONG_TYPE (must not). */
#include <memscope.h>
#include <stdlib.h>

struct node {
    int v;
};
struct other {
    int w;
};

int main(void)
{
    ms_tracker *t = TRACKER();
    struct node *head = malloc(sizeof *head);
#ifdef WRONG_TYPE
    TRACK_TYPED(t, head, struct other *);
#else
    TRACK_TYPED(t, head, struct node *);
#endif
    MS_FREE(t, head);
    ms_tracker_free(t);
    return 0;
}
