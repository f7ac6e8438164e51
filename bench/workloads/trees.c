/* trees — build and free binary trees, recursively (the shape of the
 * benchmarks-game binary-trees): 2^17-node trees, 48 rounds, plus one
 * long-lived tree. Recursion makes stacks of every depth. */
#include <stdio.h>
#include <stdlib.h>

typedef struct node {
    struct node *left, *right;
    long value;
} node;

__attribute__((noinline)) static node *build(int depth)
{
    node *n = malloc(sizeof *n);
    if (!n)
        exit(1);
    n->value = depth;
    n->left = depth > 0 ? build(depth - 1) : NULL;
    n->right = depth > 0 ? build(depth - 1) : NULL;
    return n;
}

__attribute__((noinline)) static long check(const node *n)
{
    return n ? n->value + check(n->left) - check(n->right) : 0;
}

__attribute__((noinline)) static void release(node *n)
{
    if (!n)
        return;
    release(n->left);
    release(n->right);
    free(n);
}

int main(void)
{
    node *keep = build(16);
    long total = 0;
    for (int round = 0; round < 48; round++) {
        node *t = build(16);
        total += check(t);
        release(t);
    }
    total += check(keep);
    release(keep);
    printf("trees %ld\n", total);
    return 0;
}
