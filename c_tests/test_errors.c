/*
 * test_errors.c - the error statuses that need a server to misbehave:
 * ORS_ERR_NOT_DURABLE (wait-replicas above the replicas there are),
 * ORS_ERR_SERVER (GET on a key of another type), ORS_ERR_TIMEOUT (a master
 * whose writes are paused with CLIENT PAUSE). After each, the library goes on
 * working. Keys live under ORS:t_errors:. (ORS_ERR_TLS is tested with the
 * TLS support.)
 */
#define _GNU_SOURCE 1
#include "harness.h"

#define CLUSTER "t_errors"

static void check_not_durable(void)
{
    const char *id = h_id("durable");
    uint8_t *data = NULL;
    size_t len = 0;
    int32_t st;
    long long ttl;

    /* each master has exactly one replica: WAIT 3 can only see 1 */
    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, "wait-replicas=3 wait-timeout=100")), ORS_OK,
                     "init with wait-replicas=3 wait-timeout=100") != ORS_OK)
        return;
    CHECK_STATUS(ors_session_put(id, (const uint8_t *)"not durable", 11, 120), ORS_ERR_NOT_DURABLE,
                 "put with wait-replicas=3 on masters with one replica each");
    CHECK(h_saved_error()[0] != '\0', "ors_last_error() non-empty after NOT_DURABLE (\"%s\")", h_saved_error());
    st = CHECK_STATUS(ors_session_get(id, &data, &len), ORS_OK, "get after NOT_DURABLE: the master applied the write");
    CHECK(st == ORS_OK && len == 11 && data && memcmp(data, "not durable", 11) == 0,
          "get after NOT_DURABLE returns the value put");
    ors_free(data);
    data = NULL;
    ttl = redis_cli_key_int("TTL", h_key(CLUSTER, id));
    CHECK(ttl > 100 && ttl <= 120, "the key written under NOT_DURABLE has its TTL (%lld)", ttl);
    /* whether a delete waits for replicas too is not fixed: OK or NOT_DURABLE */
    st = ors_session_del(id);
    CHECK(st == ORS_OK || st == ORS_ERR_NOT_DURABLE, "del with wait-replicas=3 -> OK or NOT_DURABLE (%s)",
          h_code_name(st));
    CHECK(redis_cli_key_int("EXISTS", h_key(CLUSTER, id)) == 0, "the key is gone after that del");
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");

    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, "wait-replicas=1 wait-timeout=5000")), ORS_OK,
                     "init with wait-replicas=1 wait-timeout=5000") != ORS_OK)
        return;
    CHECK_STATUS(ors_session_put(id, (const uint8_t *)"durable", 7, 120), ORS_OK,
                 "put with wait-replicas=1: the replica acknowledges");
    st = CHECK_STATUS(ors_session_get(id, &data, &len), ORS_OK, "get with wait-replicas=1");
    CHECK(st == ORS_OK && len == 7 && data && memcmp(data, "durable", 7) == 0, "get returns the durable value");
    ors_free(data);
    CHECK_STATUS(ors_session_del(id), ORS_OK, "del with wait-replicas=1");
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
}

static void check_server_error(void)
{
    const char *id = h_id("wrongtype");
    const char *key = h_key(CLUSTER, id);
    char q[512];
    uint8_t *data = (uint8_t *)"sentinel";
    size_t len = 8;
    int32_t st;

    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, NULL)), ORS_OK, "init") != ORS_OK) return;
    h_shell_quote(q, sizeof q, key);
    CHECK(strcmp(redis_cli("-c -p %d HSET %s field value", h_port(), q), "1") == 0, "redis-cli HSET %s", key);
    CHECK(strcmp(redis_cli("-c -p %d EXPIRE %s 120", h_port(), q), "1") == 0, "redis-cli EXPIRE %s 120", key);
    CHECK_STATUS(ors_session_get(id, &data, &len), ORS_ERR_SERVER, "get of a session whose key is a hash (WRONGTYPE)");
    CHECK(data == NULL && len == 0, "SERVER error: *data == NULL and *len == 0");
    CHECK(h_saved_error()[0] != '\0', "ors_last_error() non-empty after SERVER (\"%s\")", h_saved_error());
    CHECK_STATUS(ors_session_put(id, (const uint8_t *)"string now", 10, 60), ORS_OK,
                 "put over the hash: SET replaces a key of any type");
    CHECK(strcmp(redis_cli_key("TYPE", key), "string") == 0, "the key is a string again");
    data = NULL;
    st = CHECK_STATUS(ors_session_get(id, &data, &len), ORS_OK, "get after the put");
    CHECK(st == ORS_OK && len == 10 && data && memcmp(data, "string now", 10) == 0, "get returns the new value");
    ors_free(data);
    CHECK_STATUS(ors_session_del(id), ORS_OK, "del");
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
}

static void check_timeout(void)
{
    const char *id = h_id("paused");
    const char *key = h_key(CLUSTER, id);
    long long slot = h_keyslot(key);
    int port = 0, n, i, bad = 0, all_clients = 0;
    int64_t t0, elapsed, paused_at;
    int32_t st;
    char reply[256];

    n = h_masters(&port, 1, (int)slot);
    if (!CHECK(n == 1 && port > 0, "found the master of slot %lld (port %d)", slot, port)) return;
    /* socket timeout far above op-timeout: only the call's deadline can end it */
    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, "op-timeout=300 redis-socket-timeout=5000")), ORS_OK,
                     "init with op-timeout=300 redis-socket-timeout=5000") != ORS_OK)
        return;
    CHECK_STATUS(ors_session_put(id, (const uint8_t *)"before", 6, 60), ORS_OK, "put before the pause");

    paused_at = h_now_ms();
    snprintf(reply, sizeof reply, "%s", redis_cli("-p %d CLIENT PAUSE 1500 WRITE", port));
    if (strncmp(reply, "ERR", 3) == 0) {
        /* Before Redis 6.2 CLIENT PAUSE has no WRITE mode and there is no
         * CLIENT UNPAUSE: pause every client, and wait the pause out below. */
        h_note("CLIENT PAUSE WRITE refused (\"%s\"): pausing all clients instead (Redis < 6.2)", reply);
        paused_at = h_now_ms();
        snprintf(reply, sizeof reply, "%s", redis_cli("-p %d CLIENT PAUSE 1500", port));
        all_clients = 1;
    }
    CHECK(strcmp(reply, "OK") == 0, "redis-cli -p %d CLIENT PAUSE 1500%s (\"%s\")", port, all_clients ? "" : " WRITE",
          reply);
    t0 = h_now_ms();
    st = ors_session_put(id, (const uint8_t *)"during", 6, 60);
    elapsed = h_now_ms() - t0;
    CHECK_STATUS(st, ORS_ERR_TIMEOUT, "put to a master whose writes are paused, op-timeout=300");
    h_note("the put to the paused master returned after %" PRId64 " ms", elapsed);
    if (all_clients) {
        int64_t left = 1500 + 200 - (h_now_ms() - paused_at);
        if (left > 0) h_sleep_ms((long)left);
    } else {
        redis_cli("-p %d CLIENT UNPAUSE", port);
    }

    /* the connection that timed out must not hand a late reply to the next
     * call: every value read back is the one just written */
    for (i = 0; i < 20; i++) {
        char v[32];
        uint8_t *data = NULL;
        size_t len = 0;
        int32_t p, g;
        snprintf(v, sizeof v, "after-%d", i);
        p = ors_session_put(id, (const uint8_t *)v, strlen(v), 60);
        g = ors_session_get(id, &data, &len);
        if (p != ORS_OK || g != ORS_OK || len != strlen(v) || !data || memcmp(data, v, len) != 0) {
            if (!bad)
                h_note("after the timeout, iteration %d: put %s, get %s, %zu bytes", i, h_code_name(p), h_code_name(g),
                       len);
            bad++;
        }
        ors_free(data);
    }
    CHECK(bad == 0, "after the timeout, 20 put/get pairs each read back their own value (%d did not)", bad);
    CHECK_STATUS(ors_session_del(id), ORS_OK, "del");
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
}

/* ------------------------------------------------------------------ */
/* A TCP server that does not speak TLS                                */
int main(void)
{
    char pattern[256];
    int n;

    h_begin("test_errors");
    check_not_durable();
    check_server_error();
    check_timeout();
    CHECK_STATUS(ors_session_del(h_id("x")), ORS_ERR_NOT_INITIALIZED, "the library is not initialized at the end");

    snprintf(pattern, sizeof pattern, "ORS:%s:{%ld-*", CLUSTER, (long)getpid());
    n = h_count_keys(pattern);
    CHECK(n == 0, "no key of this run left under %s (found %d)", pattern, n);
    h_check_all_keys_have_ttl(CLUSTER);
    return h_done();
}
