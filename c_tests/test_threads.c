/*
 * test_threads.c - the library under threads: many threads in parallel with
 * every value checked, sockets of exited threads closed, and shutdown while
 * other threads are calling (no crash, only the expected statuses, every
 * socket closed, init again works, also for threads that outlived shutdown).
 * Keys live under ORS:t_threads:.
 */
#define _GNU_SOURCE 1
#include "harness.h"

#define CLUSTER "t_threads"

#define PAR_THREADS 20
#define PAR_ITERS 150
#define SOCK_THREADS 8
#define SOCK_IDS 12
#define LOAD_THREADS 8
#define LOAD_MAX_ITERS 200000
#define LOAD_MIN_ITERS_BEFORE_SHUTDOWN 50
#define CALLS_AFTER_NOT_INIT 20
#define LOAD_VALUE_MAX 32768
#define WAIT_LIMIT_MS 60000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

/* Waits (bounded) until *counter >= want, reading it under `lock`. */
static int wait_counter(const int *counter, int want, long limit_ms)
{
    int64_t end = h_now_ms() + limit_ms;
    for (;;) {
        int v;
        pthread_mutex_lock(&lock);
        v = *counter;
        pthread_mutex_unlock(&lock);
        if (v >= want) return v;
        if (h_now_ms() >= end) return v;
        h_sleep_ms(5);
    }
}

static int read_flag(const int *flag)
{
    int v;
    pthread_mutex_lock(&lock);
    v = *flag;
    pthread_mutex_unlock(&lock);
    return v;
}

static void set_flag(int *flag, int v)
{
    pthread_mutex_lock(&lock);
    *flag = v;
    pthread_mutex_unlock(&lock);
}

/* Records the first thing that went wrong on a thread. */
struct failures {
    int count;
    char first[512];
};

static void fail_at(struct failures *f, const char *what, int32_t st)
{
    const char *le = ors_last_error();
    if (f->count++ == 0)
        snprintf(f->first, sizeof f->first, "%s: %s, last_error=\"%s\"", what, h_code_name(st), le ? le : "(null)");
}

/* ------------------------------------------------------------------ */
/* Many threads in parallel                                            */
/* ------------------------------------------------------------------ */

struct par_arg {
    int t;
    int calls;
    struct failures f;
};

static void *par_run(void *p)
{
    struct par_arg *a = (struct par_arg *)p;
    uint8_t value[2100];
    char id[128], what[256];
    int i;
    for (i = 0; i < PAR_ITERS; i++) {
        size_t len = 1 + (size_t)((a->t * 131 + i * 17) % 2000);
        uint8_t *data = NULL;
        size_t got = 0;
        int32_t st;
        snprintf(id, sizeof id, "%ld-par-%d-%d", (long)getpid(), a->t, i % 4);
        h_fill(value, len, (unsigned)a->t, (unsigned)i);
        snprintf(what, sizeof what, "iteration %d put %s", i, id);
        st = ors_session_put(id, value, len, 120);
        a->calls++;
        if (st != ORS_OK) {
            fail_at(&a->f, what, st);
            continue;
        }
        snprintf(what, sizeof what, "iteration %d get %s", i, id);
        st = ors_session_get(id, &data, &got);
        a->calls++;
        if (st != ORS_OK) {
            fail_at(&a->f, what, st);
        } else if (!data || got != len || memcmp(data, value, len) != 0) {
            snprintf(what, sizeof what, "iteration %d get %s: wrong value (%zu bytes, want %zu)", i, id, got, len);
            fail_at(&a->f, what, st);
        }
        ors_free(data);
        if (i % 3 == 2) {
            snprintf(what, sizeof what, "iteration %d del %s", i, id);
            st = ors_session_del(id);
            a->calls++;
            if (st != ORS_OK) fail_at(&a->f, what, st);
            data = (uint8_t *)value;
            got = 1;
            st = ors_session_get(id, &data, &got);
            a->calls++;
            if (st != ORS_NOT_FOUND || data != NULL || got != 0) {
                snprintf(what, sizeof what, "iteration %d get after del %s", i, id);
                fail_at(&a->f, what, st);
            }
        }
    }
    for (i = 0; i < 4; i++) {
        int32_t st;
        snprintf(id, sizeof id, "%ld-par-%d-%d", (long)getpid(), a->t, i);
        st = ors_session_del(id);
        a->calls++;
        if (st != ORS_OK && st != ORS_NOT_FOUND) fail_at(&a->f, "cleanup del", st);
    }
    return NULL;
}

static void check_parallel(void)
{
    static struct par_arg args[PAR_THREADS];
    pthread_t th[PAR_THREADS];
    int started[PAR_THREADS];
    int i, total = 0;
    int64_t t0 = h_now_ms();

    for (i = 0; i < PAR_THREADS; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].t = i;
        started[i] = pthread_create(&th[i], NULL, par_run, &args[i]) == 0;
    }
    for (i = 0; i < PAR_THREADS; i++)
        if (started[i]) pthread_join(th[i], NULL);
    for (i = 0; i < PAR_THREADS; i++) {
        total += args[i].calls;
        CHECK(started[i] && args[i].f.count == 0 && args[i].calls >= PAR_ITERS * 2,
              "parallel thread %d: %d calls, every status and value as expected%s%s", i, args[i].calls,
              args[i].f.count ? "; first failure: " : "", args[i].f.first);
    }
    h_note("%d threads made %d calls in %" PRId64 " ms", PAR_THREADS, total, h_now_ms() - t0);
}

/* ------------------------------------------------------------------ */
/* Sockets of exited threads are closed                                */
/* ------------------------------------------------------------------ */

static int sock_ready;
static int sock_release;

struct sock_arg {
    int t;
    struct failures f;
};

static void *sock_run(void *p)
{
    struct sock_arg *a = (struct sock_arg *)p;
    char id[128];
    int i;
    /* several ids, so that the thread needs a connection to every master */
    for (i = 0; i < SOCK_IDS; i++) {
        uint8_t v[16], *data = NULL;
        size_t len = 0;
        int32_t st;
        snprintf(id, sizeof id, "%ld-sock-%d-%d", (long)getpid(), a->t, i);
        h_fill(v, sizeof v, (unsigned)a->t, (unsigned)i);
        st = ors_session_put(id, v, sizeof v, 120);
        if (st != ORS_OK) fail_at(&a->f, "put", st);
        st = ors_session_get(id, &data, &len);
        if (st != ORS_OK || len != sizeof v || !data || memcmp(data, v, len) != 0) fail_at(&a->f, "get", st);
        ors_free(data);
    }
    pthread_mutex_lock(&lock);
    sock_ready++;
    pthread_mutex_unlock(&lock);
    {
        /* stay alive, holding the connections, until main has counted */
        int64_t end = h_now_ms() + WAIT_LIMIT_MS;
        while (!read_flag(&sock_release) && h_now_ms() < end) h_sleep_ms(5);
    }
    for (i = 0; i < SOCK_IDS; i++) {
        int32_t st;
        snprintf(id, sizeof id, "%ld-sock-%d-%d", (long)getpid(), a->t, i);
        st = ors_session_del(id);
        if (st != ORS_OK) fail_at(&a->f, "del", st);
    }
    return NULL;
}

static void check_sockets_of_exited_threads(void)
{
    static struct sock_arg args[SOCK_THREADS];
    pthread_t th[SOCK_THREADS];
    int started[SOCK_THREADS];
    int i, base, alive, after, ready;

    /* main's own connection set, complete: it touches every master */
    for (i = 0; i < 30; i++) {
        char id[64];
        uint8_t *data = NULL;
        size_t len;
        snprintf(id, sizeof id, "%ld-main-%d", (long)getpid(), i);
        ors_session_put(id, (const uint8_t *)"m", 1, 60);
        ors_session_get(id, &data, &len);
        ors_free(data);
        ors_session_del(id);
    }
    base = h_count_sockets();

    for (i = 0; i < SOCK_THREADS; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].t = i;
        started[i] = pthread_create(&th[i], NULL, sock_run, &args[i]) == 0;
    }
    ready = wait_counter(&sock_ready, SOCK_THREADS, WAIT_LIMIT_MS);
    alive = h_count_sockets();
    set_flag(&sock_release, 1);
    for (i = 0; i < SOCK_THREADS; i++)
        if (started[i]) pthread_join(th[i], NULL);
    after = h_wait_sockets_at_most(base, 3000);

    h_note("sockets: %d with only main connected, %d with %d threads alive, %d after they were joined", base, alive,
           ready, after);
    CHECK(ready == SOCK_THREADS, "all %d socket threads made their calls (%d)", SOCK_THREADS, ready);
    for (i = 0; i < SOCK_THREADS; i++)
        CHECK(args[i].f.count == 0, "socket thread %d: every call as expected%s%s", i,
              args[i].f.count ? "; first failure: " : "", args[i].f.first);
    CHECK(alive >= base + SOCK_THREADS, "each live thread holds its own connections (%d sockets >= %d + %d)", alive,
          base, SOCK_THREADS);
    CHECK(after <= base, "the sockets of exited threads are closed (%d sockets after join <= %d before)", after, base);

}

/* ------------------------------------------------------------------ */
/* Shutdown while other threads are calling                            */
/* ------------------------------------------------------------------ */

static int load_progress[LOAD_THREADS]; /* iterations done, under lock */
static int load_stopped;                /* threads that saw NOT_INITIALIZED and made their extra calls */
static int load_phase2;                 /* set by main after the re-init */

#define CODE_SLOTS 256
struct load_arg {
    int t;
    int hist[CODE_SLOTS]; /* index: status + 128 */
    int odd_codes;        /* statuses outside [-128, 127] */
    int saw_not_init;
    int not_init_then_other; /* a status other than NOT_INITIALIZED after the first one */
    int not_init_outputs;    /* get -> NOT_INITIALIZED without clearing *data and *len */
    int iterations;
    struct failures wrong;   /* wrong value, NOT_FOUND right after an OK put, ... */
    int32_t phase2[3];
};

static void record(struct load_arg *a, int32_t st)
{
    if (st >= -128 && st < 128)
        a->hist[st + 128]++;
    else
        a->odd_codes++;
    if (a->saw_not_init && st != ORS_ERR_NOT_INITIALIZED) a->not_init_then_other++;
    if (st == ORS_ERR_NOT_INITIALIZED) a->saw_not_init = 1;
}

static void *load_run(void *p)
{
    struct load_arg *a = (struct load_arg *)p;
    /* values up to 32 KiB, so that calls are in flight when shutdown runs */
    uint8_t *value = (uint8_t *)malloc(LOAD_VALUE_MAX);
    char id[128];
    int i, extra = 0;
    int64_t end = h_now_ms() + WAIT_LIMIT_MS;

    if (!value) {
        fail_at(&a->wrong, "malloc", 0);
        return NULL;
    }
    for (i = 0; i < LOAD_MAX_ITERS && extra < CALLS_AFTER_NOT_INIT && h_now_ms() < end; i++) {
        size_t len = 1 + (size_t)((a->t * 977 + i * 131) % (LOAD_VALUE_MAX - 1)), got = 7;
        uint8_t *data = (uint8_t *)value;
        int32_t put, st;
        snprintf(id, sizeof id, "%ld-load-%d-%d", (long)getpid(), a->t, i % 3);
        h_fill(value, len, (unsigned)a->t + 1000u, (unsigned)i);
        if (a->saw_not_init) extra++;
        put = ors_session_put(id, value, len, 120);
        record(a, put);
        st = ors_session_get(id, &data, &got);
        record(a, st);
        if (st == ORS_OK) {
            if (put == ORS_OK && (!data || got != len || memcmp(data, value, len) != 0))
                fail_at(&a->wrong, "get returned another value than the put before it", st);
            ors_free(data);
        } else {
            if (data != NULL || got != 0) {
                if (st == ORS_ERR_NOT_INITIALIZED) a->not_init_outputs++;
                fail_at(&a->wrong, "get failed without clearing *data and *len", st);
            }
            if (put == ORS_OK && st == ORS_NOT_FOUND) fail_at(&a->wrong, "get -> NOT_FOUND right after an OK put", st);
        }
        if (i % 4 == 3) {
            st = ors_session_del(id);
            record(a, st);
            if (put == ORS_OK && st == ORS_NOT_FOUND) fail_at(&a->wrong, "del -> NOT_FOUND right after an OK put", st);
        }
        pthread_mutex_lock(&lock);
        load_progress[a->t] = i + 1;
        pthread_mutex_unlock(&lock);
    }
    a->iterations = i;
    pthread_mutex_lock(&lock);
    load_stopped++;
    pthread_mutex_unlock(&lock);

    /* stay alive until main has re-initialized the library */
    end = h_now_ms() + WAIT_LIMIT_MS;
    while (!read_flag(&load_phase2) && h_now_ms() < end) h_sleep_ms(5);

    /* this thread's connections were closed by shutdown: after the re-init,
     * it must get working ones */
    {
        uint8_t *data = NULL;
        size_t len = 0;
        snprintf(id, sizeof id, "%ld-load-%d-after", (long)getpid(), a->t);
        a->phase2[0] = ors_session_put(id, (const uint8_t *)"after", 5, 60);
        a->phase2[1] = ors_session_get(id, &data, &len);
        if (a->phase2[1] == ORS_OK && (len != 5 || !data || memcmp(data, "after", 5) != 0))
            a->phase2[1] = 1000; /* wrong value */
        ors_free(data);
        a->phase2[2] = ors_session_del(id);
        for (i = 0; i < 3; i++) {
            snprintf(id, sizeof id, "%ld-load-%d-%d", (long)getpid(), a->t, i);
            ors_session_del(id);
        }
    }
    free(value);
    return NULL;
}

static void check_shutdown_under_load(int baseline0)
{
    static struct load_arg args[LOAD_THREADS];
    pthread_t th[LOAD_THREADS];
    int started[LOAD_THREADS];
    int i, c, progressed, stopped, after_shutdown, after_stopped, after_join;
    int unexpected = 0, non_contract = 0, not_init_then_other = 0, not_init_outputs = 0;
    int64_t t0, shutdown_ms;
    int32_t st;
    char histo[2048];
    size_t hl = 0;
    int total_hist[CODE_SLOTS];

    for (i = 0; i < LOAD_THREADS; i++) {
        memset(&args[i], 0, sizeof args[i]);
        args[i].t = i;
        started[i] = pthread_create(&th[i], NULL, load_run, &args[i]) == 0;
    }
    /* every thread is well into its loop */
    progressed = 0;
    for (i = 0; i < LOAD_THREADS; i++)
        if (wait_counter(&load_progress[i], LOAD_MIN_ITERS_BEFORE_SHUTDOWN, WAIT_LIMIT_MS) >=
            LOAD_MIN_ITERS_BEFORE_SHUTDOWN)
            progressed++;
    h_note("sockets with %d threads under load: %d", LOAD_THREADS, h_count_sockets());

    t0 = h_now_ms();
    st = ors_redis_shutdown();
    shutdown_ms = h_now_ms() - t0;
    CHECK_STATUS(st, ORS_OK, "shutdown while %d threads call put/get/del", LOAD_THREADS);
    h_note("shutdown under load took %" PRId64 " ms", shutdown_ms);
    after_shutdown = h_wait_sockets_at_most(baseline0, 3000);

    stopped = wait_counter(&load_stopped, LOAD_THREADS, WAIT_LIMIT_MS);
    after_stopped = h_count_sockets();

    CHECK(progressed == LOAD_THREADS, "all %d threads were calling when shutdown ran (%d had made %d+ iterations)",
          LOAD_THREADS, progressed, LOAD_MIN_ITERS_BEFORE_SHUTDOWN);
    CHECK(after_shutdown <= baseline0,
          "after shutdown, with the threads still alive, every socket is closed (%d sockets, %d before init)",
          after_shutdown, baseline0);
    CHECK(stopped == LOAD_THREADS, "every thread saw NOT_INITIALIZED after shutdown (%d of %d)", stopped,
          LOAD_THREADS);
    CHECK(after_stopped <= baseline0,
          "calls after shutdown open no socket (%d sockets with the threads alive, %d before init)", after_stopped,
          baseline0);

    memset(total_hist, 0, sizeof total_hist);
    for (i = 0; i < LOAD_THREADS; i++) {
        for (c = 0; c < CODE_SLOTS; c++) {
            int32_t code = (int32_t)(c - 128);
            total_hist[c] += args[i].hist[c];
            if (!args[i].hist[c]) continue;
            if (!h_is_contract_code(code) || code == ORS_ERR_INTERNAL) non_contract += args[i].hist[c];
            if (code != ORS_OK && code != ORS_NOT_FOUND && code != ORS_ERR_NOT_INITIALIZED)
                unexpected += args[i].hist[c];
        }
        non_contract += args[i].odd_codes;
        unexpected += args[i].odd_codes;
        not_init_then_other += args[i].not_init_then_other;
        not_init_outputs += args[i].not_init_outputs;
    }
    for (c = 0; c < CODE_SLOTS && hl < sizeof histo - 64; c++)
        if (total_hist[c])
            hl += (size_t)snprintf(histo + hl, sizeof histo - hl, " %s=%d", h_code_name((int32_t)(c - 128)),
                                   total_hist[c]);
    histo[hl] = '\0';
    h_note("statuses seen by the threads under load:%s", histo);
    CHECK(non_contract == 0, "no status outside the contract and no ORS_ERR_INTERNAL under shutdown (%d)",
          non_contract);
    CHECK(unexpected == 0,
          "every status under shutdown is OK, NOT_FOUND or NOT_INITIALIZED: shutdown waits for calls in flight (%d "
          "others)",
          unexpected);
    CHECK(not_init_then_other == 0, "once a thread saw NOT_INITIALIZED, every later call said so too (%d others)",
          not_init_then_other);
    CHECK(not_init_outputs == 0, "get -> NOT_INITIALIZED clears *data and *len (%d times not)", not_init_outputs);
    for (i = 0; i < LOAD_THREADS; i++)
        CHECK(args[i].wrong.count == 0, "load thread %d (%d iterations): values and statuses consistent%s%s", i,
              args[i].iterations, args[i].wrong.count ? "; first failure: " : "", args[i].wrong.first);

    /* init again, with the old threads still alive */
    CHECK_STATUS(ors_redis_init(config_for(CLUSTER, NULL)), ORS_OK, "init again after shutdown under load");
    {
        uint8_t *data = NULL;
        size_t len = 0;
        const char *id = h_id("main-after-reinit");
        CHECK_STATUS(ors_session_put(id, (const uint8_t *)"back", 4, 60), ORS_OK, "main: put after re-init");
        st = CHECK_STATUS(ors_session_get(id, &data, &len), ORS_OK, "main: get after re-init");
        CHECK(st == ORS_OK && len == 4 && data && memcmp(data, "back", 4) == 0, "main: value after re-init");
        ors_free(data);
        CHECK_STATUS(ors_session_del(id), ORS_OK, "main: del after re-init");
    }
    set_flag(&load_phase2, 1);
    for (i = 0; i < LOAD_THREADS; i++)
        if (started[i]) pthread_join(th[i], NULL);
    for (i = 0; i < LOAD_THREADS; i++)
        CHECK(args[i].phase2[0] == ORS_OK && args[i].phase2[1] == ORS_OK && args[i].phase2[2] == ORS_OK,
              "load thread %d, alive across shutdown and init: put/get/del after re-init -> %s/%s/%s", i,
              h_code_name(args[i].phase2[0]), args[i].phase2[1] == 1000 ? "wrong value" : h_code_name(args[i].phase2[1]),
              h_code_name(args[i].phase2[2]));

    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "final shutdown");
    after_join = h_wait_sockets_at_most(baseline0, 3000);
    CHECK(after_join <= baseline0, "after the final shutdown, sockets are back to the count before init (%d, %d)",
          after_join, baseline0);
}

/* ------------------------------------------------------------------ */
/* Shutdown racing threads' first calls                                */
/* ------------------------------------------------------------------ */

#define RACE_THREADS 8
#define RACE_ROUNDS 6

static int race_done;    /* threads that finished calling this round */
static int race_release; /* round number main lets go */

struct race_arg {
    int t;
    int round;
    int unexpected; /* statuses other than OK, NOT_FOUND, NOT_INITIALIZED */
    int32_t first_unexpected;
    int saw_not_init;
};

static void *race_run(void *p)
{
    struct race_arg *a = (struct race_arg *)p;
    char id[128];
    int i, extra = 0;
    int64_t end = h_now_ms() + WAIT_LIMIT_MS;
    snprintf(id, sizeof id, "%ld-race-%d", (long)getpid(), a->t);
    /* the first call of this thread races with shutdown */
    for (i = 0; i < 5000 && extra < 5 && h_now_ms() < end; i++) {
        uint8_t *data = NULL;
        size_t len = 0;
        int32_t st[2];
        int k;
        st[0] = ors_session_put(id, (const uint8_t *)"race", 4, 30);
        st[1] = ors_session_get(id, &data, &len);
        ors_free(data);
        for (k = 0; k < 2; k++) {
            if (st[k] == ORS_ERR_NOT_INITIALIZED) a->saw_not_init = 1;
            if (st[k] != ORS_OK && st[k] != ORS_NOT_FOUND && st[k] != ORS_ERR_NOT_INITIALIZED) {
                if (!a->unexpected++) a->first_unexpected = st[k];
            }
        }
        if (a->saw_not_init) extra++;
    }
    pthread_mutex_lock(&lock);
    race_done++;
    pthread_mutex_unlock(&lock);
    while (read_flag(&race_release) < a->round && h_now_ms() < end) h_sleep_ms(2);
    return NULL;
}

static void check_shutdown_races(int baseline0)
{
    static struct race_arg args[RACE_THREADS];
    pthread_t th[RACE_THREADS];
    int started[RACE_THREADS];
    int round, i, worst_sockets = 0, shutdown_not_ok = 0, init_not_ok = 0, unexpected = 0, not_done = 0;
    int32_t first_unexpected = ORS_OK;

    for (round = 1; round <= RACE_ROUNDS; round++) {
        int32_t st;
        int socks, done;
        if (ors_redis_init(config_for(CLUSTER, NULL)) != ORS_OK) {
            init_not_ok++;
            continue;
        }
        set_flag(&race_done, 0);
        for (i = 0; i < RACE_THREADS; i++) {
            memset(&args[i], 0, sizeof args[i]);
            args[i].t = i;
            args[i].round = round;
            started[i] = pthread_create(&th[i], NULL, race_run, &args[i]) == 0;
        }
        /* shut down right away, or a moment later: first calls in progress */
        if (round % 3 == 1) h_sleep_ms(1);
        if (round % 3 == 2) h_sleep_ms(5);
        st = ors_redis_shutdown();
        if (st != ORS_OK) shutdown_not_ok++;
        done = wait_counter(&race_done, RACE_THREADS, WAIT_LIMIT_MS);
        if (done < RACE_THREADS) not_done++;
        /* the threads are alive and have returned from every call */
        socks = h_wait_sockets_at_most(baseline0, 3000);
        if (socks - baseline0 > worst_sockets) worst_sockets = socks - baseline0;
        set_flag(&race_release, round);
        for (i = 0; i < RACE_THREADS; i++) {
            if (started[i]) pthread_join(th[i], NULL);
            if (args[i].unexpected && first_unexpected == ORS_OK) first_unexpected = args[i].first_unexpected;
            unexpected += args[i].unexpected;
        }
    }
    /* cleanup */
    if (ors_redis_init(config_for(CLUSTER, NULL)) == ORS_OK) {
        for (i = 0; i < RACE_THREADS; i++) {
            char id[128];
            snprintf(id, sizeof id, "%ld-race-%d", (long)getpid(), i);
            ors_session_del(id);
        }
        ors_redis_shutdown();
    }
    CHECK(init_not_ok == 0 && shutdown_not_ok == 0, "%d rounds of init, %d threads, immediate shutdown: init and "
                                                    "shutdown -> OK every time (%d inits, %d shutdowns failed)",
          RACE_ROUNDS, RACE_THREADS, init_not_ok, shutdown_not_ok);
    CHECK(not_done == 0, "every thread saw NOT_INITIALIZED after the shutdown, in every round (%d rounds not)",
          not_done);
    CHECK(unexpected == 0, "threads racing shutdown only saw OK, NOT_FOUND or NOT_INITIALIZED (%d others, first %s)",
          unexpected, h_code_name(first_unexpected));
    CHECK(worst_sockets <= 0,
          "a shutdown racing threads' first calls leaves no socket open, threads alive (worst: %d above %d)",
          worst_sockets, baseline0);
}

int main(void)
{
    int baseline0, n;
    char pattern[256];

    h_begin("test_threads");
    baseline0 = h_count_sockets();
    h_note("sockets before init: %d", baseline0);
    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, NULL)), ORS_OK, "init") != ORS_OK) {
        h_note("init failed, cannot run the rest: is the cluster up on %s?", h_nodes());
        return h_done();
    }
    check_parallel();
    check_sockets_of_exited_threads();
    check_shutdown_under_load(baseline0);
    check_shutdown_races(baseline0);

    CHECK_STATUS(ors_session_put(h_id("x"), (const uint8_t *)"x", 1, 1), ORS_ERR_NOT_INITIALIZED,
                 "put after the final shutdown");
    snprintf(pattern, sizeof pattern, "ORS:%s:{%ld-*", CLUSTER, (long)getpid());
    n = h_count_keys(pattern);
    CHECK(n == 0, "no key of this run left under %s (found %d)", pattern, n);
    h_check_all_keys_have_ttl(CLUSTER);
    return h_done();
}
