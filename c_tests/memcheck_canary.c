/*
 * memcheck_canary.c - a program with one deliberate memory or UB error, so
 * that the test suite can prove that valgrind and the sanitizers, with the
 * options it runs them with, really fail a program that has one (a check
 * that always passes proves nothing).
 *
 *   memcheck_canary overflow|use-after-free|leak|signed-overflow
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* volatile: the compiler must not see through the errors and drop them. */
static volatile int sink;

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    if (strcmp(mode, "overflow") == 0) {
        char *volatile p = (char *)malloc(16);
        if (!p) return 2;
        memset(p, 1, 16);
        sink = p[16]; /* one byte past the block */
        free(p);
    } else if (strcmp(mode, "use-after-free") == 0) {
        char *volatile p = (char *)malloc(16);
        if (!p) return 2;
        memset(p, 1, 16);
        free(p);
        sink = p[3];
    } else if (strcmp(mode, "leak") == 0) {
        char *volatile p = (char *)malloc(4096);
        if (!p) return 2;
        memset(p, 1, 4096);
        p = NULL; /* the only pointer is gone: definitely lost */
    } else if (strcmp(mode, "signed-overflow") == 0) {
        volatile int big = INT_MAX;
        sink = big + argc; /* argc >= 2 here */
    } else {
        fprintf(stderr, "usage: %s overflow|use-after-free|leak|signed-overflow\n", argv[0]);
        return 2;
    }
    puts("memcheck_canary: the error went unnoticed");
    return 0;
}
