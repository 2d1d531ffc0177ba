/*
 * test_callbacks.c - the host's callbacks may call any export.
 *
 * 1. A logger that, on a line logged inside put, get, init or scan, calls
 *    ors_redis_shutdown, ors_session_get, ors_session_put or
 *    ors_redis_set_logger: nothing blocks, every status is the contract's.
 * 2. A scan callback that calls put, get, del, and then shutdown: the scan
 *    ends with ORS_ERR_NOT_INITIALIZED and a message saying why.
 * 3. Threads logging at debug while the main thread swaps loggers: once
 *    ors_redis_set_logger has returned, the previous logger never runs again.
 *
 * A deadlock must fail, not hang: a watchdog (alarm) names the phase and
 * exits. Keys live under ORS:t_callbacks:.
 */
#define _GNU_SOURCE 1
#include "harness.h"

#include <signal.h>

#define CLUSTER "t_callbacks"

static volatile const char *phase = "start";
/* argv[1], if given: run only the phases whose name contains it. */
static const char *only;

static int wanted(const char *what)
{
    return only == NULL || strstr(what, only) != NULL;
}

static void on_alarm(int sig)
{
    static const char head[] = "FAIL - deadlock: no progress within the watchdog's time in phase: ";
    const char *p = (const char *)phase;
    (void)sig;
    if (write(1, head, sizeof head - 1) < 0 || write(1, p, strlen(p)) < 0 || write(1, "\n", 1) < 0) _exit(3);
    _exit(3);
}

/* Arms the watchdog for one phase (longer under valgrind: set by ctest). */
static void watch(const char *what)
{
    phase = what;
    alarm((unsigned)atoi(h_env("ORS_TEST_WATCHDOG_SECONDS", "60")));
}

/* ------------------------------------------------------------------ */
/* 1. A logger that calls the library                                  */
/* ------------------------------------------------------------------ */

enum call { CALL_NONE, CALL_PUT, CALL_GET, CALL_INIT, CALL_SCAN };
enum action { ACT_SHUTDOWN, ACT_GET, ACT_PUT, ACT_SET_LOGGER };
static const char *call_names[] = {"none", "put", "get", "init", "scan"};
static const char *action_names[] = {"ors_redis_shutdown", "ors_session_get", "ors_session_put",
                                     "ors_redis_set_logger"};

struct reentry {
    enum call in;       /* the call the main thread is making now */
    enum action action; /* what the logger does, once */
    int fired;
    int32_t status;     /* what that call returned */
    int lines_after;    /* lines this logger got after it replaced itself */
    int replaced;
    int other_lines;
};

static void quiet_logger(int32_t level, const char *message, void *user_data)
{
    struct reentry *r = user_data;
    (void)level;
    (void)message;
    r->other_lines++;
}

static void reentrant_logger(int32_t level, const char *message, void *user_data)
{
    struct reentry *r = user_data;
    uint8_t *data = NULL;
    size_t len = 0;
    (void)level;
    (void)message;
    if (r->replaced) r->lines_after++;
    if (r->in == CALL_NONE || r->fired) return;
    r->fired = 1;
    switch (r->action) {
    case ACT_SHUTDOWN:
        r->status = ors_redis_shutdown();
        break;
    case ACT_GET:
        r->status = ors_session_get(h_id("cb-logger"), &data, &len);
        ors_free(data);
        break;
    case ACT_PUT:
        r->status = ors_session_put(h_id("cb-logger"), (const uint8_t *)"from logger", 11, 60);
        break;
    case ACT_SET_LOGGER:
        r->status = ors_redis_set_logger(quiet_logger, r);
        r->replaced = 1;
        break;
    }
}

/* Statuses a nested call may return. */
static int acceptable(enum action a, int32_t st)
{
    switch (a) {
    case ACT_SHUTDOWN:
        return st == ORS_OK;
    case ACT_GET:
        return st == ORS_OK || st == ORS_NOT_FOUND || st == ORS_ERR_NOT_INITIALIZED;
    case ACT_PUT:
        return st == ORS_OK || st == ORS_ERR_NOT_INITIALIZED;
    case ACT_SET_LOGGER:
        return st == ORS_OK;
    }
    return 0;
}

static int32_t scan_stop(const char *id, void *user_data)
{
    (void)id;
    (void)user_data;
    return 0;
}

static void logger_reentry(enum call in, enum action action)
{
    static char what[160];
    struct reentry r;
    const char *config = config_for(CLUSTER, "log-level=debug");
    uint8_t *data = NULL;
    size_t len = 0;
    int32_t st = ORS_OK;

    memset(&r, 0, sizeof r);
    r.action = action;
    snprintf(what, sizeof what, "logger calls %s on a line logged inside %s", action_names[action], call_names[in]);
    if (!wanted(what)) return;
    watch(what);
    ors_redis_shutdown();
    ors_redis_set_logger(reentrant_logger, &r);
    if (in == CALL_INIT) {
        r.in = CALL_INIT;
        st = ors_redis_init(config);
    } else {
        /* A fresh init: the first call of this thread connects, which logs. */
        if (CHECK_STATUS(ors_redis_init(config), ORS_OK, "init for: %s", what) != ORS_OK) return;
        r.in = in;
        switch (in) {
        case CALL_PUT:
            st = ors_session_put(h_id("cb-put"), (const uint8_t *)"v", 1, 60);
            break;
        case CALL_GET:
            st = ors_session_get(h_id("cb-get"), &data, &len);
            ors_free(data);
            break;
        case CALL_SCAN:
            st = ors_session_scan(h_id("cb-none-"), scan_stop, NULL);
            break;
        default:
            break;
        }
    }
    r.in = CALL_NONE;
    alarm(0);
    CHECK(r.fired, "%s: the logger got a line during the call", what);
    CHECK(acceptable(action, r.status), "%s: the nested call returned %s", what, h_code_name(r.status));
    CHECK(st == ORS_OK || st == ORS_NOT_FOUND, "%s: the outer call returned %s", what, h_code_name(st));
    if (action == ACT_SET_LOGGER) {
        /* More lines, to the new logger only. */
        ors_redis_shutdown();
        ors_redis_init(config);
        ors_session_put(h_id("cb-after"), (const uint8_t *)"v", 1, 60);
        CHECK(r.lines_after == 0 && r.other_lines > 0,
              "%s: the replaced logger got no line after it replaced itself (%d), the new one did (%d)", what,
              r.lines_after, r.other_lines);
    }
    ors_redis_shutdown();
    ors_redis_set_logger(NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* 2. A scan callback that calls the library                           */
/* ------------------------------------------------------------------ */

struct scan_ctx {
    int seen, get_ok, put_ok, del_ok, shutdown_status, shut;
    int shutdown_at; /* call shutdown on this id (1-based), 0: never */
};

static int32_t scan_calls(const char *id, void *user_data)
{
    struct scan_ctx *c = user_data;
    uint8_t *data = NULL;
    size_t len = 0;
    c->seen++;
    if (c->shutdown_at && c->seen == c->shutdown_at) {
        c->shutdown_status = ors_redis_shutdown();
        c->shut = 1;
        return 0;
    }
    if (ors_session_get(id, &data, &len) == ORS_OK && len == 5 && memcmp(data, "value", 5) == 0) c->get_ok++;
    ors_free(data);
    if (ors_session_put(id, (const uint8_t *)"other", 5, 60) == ORS_OK) c->put_ok++;
    if (ors_session_del(id) == ORS_OK) c->del_ok++;
    return 0;
}

static void scan_reentry(void)
{
    enum { N = 20 };
    char prefix[64], id[96];
    struct scan_ctx c;
    int i;

    if (!wanted("scan callback calls")) return;
    watch("scan callback calls put, get, del");
    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, "log-level=debug")), ORS_OK, "init") != ORS_OK) return;
    snprintf(prefix, sizeof prefix, "%ld-scancb-", (long)getpid());
    for (i = 0; i < N; i++) {
        snprintf(id, sizeof id, "%s%d", prefix, i);
        ors_session_put(id, (const uint8_t *)"value", 5, 60);
    }
    memset(&c, 0, sizeof c);
    CHECK_STATUS(ors_session_scan(prefix, scan_calls, &c), ORS_OK, "scan whose callback calls get, put and del");
    CHECK(c.seen == N && c.get_ok == N && c.put_ok == N && c.del_ok == N,
          "each of the %d ids seen once (%d), and get (%d), put (%d), del (%d) from the callback all worked", N,
          c.seen, c.get_ok, c.put_ok, c.del_ok);

    watch("scan callback calls shutdown");
    for (i = 0; i < N; i++) {
        snprintf(id, sizeof id, "%s%d", prefix, i);
        ors_session_put(id, (const uint8_t *)"value", 5, 60);
    }
    memset(&c, 0, sizeof c);
    c.shutdown_at = 3;
    CHECK_STATUS(ors_session_scan(prefix, scan_calls, &c), ORS_ERR_NOT_INITIALIZED,
                 "scan whose callback calls ors_redis_shutdown on the 3rd id ends");
    CHECK_ERROR_MENTIONS("shut down", "and says the library was shut down (\"%s\")", h_saved_error());
    CHECK(c.shut && c.shutdown_status == ORS_OK, "the shutdown from the scan callback returned %s",
          h_code_name(c.shutdown_status));
    CHECK(c.seen == 3, "no id reported after the shutdown (%d ids)", c.seen);
    alarm(0);
    /* clean up */
    if (ors_redis_init(config_for(CLUSTER, NULL)) == ORS_OK) {
        for (i = 0; i < N; i++) {
            snprintf(id, sizeof id, "%s%d", prefix, i);
            ors_session_del(id);
        }
        ors_redis_shutdown();
    }
}

/* ------------------------------------------------------------------ */
/* 3. Swapping loggers while threads log                               */
/* ------------------------------------------------------------------ */

#define N_LOGGERS 400
#define N_WORKERS 4

struct swap_ctx {
    int retired;   /* set right after set_logger returned on its successor */
    long lines;    /* lines received */
    long late;     /* lines received after retired was set */
};

static struct swap_ctx swap_ctx[N_LOGGERS];
static int swap_done;
static long swap_lines_total;

static void swap_logger_a(int32_t level, const char *message, void *user_data)
{
    struct swap_ctx *c = user_data;
    (void)level;
    (void)message;
    __atomic_add_fetch(&c->lines, 1, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&c->retired, __ATOMIC_SEQ_CST)) __atomic_add_fetch(&c->late, 1, __ATOMIC_SEQ_CST);
}

/* A second function, so that "the previous callback" is another function too. */
static void swap_logger_b(int32_t level, const char *message, void *user_data)
{
    swap_logger_a(level, message, user_data);
}

static void *one_call(void *arg)
{
    /* A new thread's first call opens a connection, which logs at debug. */
    ors_session_put((const char *)arg, (const uint8_t *)"x", 1, 30);
    return NULL;
}

static void *swap_worker(void *arg)
{
    int n = 0;
    (void)arg;
    while (!__atomic_load_n(&swap_done, __ATOMIC_SEQ_CST) && n < 20000) {
        pthread_t t;
        if (pthread_create(&t, NULL, one_call, (void *)h_id("swap")) != 0) break;
        pthread_join(t, NULL);
        n++;
    }
    return NULL;
}

static void logger_swaps(void)
{
    pthread_t workers[N_WORKERS];
    int i, started = 0;
    long late = 0, lines = 0;

    if (!wanted("threads logging while loggers are swapped")) return;
    watch("threads logging while loggers are swapped");
    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, "log-level=debug")), ORS_OK, "init (log-level=debug)") !=
        ORS_OK)
        return;
    ors_redis_set_logger(swap_logger_a, &swap_ctx[0]);
    for (i = 0; i < N_WORKERS; i++)
        if (pthread_create(&workers[i], NULL, swap_worker, NULL) == 0) started++;
    for (i = 1; i < N_LOGGERS; i++) {
        ors_redis_set_logger(i % 2 ? swap_logger_b : swap_logger_a, &swap_ctx[i]);
        __atomic_store_n(&swap_ctx[i - 1].retired, 1, __ATOMIC_SEQ_CST);
        h_sleep_ms(2);
    }
    ors_redis_set_logger(NULL, NULL);
    __atomic_store_n(&swap_ctx[N_LOGGERS - 1].retired, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&swap_done, 1, __ATOMIC_SEQ_CST);
    for (i = 0; i < started; i++) pthread_join(workers[i], NULL);
    alarm(0);
    for (i = 0; i < N_LOGGERS; i++) {
        late += swap_ctx[i].late;
        lines += swap_ctx[i].lines;
    }
    swap_lines_total = lines;
    h_note("%d loggers swapped under %d logging threads: %ld lines delivered", N_LOGGERS, started, lines);
    CHECK(lines > 100, "the loggers received lines while being swapped (%ld)", lines);
    CHECK(late == 0, "no logger ran after ors_redis_set_logger replaced it (%ld late lines)", late);
    ors_redis_shutdown();
}

int main(int argc, char **argv)
{
    static const enum call calls[] = {CALL_PUT, CALL_GET, CALL_INIT, CALL_SCAN};
    static const enum action actions[] = {ACT_SHUTDOWN, ACT_GET, ACT_PUT, ACT_SET_LOGGER};
    size_t c, a;

    h_begin("test_callbacks");
    only = argc > 1 ? argv[1] : NULL;
    signal(SIGALRM, on_alarm);
    for (c = 0; c < sizeof calls / sizeof calls[0]; c++)
        for (a = 0; a < sizeof actions / sizeof actions[0]; a++) logger_reentry(calls[c], actions[a]);
    scan_reentry();
    logger_swaps();
    return h_done();
}
