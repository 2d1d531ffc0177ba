/*
 * test_roundtrip.c - values in and out: binary bytes, embedded NULs, empty
 * and multi-MiB values, overwrite, missing sessions, TTLs (default, explicit,
 * expiry), delete semantics, and the stored key as redis-cli sees it.
 * Keys live under ORS:t_roundtrip:.
 */
#define _GNU_SOURCE 1
#include "harness.h"

#define CLUSTER "t_roundtrip"
#define DEFAULT_TTL 1234

/* put `len` bytes, get them back, compare. */
static void roundtrip(const char *label, const char *id, const uint8_t *value, size_t len, uint32_t ttl)
{
    uint8_t *data = NULL;
    size_t got_len = 12345;
    int32_t st;
    CHECK_STATUS(ors_session_put(id, value, len, ttl), ORS_OK, "%s: put of %zu bytes", label, len);
    st = CHECK_STATUS(ors_session_get(id, &data, &got_len), ORS_OK, "%s: get", label);
    CHECK(st == ORS_OK && data != NULL, "%s: get returns a non-NULL buffer", label);
    CHECK(st == ORS_OK && got_len == len, "%s: get returns %zu bytes (got %zu)", label, len, got_len);
    CHECK(st == ORS_OK && data && got_len == len && (len == 0 || memcmp(data, value, len) == 0),
          "%s: the bytes are identical", label);
    ors_free(data);
}

static long long ttl_of(const char *id)
{
    return redis_cli_key_int("TTL", h_key(CLUSTER, id));
}

static void check_values(void)
{
    uint8_t all[256];
    static const uint8_t nuls[] = {'a', 0, 'b', 0, 0, 'c', 0};
    static const uint8_t only_nul[] = {0};
    uint8_t *big;
    size_t i;
    const size_t big_len = 8u * 1024u * 1024u + 7u;
    uint8_t *data;
    size_t len;
    int32_t st;

    for (i = 0; i < 256; i++) all[i] = (uint8_t)i;
    roundtrip("all 256 byte values", h_id("bytes"), all, sizeof all, 60);
    CHECK(redis_cli_key_int("STRLEN", h_key(CLUSTER, h_id("bytes"))) == 256, "redis-cli STRLEN of the 256-byte value is 256");
    for (i = 0; i < 256; i++) all[i] = (uint8_t)(255 - i);
    roundtrip("all 256 byte values, reversed (overwrite)", h_id("bytes"), all, sizeof all, 60);
    roundtrip("embedded NULs", h_id("nuls"), nuls, sizeof nuls, 60);
    CHECK(redis_cli_key_int("STRLEN", h_key(CLUSTER, h_id("nuls"))) == (long long)sizeof nuls,
          "redis-cli STRLEN of the value with NULs is %zu", sizeof nuls);
    roundtrip("a single NUL byte", h_id("one-nul"), only_nul, 1, 60);
    {
        static const char resp[] = "+OK\r\n$-1\r\n*3\r\n";
        roundtrip("\\r\\n and RESP-looking bytes", h_id("resp"), (const uint8_t *)resp, sizeof resp - 1, 60);
    }

    /* empty values */
    roundtrip("empty value, data == NULL", h_id("empty-null"), NULL, 0, 60);
    CHECK(redis_cli_key_int("EXISTS", h_key(CLUSTER, h_id("empty-null"))) == 1,
          "the empty value exists as a key (redis-cli EXISTS)");
    CHECK(redis_cli_key_int("STRLEN", h_key(CLUSTER, h_id("empty-null"))) == 0, "redis-cli STRLEN of the empty value is 0");
    roundtrip("empty value, data != NULL", h_id("empty-ptr"), all, 0, 60);

    /* multi-MiB */
    big = (uint8_t *)malloc(big_len);
    if (CHECK(big != NULL, "allocated %zu bytes", big_len)) {
        h_fill(big, big_len, 8, 8);
        roundtrip("8 MiB + 7 bytes", h_id("big"), big, big_len, 60);
        CHECK(redis_cli_key_int("STRLEN", h_key(CLUSTER, h_id("big"))) == (long long)big_len,
              "redis-cli STRLEN of the big value is %zu", big_len);
        /* overwrite the big value with a small one: replaced, not appended */
        roundtrip("small value over the big one", h_id("big"), (const uint8_t *)"small", 5, 60);
        CHECK(redis_cli_key_int("STRLEN", h_key(CLUSTER, h_id("big"))) == 5, "redis-cli STRLEN after the overwrite is 5");
        free(big);
    }

    /* missing */
    data = (uint8_t *)all; /* non-NULL sentinel */
    len = 99;
    CHECK_STATUS(ors_session_get(h_id("never-stored"), &data, &len), ORS_NOT_FOUND, "get of a session never stored");
    CHECK(data == NULL && len == 0, "NOT_FOUND: *data == NULL and *len == 0 (got %p, %zu)", (void *)data, len);
    ors_free(NULL);
    CHECK_STATUS(ors_session_get(h_id("never-stored"), &data, &len), ORS_NOT_FOUND,
                 "ors_free(NULL) did nothing: the library still answers");

    /* overwrite replaces the value and the TTL */
    CHECK_STATUS(ors_session_put(h_id("ow"), (const uint8_t *)"first value, longer", 19, 5000), ORS_OK,
                 "put first value with ttl 5000");
    CHECK_STATUS(ors_session_put(h_id("ow"), (const uint8_t *)"second", 6, 300), ORS_OK,
                 "put second value with ttl 300");
    data = NULL;
    st = CHECK_STATUS(ors_session_get(h_id("ow"), &data, &len), ORS_OK, "get after overwrite");
    CHECK(st == ORS_OK && len == 6 && data && memcmp(data, "second", 6) == 0, "overwrite replaced the value");
    ors_free(data);
    {
        long long ttl = ttl_of(h_id("ow"));
        CHECK(ttl > 250 && ttl <= 300, "overwrite replaced the TTL: TTL %lld in (250, 300]", ttl);
    }
    CHECK_STATUS(ors_session_put(h_id("ow"), (const uint8_t *)"third", 5, 0), ORS_OK,
                 "put third value with ttl 0 (default-ttl %d)", DEFAULT_TTL);
    {
        long long ttl = ttl_of(h_id("ow"));
        CHECK(ttl > 1200 && ttl <= DEFAULT_TTL, "overwrite with ttl 0 set default-ttl: TTL %lld in (1200, %d]", ttl,
              DEFAULT_TTL);
    }

    {
        static const char *const ids[] = {"bytes", "nuls", "one-nul", "resp", "empty-null", "empty-ptr", "big", "ow"};
        for (i = 0; i < sizeof ids / sizeof ids[0]; i++)
            CHECK_STATUS(ors_session_del(h_id(ids[i])), ORS_OK, "cleanup: del %s", ids[i]);
    }
}

static void check_ttls(void)
{
    long long ttl;
    uint8_t *data = NULL;
    size_t len = 0;
    int32_t st;
    int64_t t0;

    CHECK_STATUS(ors_session_put(h_id("ttl-default"), (const uint8_t *)"d", 1, 0), ORS_OK, "put with ttl 0");
    ttl = ttl_of(h_id("ttl-default"));
    CHECK(ttl > 1200 && ttl <= DEFAULT_TTL, "ttl 0 uses default-ttl=%d: TTL %lld in (1200, %d]", DEFAULT_TTL, ttl,
          DEFAULT_TTL);

    CHECK_STATUS(ors_session_put(h_id("ttl-100"), (const uint8_t *)"e", 1, 100), ORS_OK, "put with ttl 100");
    ttl = ttl_of(h_id("ttl-100"));
    CHECK(ttl > 90 && ttl <= 100, "explicit ttl 100: TTL %lld in (90, 100]", ttl);

    /* ORS sessions can live for weeks */
    CHECK_STATUS(ors_session_put(h_id("ttl-90d"), (const uint8_t *)"f", 1, 7776000), ORS_OK, "put with ttl 90 days");
    ttl = ttl_of(h_id("ttl-90d"));
    CHECK(ttl > 7776000 - 60 && ttl <= 7776000, "explicit ttl 7776000: TTL %lld", ttl);

    /* expiry */
    t0 = h_now_ms();
    CHECK_STATUS(ors_session_put(h_id("ttl-1"), (const uint8_t *)"g", 1, 1), ORS_OK, "put with ttl 1");
    st = ors_session_get(h_id("ttl-1"), &data, &len);
    ors_free(data);
    data = NULL;
    h_note("get right after the put with ttl 1: %s after %" PRId64 " ms", h_code_name(st), h_now_ms() - t0);
    h_sleep_ms(2500);
    len = 5;
    data = (uint8_t *)"sentinel";
    CHECK_STATUS(ors_session_get(h_id("ttl-1"), &data, &len), ORS_NOT_FOUND, "get 2.5 s after a put with ttl 1");
    CHECK(data == NULL && len == 0, "expired: *data == NULL and *len == 0");
    CHECK_STATUS(ors_session_del(h_id("ttl-1")), ORS_NOT_FOUND, "del of the expired session");
    CHECK(redis_cli_key_int("EXISTS", h_key(CLUSTER, h_id("ttl-1"))) == 0, "the expired key is gone (redis-cli EXISTS)");

    CHECK_STATUS(ors_session_del(h_id("ttl-default")), ORS_OK, "cleanup: del ttl-default");
    CHECK_STATUS(ors_session_del(h_id("ttl-100")), ORS_OK, "cleanup: del ttl-100");
    CHECK_STATUS(ors_session_del(h_id("ttl-90d")), ORS_OK, "cleanup: del ttl-90d");
}

/* The stored key, as redis-cli sees it. */
static void check_key(const char *label, const char *id, const char *value)
{
    const char *key = h_key(CLUSTER, id);
    char got[1024];
    long long slot_key, slot_id, ttl;

    CHECK_STATUS(ors_session_put(id, (const uint8_t *)value, strlen(value), 600), ORS_OK, "%s: put", label);
    CHECK(redis_cli_key_int("EXISTS", key) == 1, "%s: the key is exactly \"%s\" (redis-cli EXISTS)", label, key);
    snprintf(got, sizeof got, "%s", redis_cli_key("GET", key));
    CHECK(strcmp(got, value) == 0, "%s: redis-cli GET returns the value verbatim (\"%s\")", label, got);
    CHECK(strcmp(redis_cli_key("TYPE", key), "string") == 0, "%s: the key is a Redis string", label);
    slot_key = h_keyslot(key);
    slot_id = h_keyslot(id);
    CHECK(slot_key >= 0 && slot_key == slot_id, "%s: CLUSTER KEYSLOT of the key (%lld) is that of the session id (%lld)",
          label, slot_key, slot_id);
    ttl = redis_cli_key_int("TTL", key);
    CHECK(ttl > 590 && ttl <= 600, "%s: the key has the TTL put gave it (%lld)", label, ttl);
}

static void check_keys(void)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int32_t st;
    char q[512];
    const char *key;
    const char *ids[3];
    int i;

    ids[0] = h_id("key");
    ids[1] = h_id("key with spaces: and colons");
    ids[2] = h_id("k\xc3\xa9y-*?[]");
    check_key("plain id", ids[0], "hello roundtrip");
    check_key("id with spaces and colons", ids[1], "value with spaces");
    check_key("id with UTF-8 and glob characters", ids[2], "v");
    for (i = 0; i < 3; i++) CHECK_STATUS(ors_session_del(ids[i]), ORS_OK, "cleanup: del key test %d", i);

    /* the other direction: a value written by redis-cli under the contract's
     * key is what get returns */
    key = h_key(CLUSTER, h_id("from-cli"));
    h_shell_quote(q, sizeof q, key);
    CHECK(strcmp(redis_cli("-c -p %d SET %s written-by-redis-cli EX 120", h_port(), q), "OK") == 0,
          "redis-cli SET %s", key);
    st = CHECK_STATUS(ors_session_get(h_id("from-cli"), &data, &len), ORS_OK, "get of a session written by redis-cli");
    CHECK(st == ORS_OK && len == 20 && data && memcmp(data, "written-by-redis-cli", 20) == 0,
          "get returns what redis-cli stored under ORS:" CLUSTER ":{<id>}");
    ors_free(data);
    CHECK_STATUS(ors_session_del(h_id("from-cli")), ORS_OK, "del of the session written by redis-cli");
    CHECK(redis_cli_key_int("EXISTS", key) == 0, "del removed the key (redis-cli EXISTS)");
}

static void check_delete(void)
{
    uint8_t *data = (uint8_t *)"x";
    size_t len = 3;
    const char *id = h_id("del");

    CHECK_STATUS(ors_session_del(id), ORS_NOT_FOUND, "del of a session never stored");
    CHECK_STATUS(ors_session_put(id, (const uint8_t *)"to delete", 9, 60), ORS_OK, "put");
    CHECK_STATUS(ors_session_del(id), ORS_OK, "del of an existing session");
    CHECK_STATUS(ors_session_del(id), ORS_NOT_FOUND, "del again");
    CHECK_STATUS(ors_session_get(id, &data, &len), ORS_NOT_FOUND, "get after del");
    CHECK(data == NULL && len == 0, "get after del: *data == NULL and *len == 0");
    CHECK(redis_cli_key_int("EXISTS", h_key(CLUSTER, id)) == 0, "the key is gone (redis-cli EXISTS)");
    CHECK_STATUS(ors_session_put(id, (const uint8_t *)"again", 5, 60), ORS_OK, "put after del");
    CHECK_STATUS(ors_session_del(id), ORS_OK, "del after the second put");
}

int main(void)
{
    char pattern[256];
    int leftovers;

    h_begin("test_roundtrip");
    {
        char extra[64];
        snprintf(extra, sizeof extra, "default-ttl=%d", DEFAULT_TTL);
        if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, extra)), ORS_OK, "init with %s", extra) != ORS_OK) {
            h_note("init failed, cannot run the rest: is the cluster up on %s?", h_nodes());
            return h_done();
        }
    }
    check_values();
    check_ttls();
    check_keys();
    check_delete();
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");

    snprintf(pattern, sizeof pattern, "ORS:%s:{%ld-*", CLUSTER, (long)getpid());
    leftovers = h_count_keys(pattern);
    CHECK(leftovers == 0, "no key of this run left under %s (found %d)", pattern, leftovers);
    h_check_all_keys_have_ttl(CLUSTER);
    return h_done();
}
