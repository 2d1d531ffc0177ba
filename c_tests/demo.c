/*
 * demo.c - ors-redis from several threads, as ORS uses it: each worker thread
 * puts a few sessions, reads each back (checking the bytes) and deletes it.
 *
 *   ors_demo [threads [sessions-per-thread]]     (defaults 4 and 5)
 *
 * The config string comes from ORS_DEMO_CONFIG, default
 * "redis-nodes=127.0.0.1:7000 cluster-name=demo". Exit code 0 when every
 * call did what it should.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ors_redis.h"

#define MAX_THREADS 256
#define MAX_SESSIONS 10000

struct worker {
    pthread_t thread;
    int index;
    int sessions;
    int puts, gets_verified, dels, errors;
    char first_error[256];
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void failed(struct worker *w, const char *what, const char *id, int32_t st)
{
    w->errors++;
    if (w->first_error[0] == '\0') {
        snprintf(w->first_error, sizeof w->first_error, "%s %s: %s %s", what, id, ors_status_name(st),
                 ors_last_error());
    }
}

static void *work(void *arg)
{
    struct worker *w = arg;
    char id[128], value[256];
    int i;

    for (i = 0; i < w->sessions; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        int32_t st;
        int n;

        snprintf(id, sizeof id, "demo-%ld-t%d-s%d", (long)getpid(), w->index, i);
        n = snprintf(value, sizeof value, "session %d of thread %d: call state, variables, timers", i, w->index);

        st = ors_session_put(id, (const uint8_t *)value, (size_t)n, 300);
        if (st != ORS_OK) {
            failed(w, "put", id, st);
            continue;
        }
        w->puts++;

        st = ors_session_get(id, &data, &len);
        if (st != ORS_OK) {
            failed(w, "get", id, st);
        } else if (len != (size_t)n || memcmp(data, value, len) != 0) {
            w->errors++;
            if (w->first_error[0] == '\0') {
                snprintf(w->first_error, sizeof w->first_error, "get %s: %zu bytes that differ from the %d stored",
                         id, len, n);
            }
        } else {
            w->gets_verified++;
        }
        ors_free(data);

        st = ors_session_del(id);
        if (st != ORS_OK) {
            failed(w, "del", id, st);
        } else {
            w->dels++;
        }
    }
    return NULL;
}

static int arg_int(const char *s, int lo, int hi, const char *what)
{
    char *end = NULL;
    long v = strtol(s, &end, 10);
    if (end == s || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr, "ors_demo: %s must be a number from %d to %d, not '%s'\n", what, lo, hi, s);
        exit(2);
    }
    return (int)v;
}

int main(int argc, char **argv)
{
    static struct worker workers[MAX_THREADS];
    const char *config = getenv("ORS_DEMO_CONFIG");
    int threads = 4, sessions = 5, i, started = 0, errors = 0, done = 0;
    long long t0;
    ors_redis_stats stats;
    int32_t st;

    setvbuf(stdout, NULL, _IOLBF, 0); /* keep our lines in order with the library's log lines */
    if (argc > 3 || (argc > 1 && strcmp(argv[1], "--help") == 0)) {
        fprintf(stderr, "usage: %s [threads (default 4) [sessions-per-thread (default 5)]]\n", argv[0]);
        return 2;
    }
    if (argc > 1) threads = arg_int(argv[1], 1, MAX_THREADS, "threads");
    if (argc > 2) sessions = arg_int(argv[2], 1, MAX_SESSIONS, "sessions-per-thread");
    if (config == NULL || *config == '\0') config = "redis-nodes=127.0.0.1:7000 cluster-name=demo";

    printf("ors_demo: ors-redis %s, %d thread(s) x %d session(s), config: %s\n", ors_redis_version(), threads,
           sessions, config);
    st = ors_redis_init(config);
    if (st != ORS_OK) {
        fprintf(stderr, "ors_demo: ors_redis_init: %s: %s\n", ors_status_name(st), ors_last_error());
        return 1;
    }

    t0 = now_ms();
    for (i = 0; i < threads; i++) {
        workers[i].index = i;
        workers[i].sessions = sessions;
        if (pthread_create(&workers[i].thread, NULL, work, &workers[i]) != 0) {
            fprintf(stderr, "ors_demo: could not start thread %d\n", i);
            errors++;
            break;
        }
        started++;
    }
    for (i = 0; i < started; i++) {
        struct worker *w = &workers[i];
        pthread_join(w->thread, NULL);
        printf("thread %d: put %d, got and verified %d, deleted %d, errors %d%s%s\n", w->index, w->puts,
               w->gets_verified, w->dels, w->errors, w->errors ? " - first: " : "", w->first_error);
        errors += w->errors;
        done += w->dels;
    }

    if (ors_redis_get_stats(&stats) == ORS_OK) {
        printf("stats: puts %llu, gets %llu (hits %llu, misses %llu), dels %llu, errors %llu, retries %llu, "
               "topology refreshes %llu, connections open %llu, threads connected %llu\n",
               (unsigned long long)stats.puts, (unsigned long long)stats.gets, (unsigned long long)stats.hits,
               (unsigned long long)stats.misses, (unsigned long long)stats.dels, (unsigned long long)stats.errors,
               (unsigned long long)stats.retries, (unsigned long long)stats.topology_refreshes,
               (unsigned long long)stats.connections_open, (unsigned long long)stats.threads_connected);
    }
    st = ors_redis_shutdown();
    if (st != ORS_OK) {
        fprintf(stderr, "ors_demo: ors_redis_shutdown: %s: %s\n", ors_status_name(st), ors_last_error());
        errors++;
    }
    printf("ors_demo: %s: %d thread(s), %d of %d session(s) stored, read back and deleted, %d error(s), %lld ms\n",
           errors ? "FAILED" : "ok", started, done, threads * sessions, errors, now_ms() - t0);
    return errors ? 1 : 0;
}
