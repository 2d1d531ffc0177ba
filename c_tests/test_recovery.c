/*
 * test_recovery.c - the contract's "Recovery, logging and figures" section:
 * ors_session_scan (each live session of this cluster name once, prefix taken
 * literally, early stop), ors_redis_set_logger (levels filtered by log-level,
 * user_data passed through, NULL restores stderr) and ors_redis_get_stats
 * (counters since init, threads and connections now).
 * Keys live under ORS:t_recovery:.
 */
#define _GNU_SOURCE 1
#include "harness.h"

#define CLUSTER "t_recovery"

#if !defined(ORS_LOG_ERROR)

/* The header does not declare this part of the contract yet. */
int main(void)
{
    h_begin("test_recovery");
    CHECK(0, "include/ors_redis.h declares ors_session_scan, ors_redis_set_logger, ors_redis_get_stats and "
             "ORS_LOG_ERROR..ORS_LOG_TRACE (ORS_LOG_ERROR is not defined)");
    return h_done();
}

#else

/* ------------------------------------------------------------------ */
/* Logger                                                              */
/* ------------------------------------------------------------------ */

#define LOG_MAX 2000
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_tag;
static struct {
    int count;
    int by_level[8]; /* 0: out of range */
    int wrong_user_data;
    int empty_messages;
    int mentions_node;
    char first[512];
} logged;

static void log_cb(int32_t level, const char *message, void *user_data)
{
    pthread_mutex_lock(&log_lock);
    logged.count++;
    logged.by_level[(level >= 1 && level <= 5) ? level : 0]++;
    if (user_data != &log_tag) logged.wrong_user_data++;
    if (!message || !*message) logged.empty_messages++;
    if (message && strstr(message, "127.0.0.1:")) logged.mentions_node++;
    if (logged.count == 1 && message) snprintf(logged.first, sizeof logged.first, "%s", message);
    pthread_mutex_unlock(&log_lock);
}

static void log_reset(void)
{
    pthread_mutex_lock(&log_lock);
    memset(&logged, 0, sizeof logged);
    pthread_mutex_unlock(&log_lock);
}

static void some_calls(const char *label)
{
    const char *id = h_id(label);
    uint8_t *data = NULL;
    size_t len = 0;
    ors_session_put(id, (const uint8_t *)"l", 1, 30);
    ors_session_get(id, &data, &len);
    ors_free(data);
    ors_session_del(id);
    ors_session_del(id);
}

static void check_logger(void)
{
    int saved_fd, tmp_fd, count_before;
    FILE *tmp;
    long size = -1;

    CHECK(ORS_LOG_ERROR == 1 && ORS_LOG_WARN == 2 && ORS_LOG_INFO == 3 && ORS_LOG_DEBUG == 4 && ORS_LOG_TRACE == 5,
          "ORS_LOG_ERROR..ORS_LOG_TRACE are 1..5");
    CHECK_STATUS(ors_redis_set_logger(log_cb, &log_tag), ORS_OK, "set_logger before init");

    log_reset();
    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, "log-level=info")), ORS_OK, "init with log-level=info") ==
        ORS_OK) {
        some_calls("log-info");
        pthread_mutex_lock(&log_lock);
        h_note("log-level=info: %d lines (error %d, warn %d, info %d, debug %d, trace %d, bad level %d), first: %s",
               logged.count, logged.by_level[1], logged.by_level[2], logged.by_level[3], logged.by_level[4],
               logged.by_level[5], logged.by_level[0], logged.first);
        CHECK(logged.count >= 1, "log-level=info: init logs through the callback (%d lines)", logged.count);
        CHECK(logged.mentions_node >= 1, "log-level=info: init logs the topology it found (%d lines name a node)",
              logged.mentions_node);
        CHECK(logged.by_level[4] == 0 && logged.by_level[5] == 0 && logged.by_level[0] == 0,
              "log-level=info: no debug or trace line, no level outside 1..5");
        CHECK(logged.wrong_user_data == 0, "the callback gets the user_data given to set_logger (%d times not)",
              logged.wrong_user_data);
        CHECK(logged.empty_messages == 0, "no empty or NULL message (%d)", logged.empty_messages);
        pthread_mutex_unlock(&log_lock);
        CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    }

    log_reset();
    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, "log-level=off")), ORS_OK, "init with log-level=off") ==
        ORS_OK) {
        some_calls("log-off");
        CHECK_STATUS(ors_session_put("{bad}", (const uint8_t *)"x", 1, 1), ORS_ERR_INVALID_ARGUMENT,
                     "a refused call with log-level=off");
        CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    }
    pthread_mutex_lock(&log_lock);
    CHECK(logged.count == 0, "log-level=off: nothing reaches the callback (%d lines, first: %s)", logged.count,
          logged.first);
    pthread_mutex_unlock(&log_lock);

    /* fn == NULL: lines go to stderr again */
    CHECK_STATUS(ors_redis_set_logger(NULL, NULL), ORS_OK, "set_logger(NULL, NULL)");
    log_reset();
    fflush(stderr);
    saved_fd = dup(2);
    tmp = tmpfile();
    tmp_fd = tmp ? fileno(tmp) : -1;
    if (CHECK(saved_fd >= 0 && tmp_fd >= 0 && dup2(tmp_fd, 2) == 2, "redirected stderr to a temporary file")) {
        int32_t st = ors_redis_init(config_for(CLUSTER, "log-level=info"));
        if (st == ORS_OK) {
            some_calls("log-stderr");
            ors_redis_shutdown();
        }
        fflush(stderr);
        dup2(saved_fd, 2);
        size = lseek(tmp_fd, 0, SEEK_END);
        CHECK(st == ORS_OK, "init with log-level=info after set_logger(NULL) -> %s", h_code_name(st));
        CHECK(size > 0, "after set_logger(NULL), log lines go to stderr (%ld bytes)", size);
    }
    if (saved_fd >= 0) close(saved_fd);
    if (tmp) fclose(tmp);
    pthread_mutex_lock(&log_lock);
    count_before = logged.count;
    pthread_mutex_unlock(&log_lock);
    CHECK(count_before == 0, "after set_logger(NULL), the old callback is not called (%d lines)", count_before);
}

/* ------------------------------------------------------------------ */
/* Scan                                                                */
/* ------------------------------------------------------------------ */

#define SCAN_MAX 20000
struct seen {
    int calls;
    int stop_after; /* 0: never */
    int bad_user_data;
    int null_ids;
    int n;
    char *ids[SCAN_MAX];
};
static int scan_tag; /* its address is the user_data given to scan */
static struct seen *current_seen;

static int32_t scan_cb(const char *session_id, void *user_data)
{
    struct seen *s = current_seen;
    if (user_data != &scan_tag) s->bad_user_data++;
    s->calls++;
    if (!session_id)
        s->null_ids++;
    else if (s->n < SCAN_MAX)
        s->ids[s->n++] = strdup(session_id);
    return (s->stop_after && s->calls >= s->stop_after) ? 1 : 0;
}

static void seen_clear(struct seen *s)
{
    int i;
    for (i = 0; i < s->n; i++) free(s->ids[i]);
    memset(s, 0, sizeof *s);
}

static int seen_count(const struct seen *s, const char *id)
{
    int i, c = 0;
    for (i = 0; i < s->n; i++)
        if (s->ids[i] && strcmp(s->ids[i], id) == 0) c++;
    return c;
}

static int seen_duplicates(const struct seen *s)
{
    int i, j, d = 0;
    for (i = 0; i < s->n; i++)
        for (j = i + 1; j < s->n; j++)
            if (strcmp(s->ids[i], s->ids[j]) == 0) {
                d++;
                break;
            }
    return d;
}

static int32_t do_scan(struct seen *s, const char *prefix, int stop_after)
{
    seen_clear(s);
    s->stop_after = stop_after;
    current_seen = s;
    return ors_session_scan(prefix, scan_cb, &scan_tag);
}

#define N_A 25
#define N_B 5

static void check_scan(void)
{
    static struct seen s;
    char id[256], prefix[256];
    int i, missing, dup;
    int32_t st;
    static const char *const literal[][2] = {
        /* prefix suffix, ids that share it when the prefix is taken as a glob */
        {"g*", "g*x"}, {"q?", "q?x"}, {"b[1]", "b[1]x"}, {"bs\\", "bs\\x"}};
    static const char *const decoys[] = {"gAx", "qZx", "b1x", "bsx"};
    char q[512];
    const char *foreign_key;

    CHECK_STATUS(ors_session_scan("", scan_cb, &scan_tag), ORS_ERR_NOT_INITIALIZED, "scan before init");
    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, NULL)), ORS_OK, "init") != ORS_OK) return;
    CHECK_STATUS(ors_session_scan("", NULL, NULL), ORS_ERR_INVALID_ARGUMENT, "scan with fn == NULL");

    for (i = 0; i < N_A; i++) {
        snprintf(id, sizeof id, "%ld-scanA-%d", (long)getpid(), i);
        ors_session_put(id, (const uint8_t *)"a", 1, 300);
    }
    for (i = 0; i < N_B; i++) {
        snprintf(id, sizeof id, "%ld-scanB-%d", (long)getpid(), i);
        ors_session_put(id, (const uint8_t *)"b", 1, 300);
    }
    for (i = 0; i < 4; i++) {
        snprintf(id, sizeof id, "%ld-%s", (long)getpid(), literal[i][1]);
        ors_session_put(id, (const uint8_t *)"l", 1, 300);
        snprintf(id, sizeof id, "%ld-%s", (long)getpid(), decoys[i]);
        ors_session_put(id, (const uint8_t *)"d", 1, 300);
    }
    /* the same session id under another cluster name must not be reported */
    snprintf(id, sizeof id, "%ld-scanA-foreign", (long)getpid());
    foreign_key = h_key("t_recovery_x", id);
    h_shell_quote(q, sizeof q, foreign_key);
    redis_cli("-c -p %d SET %s f EX 120", h_port(), q);

    snprintf(prefix, sizeof prefix, "%ld-scanA-", (long)getpid());
    st = do_scan(&s, prefix, 0);
    CHECK(st == ORS_OK, "scan(\"%s\") -> %s", prefix, h_code_name(st));
    for (i = 0, missing = 0; i < N_A; i++) {
        snprintf(id, sizeof id, "%ld-scanA-%d", (long)getpid(), i);
        if (seen_count(&s, id) != 1) missing++;
    }
    dup = seen_duplicates(&s);
    CHECK(missing == 0 && s.n == N_A, "scan(prefix A): each of the %d sessions exactly once, nothing else (%d ids, %d "
                                      "missing or repeated)",
          N_A, s.n, missing);
    CHECK(dup == 0, "scan(prefix A): no id reported twice (%d)", dup);
    snprintf(id, sizeof id, "%ld-scanA-foreign", (long)getpid());
    CHECK(seen_count(&s, id) == 0, "scan does not report a session of another cluster name");
    CHECK(s.bad_user_data == 0 && s.null_ids == 0, "scan passes user_data through and never a NULL id");

    snprintf(prefix, sizeof prefix, "%ld-scan", (long)getpid());
    st = do_scan(&s, prefix, 0);
    CHECK(st == ORS_OK && s.n == N_A + N_B, "scan(\"%s\"): %d sessions (got %d, %s)", prefix, N_A + N_B, s.n,
          h_code_name(st));

    st = do_scan(&s, NULL, 0);
    for (i = 0, missing = 0; i < N_A; i++) {
        snprintf(id, sizeof id, "%ld-scanA-%d", (long)getpid(), i);
        if (seen_count(&s, id) != 1) missing++;
    }
    dup = seen_duplicates(&s);
    CHECK(st == ORS_OK && missing == 0 && dup == 0, "scan(NULL): every session of this cluster name, once each (%s, %d "
                                                    "ids, %d missing, %d repeated)",
          h_code_name(st), s.n, missing, dup);
    st = do_scan(&s, "", 0);
    CHECK(st == ORS_OK && s.n >= N_A + N_B + 8, "scan(\"\") reports all sessions as well (%s, %d ids)",
          h_code_name(st), s.n);

    /* the prefix is literal text, not a glob */
    for (i = 0; i < 4; i++) {
        snprintf(prefix, sizeof prefix, "%ld-%s", (long)getpid(), literal[i][0]);
        snprintf(id, sizeof id, "%ld-%s", (long)getpid(), literal[i][1]);
        st = do_scan(&s, prefix, 0);
        CHECK(st == ORS_OK && s.n == 1 && seen_count(&s, id) == 1,
              "scan(\"%s\") takes the prefix literally: only \"%s\" (%s, %d ids%s%s)", prefix, id, h_code_name(st),
              s.n, s.n ? ", first " : "", s.n ? s.ids[0] : "");
    }

    /* early stop */
    snprintf(prefix, sizeof prefix, "%ld-scanA-", (long)getpid());
    st = do_scan(&s, prefix, 3);
    CHECK(st == ORS_OK && s.calls == 3, "scan stops when fn returns non-zero: OK after 3 calls (%s, %d calls)",
          h_code_name(st), s.calls);

    /* deleted and expired sessions are not reported */
    for (i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "%ld-scanA-%d", (long)getpid(), i);
        ors_session_del(id);
    }
    st = do_scan(&s, prefix, 0);
    CHECK(st == ORS_OK && s.n == N_A - 5, "after 5 deletes, scan reports %d sessions (got %d)", N_A - 5, s.n);
    snprintf(id, sizeof id, "%ld-scanE-0", (long)getpid());
    ors_session_put(id, (const uint8_t *)"e", 1, 1);
    h_sleep_ms(2500);
    snprintf(prefix, sizeof prefix, "%ld-scanE-", (long)getpid());
    st = do_scan(&s, prefix, 0);
    CHECK(st == ORS_OK && s.n == 0, "an expired session is not reported (%s, %d ids)", h_code_name(st), s.n);

    /* cleanup */
    for (i = 0; i < N_A; i++) {
        snprintf(id, sizeof id, "%ld-scanA-%d", (long)getpid(), i);
        ors_session_del(id);
    }
    for (i = 0; i < N_B; i++) {
        snprintf(id, sizeof id, "%ld-scanB-%d", (long)getpid(), i);
        ors_session_del(id);
    }
    for (i = 0; i < 4; i++) {
        snprintf(id, sizeof id, "%ld-%s", (long)getpid(), literal[i][1]);
        ors_session_del(id);
        snprintf(id, sizeof id, "%ld-%s", (long)getpid(), decoys[i]);
        ors_session_del(id);
    }
    redis_cli("-c -p %d DEL %s", h_port(), q);
    seen_clear(&s);
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    CHECK_STATUS(ors_session_scan("", scan_cb, &scan_tag), ORS_ERR_NOT_INITIALIZED, "scan after shutdown");
}

/* ------------------------------------------------------------------ */
/* Stats                                                               */
/* ------------------------------------------------------------------ */

static pthread_mutex_t st_lock = PTHREAD_MUTEX_INITIALIZER;
static int st_ready, st_release;

static void *stats_thread(void *arg)
{
    int64_t end = h_now_ms() + 60000;
    int go = 0;
    (void)arg;
    some_calls("stats-thread");
    pthread_mutex_lock(&st_lock);
    st_ready = 1;
    pthread_mutex_unlock(&st_lock);
    while (!go && h_now_ms() < end) {
        h_sleep_ms(5);
        pthread_mutex_lock(&st_lock);
        go = st_release;
        pthread_mutex_unlock(&st_lock);
    }
    return NULL;
}

static void check_stats(void)
{
    ors_redis_stats s0, s1, s2, s3, s4;
    uint8_t *data = NULL;
    size_t len = 0;
    int i, ready = 0;
    pthread_t t;
    int64_t end;
    char id[128];

    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, NULL)), ORS_OK, "init") != ORS_OK) return;
    CHECK_STATUS(ors_redis_get_stats(NULL), ORS_ERR_INVALID_ARGUMENT, "get_stats(NULL)");
    memset(&s0, 0xff, sizeof s0);
    CHECK_STATUS(ors_redis_get_stats(&s0), ORS_OK, "get_stats right after init");
    CHECK(s0.puts == 0 && s0.gets == 0 && s0.dels == 0 && s0.hits == 0 && s0.misses == 0 && s0.errors == 0,
          "right after init, the call counters are 0 (puts %" PRIu64 ", gets %" PRIu64 ", dels %" PRIu64
          ", errors %" PRIu64 ")",
          s0.puts, s0.gets, s0.dels, s0.errors);

    for (i = 0; i < 3; i++) {
        snprintf(id, sizeof id, "%ld-stats-%d", (long)getpid(), i);
        ors_session_put(id, (const uint8_t *)"s", 1, 60);
    }
    for (i = 0; i < 4; i++) {
        snprintf(id, sizeof id, "%ld-stats-%d", (long)getpid(), i < 2 ? i : 10 + i); /* 2 hits, 2 misses */
        ors_session_get(id, &data, &len);
        ors_free(data);
        data = NULL;
    }
    for (i = 0; i < 2; i++) {
        snprintf(id, sizeof id, "%ld-stats-%d", (long)getpid(), i);
        ors_session_del(id);
    }
    memset(&s1, 0, sizeof s1);
    CHECK_STATUS(ors_redis_get_stats(&s1), ORS_OK, "get_stats after 3 puts, 4 gets, 2 dels");
    CHECK(s1.puts - s0.puts == 3 && s1.gets - s0.gets == 4 && s1.dels - s0.dels == 2,
          "puts +3, gets +4, dels +2 (got +%" PRIu64 ", +%" PRIu64 ", +%" PRIu64 ")", s1.puts - s0.puts,
          s1.gets - s0.gets, s1.dels - s0.dels);
    CHECK(s1.hits - s0.hits == 2 && s1.misses - s0.misses == 2,
          "hits +2, misses +2 (got +%" PRIu64 ", +%" PRIu64 ")", s1.hits - s0.hits, s1.misses - s0.misses);
    CHECK(s1.errors == s0.errors, "no error counted for successful calls (errors %" PRIu64 " -> %" PRIu64 ")",
          s0.errors, s1.errors);
    CHECK(s1.connections_open >= 1 && s1.threads_connected >= 1,
          "after calls, connections_open %" PRIu64 " >= 1 and threads_connected %" PRIu64 " >= 1",
          s1.connections_open, s1.threads_connected);

    ors_session_put("{bad}", (const uint8_t *)"x", 1, 1);
    memset(&s2, 0, sizeof s2);
    CHECK_STATUS(ors_redis_get_stats(&s2), ORS_OK, "get_stats after a refused call");
    CHECK(s2.errors == s1.errors + 1, "a call that returned a negative status counts in errors (%" PRIu64
                                      " -> %" PRIu64 ")",
          s1.errors, s2.errors);

    /* threads_connected and connections_open follow a thread's life */
    if (CHECK(pthread_create(&t, NULL, stats_thread, NULL) == 0, "started a thread that calls the library")) {
        end = h_now_ms() + 60000;
        while (!ready && h_now_ms() < end) {
            h_sleep_ms(5);
            pthread_mutex_lock(&st_lock);
            ready = st_ready;
            pthread_mutex_unlock(&st_lock);
        }
        memset(&s3, 0, sizeof s3);
        ors_redis_get_stats(&s3);
        pthread_mutex_lock(&st_lock);
        st_release = 1;
        pthread_mutex_unlock(&st_lock);
        pthread_join(t, NULL);
        memset(&s4, 0, sizeof s4);
        ors_redis_get_stats(&s4);
        h_note("threads_connected %" PRIu64 " -> %" PRIu64 " -> %" PRIu64 ", connections_open %" PRIu64 " -> %" PRIu64
               " -> %" PRIu64,
               s2.threads_connected, s3.threads_connected, s4.threads_connected, s2.connections_open,
               s3.connections_open, s4.connections_open);
        CHECK(s3.threads_connected == s2.threads_connected + 1, "a live thread that called counts in threads_connected");
        CHECK(s3.connections_open > s2.connections_open, "its connections count in connections_open");
        CHECK(s4.threads_connected == s2.threads_connected && s4.connections_open == s2.connections_open,
              "after the thread exits, both are back where they were");
    }

    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, NULL)), ORS_OK, "init again") == ORS_OK) {
        memset(&s0, 0xff, sizeof s0);
        CHECK_STATUS(ors_redis_get_stats(&s0), ORS_OK, "get_stats after re-init");
        CHECK(s0.puts == 0 && s0.gets == 0 && s0.errors == 0, "the counters start again from 0 at init");
        snprintf(id, sizeof id, "%ld-stats-2", (long)getpid());
        ors_session_del(id);
        CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    }
}

int main(void)
{
    char pattern[256];
    int n;

    h_begin("test_recovery");
    check_logger();
    check_scan();
    check_stats();

    snprintf(pattern, sizeof pattern, "ORS:%s:{%ld-*", CLUSTER, (long)getpid());
    n = h_count_keys(pattern);
    CHECK(n == 0, "no key of this run left under %s (found %d)", pattern, n);
    h_check_all_keys_have_ttl(CLUSTER);
    return h_done();
}

#endif
