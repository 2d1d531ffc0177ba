/*
 * test_fork.c - a process that used the library forks; the child calls
 * put/get without re-init (API.md: after fork() the child never uses a socket
 * of its parent; its first call starts on fresh connections, the parent's are
 * left untouched).
 *
 * The parent inits, makes calls, and keeps a worker thread making calls, so
 * that at the fork a call may be in flight and that thread's state locked.
 * Then the parent and the child both run bounded put/get rounds of values
 * unique to each process and check every value they read (processes that
 * shared a socket would read each other's replies). The child then
 * shuts down within a bound (the parent's worker does not exist in the child:
 * waiting for its lock would hang). The parent's connections must still work
 * afterwards, with no retry and no new socket. Keys live under ORS:t_fork:.
 *
 * Then the same with a compression dictionary (compression-dictionary, one
 * trained by the operator command, $ORS_CLI): the parent runs the
 * dictionary's keeper thread, which the child does not have; the child reads
 * a value compressed with it and shuts down within the bound (a shutdown
 * that waited for the parent's keeper would hang). Keys under ORS:t_forkd:.
 */
#define _GNU_SOURCE 1
#include "harness.h"

#include <signal.h>
#include <sys/wait.h>

#define CLUSTER "t_fork"
#define ROUNDS 1500
#define IDS 40

static volatile int stop_worker;
static int worker_bad;
static int worker_calls;

/* Puts then gets `rounds` values of this process under `tag`; returns the
 * number of calls that failed or read a value not its own. */
static int rounds_of(const char *tag, int rounds, int64_t until_ms)
{
    int bad = 0, i;
    for (i = 0; i < rounds && h_now_ms() < until_ms; i++) {
        char id[96], v[96];
        uint8_t *data = NULL;
        size_t len = 0;
        int32_t p, g;
        snprintf(id, sizeof id, "%s-%ld-%d", tag, (long)getpid(), i % IDS);
        snprintf(v, sizeof v, "%s-value-%ld-%d", tag, (long)getpid(), i);
        p = ors_session_put(id, (const uint8_t *)v, strlen(v), 120);
        g = ors_session_get(id, &data, &len);
        if (p != ORS_OK || g != ORS_OK || len != strlen(v) || !data || memcmp(data, v, len) != 0) {
            if (bad < 3)
                h_note("%s (pid %ld) round %d: put %s, get %s, read %.*s", tag, (long)getpid(), i, h_code_name(p),
                       h_code_name(g), (int)(len > 60 ? 60 : len), data ? (const char *)data : "");
            bad++;
        }
        ors_free(data);
    }
    return bad;
}

static void *worker(void *arg)
{
    int64_t until = h_now_ms() + 60000;
    (void)arg;
    while (!stop_worker && h_now_ms() < until) {
        worker_bad += rounds_of("fork-w", 20, until);
        worker_calls += 40;
    }
    return NULL;
}

/* The child: rounds of its own values, then a bounded shutdown. Its exit
 * code says what went wrong (0: nothing). */
static int child_main(void)
{
    int64_t t0;
    int bad;
    int32_t st;
    ors_redis_stats stats;

    alarm(60); /* a hang in the child is a failure the parent sees */
    bad = rounds_of("fork-c", ROUNDS, h_now_ms() + 40000);
    h_note("child %ld: %d of %d rounds bad", (long)getpid(), bad, ROUNDS);
    if (ors_redis_get_stats(&stats) == ORS_OK)
        h_note("child: %" PRIu64 " retries, %" PRIu64 " errors", stats.retries, stats.errors);
    t0 = h_now_ms();
    st = ors_redis_shutdown();
    h_note("child: shutdown %s in %lld ms", h_code_name(st), (long long)(h_now_ms() - t0));
    if (bad) return 1;
    if (st != ORS_OK) return 2;
    if (h_now_ms() - t0 > 5000) return 3;
    return 0;
}

#define DICT_CLUSTER "t_forkd"
/* The child of a parent that runs a dictionary's keeper: reads the value
 * compressed with it, then a bounded shutdown. */
static int dict_child_main(const char *expected, size_t expected_len)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int64_t t0;
    int32_t st;
    alarm(30);
    st = ors_session_get("dict-fork", &data, &len);
    if (st != ORS_OK || len != expected_len || memcmp(data, expected, len) != 0) return 1;
    ors_free(data);
    t0 = h_now_ms();
    st = ors_redis_shutdown();
    h_note("child with a dictionary: shutdown %s in %lld ms", h_code_name(st), (long long)(h_now_ms() - t0));
    if (st != ORS_OK) return 2;
    if (h_now_ms() - t0 > 5000) return 3;
    return 0;
}

static void fork_with_a_dictionary(void)
{
    char id[9], extra[256], value[512], key[128];
    size_t len = h_session_like(4242, value, sizeof value);
    int status = 0, trained;
    pid_t pid;

    if (CHECK_STATUS(ors_redis_init(config_for(DICT_CLUSTER, NULL)), ORS_OK, "init") != ORS_OK) return;
    trained = h_train_dictionary(DICT_CLUSTER, id);
    ors_redis_shutdown();
    if (!CHECK(trained, "a dictionary trained and stored by $ORS_CLI (%s)", h_env("ORS_CLI", "unset"))) return;
    snprintf(extra, sizeof extra, "compression=zstd compression-dictionary=%s compression-min-bytes=64", id);
    if (CHECK_STATUS(ors_redis_init(config_for(DICT_CLUSTER, extra)), ORS_OK, "init with dictionary %s", id) != ORS_OK)
        return;
    CHECK_STATUS(ors_session_put("dict-fork", (const uint8_t *)value, len, 600), ORS_OK, "put with the dictionary");
    snprintf(key, sizeof key, "ORS:%s:{dict-fork}", DICT_CLUSTER);
    CHECK(redis_cli_key_int("STRLEN", key) < (long long)len / 2, "stored with the dictionary: %lld of %zu bytes",
          redis_cli_key_int("STRLEN", key), len);
    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        CHECK(0, "fork: %s", strerror(errno));
    } else if (pid == 0) {
        char exit_code[32];
        snprintf(exit_code, sizeof exit_code, "exit %d", dict_child_main(value, len));
        fflush(stdout);
        execl("/bin/sh", "sh", "-c", exit_code, (char *)NULL);
        _exit(127);
    } else {
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (WIFSIGNALED(status))
            CHECK(0, "child with a dictionary: killed by signal %d (%s)", WTERMSIG(status),
                  WTERMSIG(status) == SIGALRM ? "hung: alarm" : "crashed");
        else
            CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "child of a parent running the dictionary's keeper: read the compressed value and shut down "
                  "within 5 s (exit code %d)",
                  WEXITSTATUS(status));
    }
    ors_session_del("dict-fork");
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown with the dictionary");
    snprintf(key, sizeof key, "ORS:%s:dict:%s", DICT_CLUSTER, id);
    redis_cli_key("DEL", key);
    CHECK(h_count_keys("ORS:" DICT_CLUSTER ":*") == 0, "no key left under ORS:%s:", DICT_CLUSTER);
}

int main(void)
{
    pthread_t thread;
    pid_t pid;
    int status = 0, bad, i;
    ors_redis_stats before, after;
    char pattern[256];
    int64_t t0;

    h_begin("test_fork");
    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, "op-timeout=3000")), ORS_OK, "init") != ORS_OK)
        return h_done();
    CHECK(rounds_of("fork-p", 50, h_now_ms() + 20000) == 0, "the parent's 50 rounds before the fork read their own values");
    CHECK(pthread_create(&thread, NULL, worker, NULL) == 0, "worker thread started");
    h_sleep_ms(100);

    fflush(stdout);
    pid = fork();
    if (pid < 0) {
        CHECK(0, "fork: %s", strerror(errno));
        return h_done();
    }
    if (pid == 0) {
        char exit_code[32];
        snprintf(exit_code, sizeof exit_code, "exit %d", child_main());
        fflush(stdout);
        /* The child leaves by exec: its memory still holds what the parent's
         * worker thread (which does not run here) allocated, and a leak
         * checker at the child's exit would call that lost. */
        execl("/bin/sh", "sh", "-c", exit_code, (char *)NULL);
        _exit(127);
    }

    bad = rounds_of("fork-p", ROUNDS, h_now_ms() + 40000);
    CHECK(bad == 0, "parent: %d of %d rounds after the fork read their own values (%d did not)", ROUNDS - bad, ROUNDS,
          bad);
    stop_worker = 1;
    pthread_join(thread, NULL);
    CHECK(worker_bad == 0, "parent's worker thread: every value read was its own (%d of %d calls bad)", worker_bad,
          worker_calls);

    t0 = h_now_ms();
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    h_note("child exited after %lld more ms", (long long)(h_now_ms() - t0));
    if (WIFSIGNALED(status))
        CHECK(0, "child: killed by signal %d (%s)", WTERMSIG(status),
              WTERMSIG(status) == SIGALRM ? "hung: alarm" : "crashed");
    else
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "child: every value it read was its own and its shutdown returned OK within 5 s (exit code %d)",
              WEXITSTATUS(status));

    /* The parent's sockets are as they were: no retry, no new connection. */
    CHECK_STATUS(ors_redis_get_stats(&before), ORS_OK, "stats");
    bad = 0;
    for (i = 0; i < 3; i++)
        bad += rounds_of("fork-p", 100, h_now_ms() + 20000);
    CHECK_STATUS(ors_redis_get_stats(&after), ORS_OK, "stats");
    CHECK(bad == 0, "parent after the child exited: 300 rounds read their own values (%d did not)", bad);
    CHECK(after.retries == before.retries && after.connections_open == before.connections_open,
          "parent after the child exited: no retry (%" PRIu64 " -> %" PRIu64 "), no new socket (%" PRIu64
          " -> %" PRIu64 ")",
          before.retries, after.retries, before.connections_open, after.connections_open);
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");

    /* Clean up both processes' keys (the TTL would, later). */
    if (ors_redis_init(config_for(CLUSTER, NULL)) == ORS_OK) {
        const char *tags[] = {"fork-p", "fork-w", "fork-c"};
        int t;
        for (t = 0; t < 3; t++)
            for (i = 0; i < IDS; i++) {
                char id[96];
                snprintf(id, sizeof id, "%s-%ld-%d", tags[t], (long)(t == 2 ? pid : getpid()), i);
                ors_session_del(id);
            }
        ors_redis_shutdown();
    }
    snprintf(pattern, sizeof pattern, "ORS:%s:{fork-*", CLUSTER);
    CHECK(h_count_keys(pattern) == 0, "no key of this run left under %s", pattern);

    fork_with_a_dictionary();
    return h_done();
}
