/*
 * init_time.c - times one ors_redis_init(config) and prints
 * "status=<name> ms=<elapsed> error=<ors_last_error()>" (for
 * init-blackholed.sh, which builds it).
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <time.h>

#include "ors_redis.h"

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    long long t0, took;
    int32_t st;
    if (argc != 2) {
        fprintf(stderr, "usage: init_time CONFIG\n");
        return 2;
    }
    t0 = now_ms();
    st = ors_redis_init(argv[1]);
    took = now_ms() - t0;
    printf("status=%s ms=%lld error=%s\n", ors_status_name(st), took, st < 0 ? ors_last_error() : "");
    if (st == ORS_OK) ors_redis_shutdown();
    return 0;
}
