/*
 * test_status.c - status codes for bad input, status names, version,
 * ors_last_error(), and the init/shutdown lifecycle.
 * Keys live under ORS:t_status:.
 */
#define _GNU_SOURCE 1
#include "harness.h"

#define CLUSTER "t_status"

struct name_case {
    int32_t value;
    const char *name;
};

static void check_static_functions(void)
{
    static const struct name_case names[] = {
        {ORS_OK, "ORS_OK"},
        {ORS_NOT_FOUND, "ORS_NOT_FOUND"},
        {ORS_ERR_INVALID_ARGUMENT, "ORS_ERR_INVALID_ARGUMENT"},
        {ORS_ERR_CONFIG, "ORS_ERR_CONFIG"},
        {ORS_ERR_NOT_INITIALIZED, "ORS_ERR_NOT_INITIALIZED"},
        {ORS_ERR_ALREADY_INITIALIZED, "ORS_ERR_ALREADY_INITIALIZED"},
        {ORS_ERR_CONNECTION, "ORS_ERR_CONNECTION"},
        {ORS_ERR_TIMEOUT, "ORS_ERR_TIMEOUT"},
        {ORS_ERR_AUTH, "ORS_ERR_AUTH"},
        {ORS_ERR_TLS, "ORS_ERR_TLS"},
        {ORS_ERR_CLUSTER, "ORS_ERR_CLUSTER"},
        {ORS_ERR_TOO_LARGE, "ORS_ERR_TOO_LARGE"},
        {ORS_ERR_NOT_DURABLE, "ORS_ERR_NOT_DURABLE"},
        {ORS_ERR_SERVER, "ORS_ERR_SERVER"},
        {ORS_ERR_UNAVAILABLE, "ORS_ERR_UNAVAILABLE"},
        {ORS_ERR_INTERNAL, "ORS_ERR_INTERNAL"},
    };
    /* The values the contract fixes, in the order of its table. */
    static const int32_t values[] = {0, 1, -1, -2, -3, -4, -5, -6, -7, -8, -9, -10, -11, -12, -13, -99};
    static const int32_t unknown[] = {2, 3, -14, -15, -50, -98, -100, 99, 100, INT32_MAX, INT32_MIN};
    size_t i;
    const char *v, *le;

    le = ors_last_error();
    CHECK(le != NULL, "ors_last_error() is not NULL before any call that can fail");
    CHECK(le != NULL && le[0] == '\0', "ors_last_error() is empty before any error (\"%s\")", le ? le : "(null)");

    v = ors_redis_version();
    CHECK(v != NULL && v[0] != '\0', "ors_redis_version() is a non-empty string (\"%s\")", v ? v : "(null)");
    CHECK(v != NULL && isdigit((unsigned char)v[0]) && strchr(v, '.') != NULL,
          "ors_redis_version() looks like a version number (\"%s\")", v ? v : "(null)");

    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *n = ors_status_name(names[i].value);
        CHECK(names[i].value == values[i], "%s has the contract's value %d (header: %d)", names[i].name,
              (int)values[i], (int)names[i].value);
        CHECK(n != NULL && strcmp(n, names[i].name) == 0, "ors_status_name(%d) is \"%s\" (got \"%s\")",
              (int)names[i].value, names[i].name, n ? n : "(null)");
    }
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        const char *n = ors_status_name(unknown[i]);
        CHECK(n != NULL && strcmp(n, "ORS_UNKNOWN_STATUS") == 0,
              "ors_status_name(%" PRId32 ") is \"ORS_UNKNOWN_STATUS\" (got \"%s\")", unknown[i], n ? n : "(null)");
    }
    CHECK(ors_status_name(ORS_OK) == ors_status_name(ORS_OK), "ors_status_name returns static storage (same pointer twice)");

    ors_free(NULL);
    le = ors_last_error();
    CHECK(le != NULL && le[0] == '\0', "ors_free(NULL) before init does nothing (ors_last_error() still empty)");
}

static void check_get_outputs_cleared(const char *what, uint8_t *data, size_t len)
{
    CHECK(data == NULL && len == 0, "%s: *data == NULL and *len == 0 (got %p, %zu)", what, (void *)data, len);
}

static void check_not_initialized(const char *when)
{
    const char *id = h_id("not-init");
    uint8_t byte = 'x';
    uint8_t *data = (uint8_t *)&byte; /* non-NULL sentinel: get must clear it */
    size_t len = 77;

    CHECK_STATUS(ors_session_put(id, &byte, 1, 0), ORS_ERR_NOT_INITIALIZED, "%s: put", when);
    CHECK(h_saved_error()[0] != '\0', "%s: ors_last_error() non-empty after NOT_INITIALIZED (\"%s\")", when,
          h_saved_error());
    CHECK_STATUS(ors_session_get(id, &data, &len), ORS_ERR_NOT_INITIALIZED, "%s: get", when);
    check_get_outputs_cleared("get when not initialized", data, len);
    CHECK_STATUS(ors_session_del(id), ORS_ERR_NOT_INITIALIZED, "%s: del", when);
    CHECK_STATUS(ors_redis_shutdown(), ORS_ERR_NOT_INITIALIZED, "%s: shutdown", when);
    ors_free(NULL);
}

/* One id the contract refuses: put, get and del all say INVALID_ARGUMENT. */
static void check_bad_id(const char *label, const char *id)
{
    static const uint8_t value[] = "v";
    uint8_t *data = (uint8_t *)value; /* non-NULL sentinel */
    size_t len = 99;

    CHECK_STATUS(ors_session_put(id, value, 1, 60), ORS_ERR_INVALID_ARGUMENT, "put with session id %s", label);
    CHECK(h_saved_error()[0] != '\0', "ors_last_error() non-empty after a bad id %s (\"%s\")", label,
          h_saved_error());
    CHECK_STATUS(ors_session_get(id, &data, &len), ORS_ERR_INVALID_ARGUMENT, "get with session id %s", label);
    check_get_outputs_cleared("get with a bad id", data, len);
    CHECK_STATUS(ors_session_del(id), ORS_ERR_INVALID_ARGUMENT, "del with session id %s", label);
}

/* One id the contract accepts: a full round trip, then it is gone. */
static void check_good_id(const char *label, const char *id)
{
    uint8_t value[32];
    uint8_t *data = NULL;
    size_t len = 0;
    int32_t st;

    h_fill(value, sizeof value, (unsigned)strlen(id), 7);
    CHECK_STATUS(ors_session_put(id, value, sizeof value, 60), ORS_OK, "put with session id %s", label);
    st = CHECK_STATUS(ors_session_get(id, &data, &len), ORS_OK, "get with session id %s", label);
    CHECK(st == ORS_OK && data && len == sizeof value && memcmp(data, value, len) == 0,
          "get with session id %s returns the bytes put (%zu bytes)", label, len);
    ors_free(data);
    CHECK(h_keyslot(h_key(CLUSTER, id)) == h_keyslot(id), "key of session id %s hashes on the session id", label);
    CHECK_STATUS(ors_session_del(id), ORS_OK, "del with session id %s", label);
}

static void check_bad_input(void)
{
    char big[1100];
    char edge[1100];
    size_t prefix;
    uint8_t *data;
    size_t len;
    static const uint8_t value[] = "value";
    const char *id = h_id("bad-input");

    /* NULL pointers */
    CHECK_STATUS(ors_session_put(NULL, value, 5, 0), ORS_ERR_INVALID_ARGUMENT, "put(NULL id)");
    CHECK(h_saved_error()[0] != '\0', "ors_last_error() non-empty after put(NULL id) (\"%s\")", h_saved_error());
    CHECK_STATUS(ors_session_put(id, NULL, 5, 0), ORS_ERR_INVALID_ARGUMENT, "put(data == NULL, len 5)");
    CHECK(h_saved_error()[0] != '\0', "ors_last_error() non-empty after data == NULL with len > 0 (\"%s\")",
          h_saved_error());
    CHECK_STATUS(ors_session_put(id, NULL, 1, 0), ORS_ERR_INVALID_ARGUMENT, "put(data == NULL, len 1)");
    CHECK_STATUS(ors_session_put(id, NULL, SIZE_MAX, 0), ORS_ERR_INVALID_ARGUMENT, "put(data == NULL, len SIZE_MAX)");
    data = (uint8_t *)value;
    len = 5;
    CHECK_STATUS(ors_session_get(NULL, &data, &len), ORS_ERR_INVALID_ARGUMENT, "get(NULL id)");
    check_get_outputs_cleared("get(NULL id)", data, len);
    len = 5;
    CHECK_STATUS(ors_session_get(id, NULL, &len), ORS_ERR_INVALID_ARGUMENT, "get(data == NULL)");
    CHECK(len == 0, "get(data == NULL): *len is 0 (got %zu)", len);
    data = (uint8_t *)value;
    CHECK_STATUS(ors_session_get(id, &data, NULL), ORS_ERR_INVALID_ARGUMENT, "get(len == NULL)");
    CHECK(data == NULL, "get(len == NULL): *data is NULL (got %p)", (void *)data);
    CHECK_STATUS(ors_session_get(NULL, NULL, NULL), ORS_ERR_INVALID_ARGUMENT, "get(NULL, NULL, NULL)");
    CHECK_STATUS(ors_session_del(NULL), ORS_ERR_INVALID_ARGUMENT, "del(NULL id)");
    CHECK(h_saved_error()[0] != '\0', "ors_last_error() non-empty after del(NULL) (\"%s\")", h_saved_error());
    /* the refused puts stored nothing */
    data = NULL;
    len = 0;
    CHECK_STATUS(ors_session_get(id, &data, &len), ORS_NOT_FOUND, "nothing stored by the refused puts");
    ors_free(data);

    /* bad session ids */
    check_bad_id("\"\" (empty)", "");
    memset(big, 'x', 1025);
    big[1025] = '\0';
    check_bad_id("of 1025 bytes", big);
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    check_bad_id("of 1099 bytes", big);
    check_bad_id("\"\\x01\"", "\x01");
    check_bad_id("\"a\\tb\" (TAB)", "a\tb");
    check_bad_id("\"a\\nb\" (LF)", "a\nb");
    check_bad_id("\"ab\\r\" (CR)", "ab\r");
    check_bad_id("\"\\x1fab\"", "\x1f" "ab");
    check_bad_id("\"ab\\x1b[0m\" (ESC)", "ab\x1b[0m");
    check_bad_id("\"a\\x7fb\" (DEL)", "a\x7f" "b");
    check_bad_id("\"{\"", "{");
    check_bad_id("\"}\"", "}");
    check_bad_id("\"a{b\"", "a{b");
    check_bad_id("\"a}b\"", "a}b");
    check_bad_id("\"{ab}\"", "{ab}");
    check_bad_id("\"x}{y\"", "x}{y");

    /* ids at and inside the limits */
    check_good_id("of 1 byte", "Z");
    prefix = (size_t)snprintf(edge, sizeof edge, "%s-", h_id("edge"));
    memset(edge + prefix, 'e', 1024 - prefix);
    edge[1024] = '\0';
    check_good_id("of exactly 1024 bytes", edge);
    check_good_id("with spaces and punctuation", h_id("a b:c*?[x]\\'\"!@#$%^&()=+,;<>|~`"));
    check_good_id("in UTF-8 (\"s\\xc3\\xa9ance-\\xe2\\x82\\xac\")", h_id("s\xc3\xa9" "ance-\xe2\x82\xac"));
    check_good_id("with bytes >= 0x80 that are not UTF-8", h_id("\xff\xfe\x80-raw"));
}

/* ors_last_error() belongs to the calling thread. */
static char thread_saw_before[512];
static char thread_saw_after[512];
static int32_t thread_status;

static void *last_error_thread(void *arg)
{
    const char *le;
    (void)arg;
    le = ors_last_error();
    snprintf(thread_saw_before, sizeof thread_saw_before, "%s", le ? le : "(null)");
    thread_status = ors_session_del(NULL);
    le = ors_last_error();
    snprintf(thread_saw_after, sizeof thread_saw_after, "%s", le ? le : "(null)");
    return NULL;
}

static void check_last_error_per_thread(void)
{
    pthread_t t;
    const char *le;
    char mine[512];
    static const uint8_t v[] = "ok";

    CHECK_STATUS(ors_session_put(h_id("le"), v, 2, 30), ORS_OK, "a successful put");
    le = ors_last_error();
    CHECK(le != NULL, "ors_last_error() is not NULL after a successful call");
    h_note("ors_last_error() after a successful call: \"%s\"", le ? le : "(null)");
    CHECK_STATUS(ors_session_del(h_id("le")), ORS_OK, "del");

    CHECK_STATUS(ors_session_get("bad{id", NULL, NULL), ORS_ERR_INVALID_ARGUMENT, "an error on the main thread");
    snprintf(mine, sizeof mine, "%s", h_saved_error());
    if (!CHECK(pthread_create(&t, NULL, last_error_thread, NULL) == 0, "started a second thread")) return;
    pthread_join(t, NULL);
    CHECK(strcmp(thread_saw_before, "") == 0,
          "a new thread's ors_last_error() is empty, not the main thread's error (\"%s\")", thread_saw_before);
    CHECK(thread_status == ORS_ERR_INVALID_ARGUMENT && thread_saw_after[0] != '\0',
          "the second thread gets its own error message (\"%s\")", thread_saw_after);
    le = ors_last_error();
    CHECK(le != NULL && strcmp(le, mine) == 0,
          "the main thread's ors_last_error() is unchanged by the other thread's error (\"%s\")", le ? le : "(null)");
}

static void check_lifecycle(void)
{
    static const uint8_t keep[] = "written before shutdown";
    const char *id = h_id("survives-reinit");
    uint8_t *data = NULL;
    size_t len = 0;
    int32_t st;

    CHECK_STATUS(ors_session_put(id, keep, sizeof keep - 1, 300), ORS_OK, "put before shutdown");
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    check_not_initialized("after shutdown");
    CHECK(strcmp(ors_status_name(ORS_ERR_NOT_INITIALIZED), "ORS_ERR_NOT_INITIALIZED") == 0,
          "ors_status_name works after shutdown");
    CHECK(ors_redis_version()[0] != '\0', "ors_redis_version works after shutdown");

    CHECK_STATUS(ors_redis_init(config_for(CLUSTER, NULL)), ORS_OK, "re-init after shutdown");
    st = CHECK_STATUS(ors_session_get(id, &data, &len), ORS_OK, "get after re-init of a session put before shutdown");
    CHECK(st == ORS_OK && data && len == sizeof keep - 1 && memcmp(data, keep, len) == 0,
          "the session written before shutdown is unchanged after re-init");
    ors_free(data);
    CHECK_STATUS(ors_redis_init(config_for(CLUSTER, NULL)), ORS_ERR_ALREADY_INITIALIZED, "init after re-init");
    CHECK_STATUS(ors_session_del(id), ORS_OK, "del after re-init");

    /* a second shutdown/init cycle, to be sure the first was not a one-off */
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "second shutdown");
    CHECK_STATUS(ors_redis_shutdown(), ORS_ERR_NOT_INITIALIZED, "shutdown right after shutdown");
    CHECK_STATUS(ors_redis_init(config_for(CLUSTER, NULL)), ORS_OK, "second re-init");
    CHECK_STATUS(ors_session_del(id), ORS_NOT_FOUND, "del after second re-init: the session deleted before is gone");
}

static void check_too_large(void)
{
    uint8_t buf[64];
    uint8_t *data = NULL;
    size_t len = 0;
    int32_t st;
    const char *id = h_id("too-large");

    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown before init with max-value-bytes=16");
    CHECK_STATUS(ors_redis_init(config_for(CLUSTER, "max-value-bytes=16")), ORS_OK, "init with max-value-bytes=16");
    h_fill(buf, sizeof buf, 16, 17);
    CHECK_STATUS(ors_session_put(id, buf, 17, 60), ORS_ERR_TOO_LARGE, "put of 17 bytes with max-value-bytes=16");
    CHECK(h_saved_error()[0] != '\0', "ors_last_error() non-empty after TOO_LARGE (\"%s\")", h_saved_error());
    CHECK_STATUS(ors_session_put(id, buf, sizeof buf, 60), ORS_ERR_TOO_LARGE, "put of 64 bytes with max-value-bytes=16");
    CHECK_STATUS(ors_session_get(id, &data, &len), ORS_NOT_FOUND, "the refused values were not stored");
    ors_free(data);
    data = NULL;
    CHECK_STATUS(ors_session_put(id, buf, 16, 60), ORS_OK, "put of exactly 16 bytes with max-value-bytes=16");
    st = CHECK_STATUS(ors_session_get(id, &data, &len), ORS_OK, "get of the 16-byte value");
    CHECK(st == ORS_OK && data && len == 16 && memcmp(data, buf, 16) == 0, "the 16-byte value round-trips");
    ors_free(data);
    data = NULL;
    CHECK_STATUS(ors_session_put(id, buf, 17, 60), ORS_ERR_TOO_LARGE, "put of 17 bytes over an existing session");
    st = CHECK_STATUS(ors_session_get(id, &data, &len), ORS_OK, "get after the refused overwrite");
    CHECK(st == ORS_OK && data && len == 16 && memcmp(data, buf, 16) == 0,
          "a refused overwrite leaves the previous value in place");
    ors_free(data);

    /* A longer value stored behind the library's back: get refuses it on the
     * reply's header (nothing allocated for it) and drops the connection,
     * which the rest of the value left out of step. The next get on the same
     * key (same master) then needs no retry: the connection is a fresh one. */
    {
        char q[1400];
        struct ors_redis_stats before, after;
        h_shell_quote(q, sizeof q, h_key(CLUSTER, id));
        CHECK(strcmp(redis_cli("-c -p %d SET %s 0123456789abcdefghij", h_port(), q), "OK") == 0,
              "redis-cli SET of a 20-byte value under the session's key");
        data = NULL;
        len = 0;
        CHECK_STATUS(ors_session_get(id, &data, &len), ORS_ERR_TOO_LARGE,
                     "get of a 20-byte value stored by redis-cli, with max-value-bytes=16");
        CHECK(data == NULL && len == 0, "no buffer after TOO_LARGE");
        CHECK(strstr(h_saved_error(), "max-value-bytes") != NULL, "the message names max-value-bytes (\"%s\")",
              h_saved_error());
        CHECK(strcmp(redis_cli("-c -p %d SET %s 0123456789", h_port(), q), "OK") == 0,
              "redis-cli SET of a 10-byte value under the session's key");
        CHECK_STATUS(ors_redis_get_stats(&before), ORS_OK, "stats before the next get");
        st = CHECK_STATUS(ors_session_get(id, &data, &len), ORS_OK, "get of the 10-byte value after TOO_LARGE");
        CHECK(st == ORS_OK && len == 10 && memcmp(data, "0123456789", 10) == 0, "the 10-byte value is read");
        ors_free(data);
        data = NULL;
        CHECK_STATUS(ors_redis_get_stats(&after), ORS_OK, "stats after the next get");
        CHECK(after.retries == before.retries,
              "no retry after TOO_LARGE: the connection was not left out of step (retries %llu -> %llu)",
              (unsigned long long)before.retries, (unsigned long long)after.retries);
    }
    CHECK_STATUS(ors_session_del(id), ORS_OK, "del of the 16-byte session");
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown after the max-value-bytes checks");
}

int main(void)
{
    const char *id;
    int leftovers;
    char pattern[256];

    h_begin("test_status");
    check_static_functions();
    check_not_initialized("before init");

    CHECK_STATUS(ors_redis_init(NULL), ORS_ERR_INVALID_ARGUMENT, "init(NULL)");
    CHECK(h_saved_error()[0] != '\0', "ors_last_error() non-empty after init(NULL) (\"%s\")", h_saved_error());
    check_not_initialized("after init(NULL)");

    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, NULL)), ORS_OK, "init") != ORS_OK) {
        h_note("init failed, cannot run the rest: is the cluster up on %s?", h_nodes());
        return h_done();
    }
    CHECK_STATUS(ors_redis_init(config_for(CLUSTER, NULL)), ORS_ERR_ALREADY_INITIALIZED, "init again, same config");
    CHECK(h_saved_error()[0] != '\0', "ors_last_error() non-empty after ALREADY_INITIALIZED (\"%s\")",
          h_saved_error());
    CHECK_STATUS(ors_redis_init(config_for("t_status_other", "default-ttl=5")), ORS_ERR_ALREADY_INITIALIZED,
                 "init again, another config");
    id = h_id("after-double-init");
    CHECK_STATUS(ors_session_put(id, (const uint8_t *)"x", 1, 60), ORS_OK, "put works after a refused second init");
    CHECK(redis_cli_key_int("EXISTS", h_key(CLUSTER, id)) == 1,
          "the refused second init did not change the cluster name (key under ORS:" CLUSTER ":)");
    CHECK_STATUS(ors_session_del(id), ORS_OK, "del works after a refused second init");

    check_bad_input();
    check_last_error_per_thread();
    check_lifecycle();
    check_too_large();

    /* no key of this run is left, and none of this cluster name lacks a TTL */
    snprintf(pattern, sizeof pattern, "ORS:%s:{%ld-*", CLUSTER, (long)getpid());
    leftovers = h_count_keys(pattern);
    CHECK(leftovers == 0, "no key of this run left under %s (found %d)", pattern, leftovers);
    h_check_all_keys_have_ttl(CLUSTER);
    check_not_initialized("at the end");
    return h_done();
}
