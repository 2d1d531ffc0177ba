/*
 * acl_reconfigure.c - ors_redis_reconfigure on the ACL cluster (ctest
 * acl_reconfigure, label acl): a password rotated under load with no failed
 * call. Threads put, get and del in a loop while the main thread rotates
 * the password of an ACL user of its own (ors-rotating, the rule of acl.conf's
 * ors user) as an operator would: ACL SETUSER ... >new on every node,
 * ors_redis_reconfigure with the new password, ACL SETUSER ... <old, then
 * CLIENT KILL USER to force every connection to log in anew. Also: a new
 * password missing on one node is refused (ORS_ERR_AUTH) before any
 * connection uses it; cluster-name cannot change (ORS_ERR_CONFIG naming it,
 * nothing changed); a bad key or value changes nothing; log-level takes
 * effect at once; NULL, before init and an unchanged config.
 * Keys live under ORS:t_reconf:.
 */
#define _GNU_SOURCE 1
#include "harness.h"

#define CLUSTER "t_reconf"
#define USER "ors-rotating"
/* acl.conf's ors user: exactly the rule the README documents. */
#define RULE                                                                                                   \
    "resetchannels '~ORS:*' -@all +get +set +unlink +del +wait +asking +scan +exists +info '+cluster|slots' " \
    "'+cluster|nodes' '+cluster|getkeysinslot'"
#define THREADS 4
#define ROUNDS 4
#define MAX_LOOPS 200000 /* per thread: put + get + del each */
#define MAX_SECONDS 60

static int node_ports[16];
static int node_count;

/* Every node of the cluster (masters and replicas), from CLUSTER NODES. */
static int all_nodes(int *ports, int max)
{
    static char out[65536];
    char *line, *save = NULL;
    int n = 0;
    h_cli_capture(out, sizeof out, "-p %d CLUSTER NODES", h_port());
    for (line = strtok_r(out, "\n", &save); line && n < max; line = strtok_r(NULL, "\n", &save)) {
        char *colon, *sp = strchr(line, ' ');
        if (!sp) continue;
        colon = strchr(sp + 1, ':');
        if (!colon) continue;
        ports[n++] = atoi(colon + 1);
    }
    return n;
}

/* Runs an ACL or CLIENT command on the first `nodes` nodes; how many said OK (or a number). */
static int on_nodes(int nodes, const char *command)
{
    int i, ok = 0;
    for (i = 0; i < nodes; i++) {
        const char *r = redis_cli("-p %d %s", node_ports[i], command);
        if (strcmp(r, "OK") == 0 || (*r >= '0' && *r <= '9')) ok++;
    }
    return ok;
}

static int set_user(int nodes, const char *change)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ACL SETUSER " USER " %s", change);
    return on_nodes(nodes, cmd);
}

/* The config as username=ors-rotating password=<password>, with the seeds
 * `nodes` (NULL: ORS_TEST_NODES). */
static char cfg[4096];
static const char *config_with(const char *nodes, const char *password, const char *extra)
{
    snprintf(cfg, sizeof cfg, "redis-nodes=%s cluster-name=" CLUSTER " username=" USER " password=%s %s",
             nodes ? nodes : h_nodes(), password, extra ? extra : "");
    return cfg;
}
static const char *config(const char *password, const char *extra)
{
    return config_with(NULL, password, extra);
}

/* Log lines by level, and lines that show a password. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int lines_at[6], leaks;
static void log_cb(int32_t level, const char *message, void *user_data)
{
    (void)user_data;
    pthread_mutex_lock(&log_lock);
    if (level >= 1 && level <= 5) lines_at[level]++;
    if (message && strstr(message, "rot-pw-")) leaks++;
    pthread_mutex_unlock(&log_lock);
}
static int lines(int level)
{
    int n;
    pthread_mutex_lock(&log_lock);
    n = lines_at[level];
    pthread_mutex_unlock(&log_lock);
    return n;
}

/* The load. */
static volatile int stop;
static pthread_mutex_t load_lock = PTHREAD_MUTEX_INITIALIZER;
static long calls, failed, del_not_found;
static char first_failure[512];

static void *load(void *arg)
{
    long n = 0, bad = 0, gone = 0, i;
    int64_t until = h_now_ms() + MAX_SECONDS * 1000;
    char id[96];
    uint8_t value[256];
    snprintf(id, sizeof id, "%ld-load-%ld", (long)getpid(), (long)(intptr_t)arg);
    for (i = 0; i < MAX_LOOPS && !stop && h_now_ms() < until; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        int32_t st[3];
        int k;
        h_fill(value, sizeof value, (unsigned)i, (unsigned)(intptr_t)arg);
        st[0] = ors_session_put(id, value, sizeof value, 60);
        st[1] = ors_session_get(id, &data, &len);
        if (st[1] == ORS_OK && (len != sizeof value || memcmp(data, value, len) != 0)) st[1] = -100;
        ors_free(data);
        st[2] = ors_session_del(id);
        /* A del retried after its connection was killed may find the session gone already. */
        if (st[2] == ORS_NOT_FOUND) gone++;
        n += 3;
        for (k = 0; k < 3; k++) {
            if (st[k] < 0) {
                bad++;
                pthread_mutex_lock(&load_lock);
                if (!first_failure[0])
                    snprintf(first_failure, sizeof first_failure, "%s: %s (%s)", k == 0 ? "put" : k == 1 ? "get" : "del",
                             h_code_name(st[k]), st[k] == -100 ? "wrong value" : ors_last_error());
                pthread_mutex_unlock(&load_lock);
            }
        }
    }
    pthread_mutex_lock(&load_lock);
    calls += n;
    failed += bad;
    del_not_found += gone;
    pthread_mutex_unlock(&load_lock);
    return NULL;
}

int main(void)
{
    pthread_t threads[THREADS];
    char password[64], old_password[64], cmd[256];
    double took_ms[ROUNDS], took_sum = 0, took_max = 0;
    int round, i, st, before;

    h_begin("acl_reconfigure");
    node_count = all_nodes(node_ports, 16);
    CHECK(node_count >= 3, "the ACL cluster's nodes are listed (%d)", node_count);
    CHECK(set_user(node_count, "reset on '>rot-pw-0' " RULE) == node_count, "user " USER " made on every node");

    CHECK_STATUS(ors_redis_reconfigure(config("rot-pw-0", NULL)), ORS_ERR_NOT_INITIALIZED, "reconfigure before init");
    CHECK_STATUS(ors_redis_set_logger(log_cb, NULL), ORS_OK, "a logger that counts lines");
    st = CHECK_STATUS(ors_redis_init(config("rot-pw-0", "log-level=warn")), ORS_OK, "init as " USER);
    if (st != ORS_OK) {
        set_user(node_count, "off");
        return h_done();
    }
    CHECK_STATUS(ors_redis_reconfigure(NULL), ORS_ERR_INVALID_ARGUMENT, "reconfigure(NULL)");
    CHECK_STATUS(ors_redis_reconfigure(config("rot-pw-0", "log-level=warn")), ORS_OK, "the config in use: a no-op");

    /* log-level takes effect at once: the reconfigure's own info line is seen at info, not at warn. */
    before = lines(3);
    CHECK_STATUS(ors_redis_reconfigure(config("rot-pw-0", "log-level=info")), ORS_OK, "log-level=info");
    CHECK(lines(3) > before, "an info line arrives at log-level=info (%d)", lines(3) - before);
    CHECK_STATUS(ors_redis_reconfigure(config("rot-pw-0", "log-level=warn op-timeout=6000")), ORS_OK,
                 "log-level=warn and op-timeout");
    before = lines(3);
    CHECK_STATUS(ors_redis_reconfigure(config("rot-pw-0", "log-level=warn op-timeout=5000")), ORS_OK, "op-timeout back");
    CHECK(lines(3) == before, "no info line at log-level=warn (%d)", lines(3) - before);

    /* What cannot change, and mistakes: refused, nothing changed (log-level stays warn). */
    CHECK_STATUS(ors_redis_reconfigure("redis-nodes=127.0.0.1:1 cluster-name=other log-level=trace password=x"),
                 ORS_ERR_CONFIG, "cluster-name cannot change");
    CHECK_ERROR_MENTIONS("'cluster-name'", "the message names cluster-name");
    CHECK_STATUS(ors_redis_reconfigure(config("rot-pw-0", "log-level=trace bogus-key=1")), ORS_ERR_CONFIG,
                 "an unknown key");
    CHECK_ERROR_MENTIONS("bogus-key", "the message names the key");
    CHECK_STATUS(ors_redis_reconfigure(config("rot-pw-0", "log-level=trace op-timeout=abc")), ORS_ERR_CONFIG,
                 "a bad value");
    CHECK_ERROR_MENTIONS("op-timeout", "the message names the key");
    CHECK_STATUS(ors_redis_reconfigure(config("rot-pw-0", "log-level=trace tls-enabled=true")), ORS_ERR_CONFIG,
                 "tls-enabled cannot change");
    CHECK_ERROR_MENTIONS("'tls-enabled'", "the message names tls-enabled");
    before = lines(4) + lines(5);
    {
        const char *id = h_id("after-refusals");
        CHECK_STATUS(ors_session_put(id, (const uint8_t *)"v", 1, 60), ORS_OK, "a put after the refusals");
        CHECK(redis_cli_key_int("EXISTS", h_key(CLUSTER, id)) == 1, "stored under the old cluster name");
        CHECK_STATUS(ors_session_del(id), ORS_OK, "del");
    }
    CHECK(lines(4) + lines(5) == before, "no debug or trace line: log-level is still warn (%d)",
          lines(4) + lines(5) - before);

    /* The load. */
    for (i = 0; i < THREADS; i++) pthread_create(&threads[i], NULL, load, (void *)(intptr_t)i);
    h_sleep_ms(300);

    /* A password not yet on the server, then on only one node: refused before any connection uses it. */
    CHECK_STATUS(ors_redis_reconfigure(config("rot-pw-missing", NULL)), ORS_ERR_AUTH, "a password no node has");
    CHECK_ERROR_MENTIONS("WRONGPASS", "the message says WRONGPASS");
    CHECK_ERROR_MENTIONS("nothing changed", "the message says nothing changed");
    CHECK(set_user(1, "'>rot-pw-partial'") == 1, "a password added on one node only");
    CHECK_STATUS(ors_redis_reconfigure(config("rot-pw-partial", NULL)), ORS_ERR_AUTH,
                 "a password that some node lacks");
    CHECK(strstr(h_saved_error(), "rot-pw") == NULL, "no password in the message (%s)", h_saved_error());
    set_user(1, "'<rot-pw-partial'");

    /* The rotation, as an operator runs it. */
    snprintf(old_password, sizeof old_password, "rot-pw-0");
    for (round = 0; round < ROUNDS; round++) {
        snprintf(password, sizeof password, "rot-pw-%d", round + 1);
        snprintf(cmd, sizeof cmd, "'>%s'", password);
        CHECK(set_user(node_count, cmd) == node_count, "round %d: new password added on every node", round);
        {
            /* Odd rounds also change the seeds: one that refuses connections (logged, tolerated) and another node. */
            struct timespec a, b;
            char seeds[128];
            snprintf(seeds, sizeof seeds, "127.0.0.1:1;127.0.0.1:%d", node_ports[1]);
            clock_gettime(CLOCK_MONOTONIC, &a);
            CHECK_STATUS(ors_redis_reconfigure(config_with(round % 2 ? seeds : NULL, password, NULL)), ORS_OK,
                         "round %d: reconfigure with the new password%s", round, round % 2 ? " and new seeds" : "");
            clock_gettime(CLOCK_MONOTONIC, &b);
            took_ms[round] = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        }
        h_sleep_ms(200);
        snprintf(cmd, sizeof cmd, "'<%s'", old_password);
        CHECK(set_user(node_count, cmd) == node_count, "round %d: old password removed on every node", round);
        h_sleep_ms(200);
        snprintf(cmd, sizeof cmd, "CLIENT KILL USER " USER);
        on_nodes(node_count, cmd);
        h_sleep_ms(300);
        snprintf(old_password, sizeof old_password, "%s", password);
    }
    stop = 1;
    for (i = 0; i < THREADS; i++) pthread_join(threads[i], NULL);
    CHECK(calls > 0, "the load made calls (%ld)", calls);
    CHECK(failed == 0, "no call failed during %d rotations (%ld of %ld; first: %s)", ROUNDS, failed, calls,
          first_failure[0] ? first_failure : "none");
    CHECK(leaks == 0, "no log line shows a password (%d)", leaks);
    {
        /* The old passwords are really gone: a new connection with one is refused. */
        char out[1024];
        h_cli_capture(out, sizeof out, "-p %d --user " USER " --pass rot-pw-0 --no-auth-warning PING 2>&1",
                      node_ports[0]);
        CHECK(strstr(out, "WRONGPASS") != NULL, "the first password is refused now (%s)", out);
    }
    for (round = 0; round < ROUNDS; round++) {
        took_sum += took_ms[round];
        if (took_ms[round] > took_max) took_max = took_ms[round];
    }
    h_note("FIGURE reconfigure: %d password rotations (ACL SETUSER >new, reconfigure, <old, CLIENT KILL USER) under "
           "%d threads: %ld calls, %ld failed, %ld del NOT_FOUND after a kill; reconfigure (checks %d nodes) "
           "mean %.1f ms, max %.1f ms",
           ROUNDS, THREADS, calls, failed, del_not_found, node_count, took_sum / ROUNDS, took_max);

    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    CHECK_STATUS(ors_redis_reconfigure(config(password, NULL)), ORS_ERR_NOT_INITIALIZED, "reconfigure after shutdown");
    CHECK(on_nodes(node_count, "ACL DELUSER " USER) == node_count, "user " USER " removed");
    ors_redis_set_logger(NULL, NULL);
    return h_done();
}
