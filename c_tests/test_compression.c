/*
 * test_compression.c - compressed values (docs/compression.md) on a real
 * cluster: with compression=off the stored bytes are exactly the given ones
 * (what an older release reads during a rolling upgrade); with zstd and lz4
 * (turned on live with ors_redis_reconfigure) the stored value carries the
 * envelope, is smaller on the server (MEMORY USAGE, used_memory) and get and
 * restore return the exact bytes; a plain value written with compression
 * off reads back with compression on; a corrupt envelope written with
 * redis-cli is ORS_ERR_SERVER naming the node, in get and in restore; an
 * envelope that would decompress past max-value-bytes is ORS_ERR_TOO_LARGE.
 * Keys live under ORS:t_compression:.
 */
#define _GNU_SOURCE 1
#include "harness.h"

#define CLUSTER "t_compression"
#define N_MEM 300
#define MEM_LEN 4000

static const uint8_t MAGIC[8] = {0x00, 0x89, 'O', 'R', 'S', 'z', '\r', '\n'};

/* Session-like text: a JSON data model whose values vary with `seed`. */
static size_t session_text(unsigned seed, uint8_t *out, size_t len)
{
    size_t n = 0;
    unsigned i = 0;
    char item[160];
    while (n < len) {
        int k = snprintf(item, sizeof item,
                         "{\"name\":\"var%u\",\"value\":\"%u-%08x\",\"ts\":\"2026-12-07T10:%02u:%02u.%03uZ\"},", i,
                         seed, seed * 2654435761u + i, i % 60, (i * 7) % 60, (seed + i) % 1000);
        size_t take = (size_t)k < len - n ? (size_t)k : len - n;
        memcpy(out + n, item, take);
        n += take;
        i++;
    }
    return n;
}

/* The first `cap` stored bytes of a session's key, as redis-cli GETRANGE
 * returns them (raw on a pipe); the count read. */
static long stored_prefix(const char *id, uint8_t *out, size_t cap)
{
    char q[1024], buf[256];
    long n;
    h_shell_quote(q, sizeof q, h_key(CLUSTER, id));
    n = h_cli_capture(buf, sizeof buf, "-c -p %d GETRANGE %s 0 %zu", h_port(), q, cap - 1);
    if (n > 0 && buf[n - 1] == '\n') n--;
    if (n > (long)cap) n = (long)cap;
    if (n > 0) memcpy(out, buf, (size_t)n);
    return n;
}

static int starts_with_magic(const char *id)
{
    uint8_t prefix[8];
    return stored_prefix(id, prefix, sizeof prefix) == 8 && memcmp(prefix, MAGIC, 8) == 0;
}

/* Stores `len` bytes given as a printf(1) format under the session's key. */
static int raw_set(const char *id, const char *printf_bytes)
{
    char q[1024], cmd[4096];
    h_shell_quote(q, sizeof q, h_key(CLUSTER, id));
    snprintf(cmd, sizeof cmd, "printf '%s' | timeout 20 %s -h 127.0.0.1 -c -p %d -x SET %s >/dev/null",
             printf_bytes, h_env("REDIS_CLI", "redis-cli"), h_port(), q);
    return system(cmd);
}

/* Puts `len` bytes and reads them back: 1 when they are the same bytes. */
static int round_trip(const char *id, const uint8_t *value, size_t len)
{
    uint8_t *data = NULL;
    size_t got = 0;
    int same;
    if (ors_session_put(id, value, len, 300) != ORS_OK) return 0;
    if (ors_session_get(id, &data, &got) != ORS_OK) return 0;
    same = got == len && (len == 0 || memcmp(data, value, len) == 0);
    ors_free(data);
    return same;
}

static long long used_memory_sum(void)
{
    int ports[16], n = h_masters(ports, 16, -1), i;
    long long sum = 0;
    char out[8192];
    for (i = 0; i < n; i++) {
        char *at;
        h_cli_capture(out, sizeof out, "-p %d INFO memory", ports[i]);
        at = strstr(out, "used_memory:");
        if (!at) return -1;
        sum += strtoll(at + strlen("used_memory:"), NULL, 10);
    }
    return sum;
}

/* Puts N_MEM sessions of MEM_LEN bytes under ids "<tag>-<i>"; returns the
 * growth of used_memory over every master. */
static long long memory_of_sessions(const char *tag, uint8_t *buf)
{
    long long before = used_memory_sum(), after;
    char suffix[64];
    int i, ok = 1;
    for (i = 0; i < N_MEM; i++) {
        snprintf(suffix, sizeof suffix, "%s-%d", tag, i);
        session_text((unsigned)i + 17, buf, MEM_LEN);
        ok &= ors_session_put(h_id(suffix), buf, MEM_LEN, 300) == ORS_OK;
    }
    CHECK(ok, "%d sessions of %d bytes put (%s)", N_MEM, MEM_LEN, tag);
    after = used_memory_sum();
    return after - before;
}

struct restored {
    const char *want_id;
    const uint8_t *want;
    size_t want_len;
    int found_exact;
};

static int32_t on_restore(const char *session_id, const uint8_t *data, size_t len, void *user_data)
{
    struct restored *r = user_data;
    if (strcmp(session_id, r->want_id) == 0)
        r->found_exact = len == r->want_len && memcmp(data, r->want, len) == 0;
    return 0;
}

/* `MEMORY USAGE key`, asked of the master that serves the key's slot: before
 * Redis 6, MEMORY USAGE is not redirected in a cluster (another master
 * answers nil), so redis-cli -c cannot follow it. */
static long long memory_usage(const char *key)
{
    char q[4096];
    const char *out;
    char *end;
    long long slot = h_keyslot(key), v;
    int port;
    if (slot < 0 || h_masters(&port, 1, (int)slot) != 1) return LLONG_MIN;
    h_shell_quote(q, sizeof q, key);
    out = redis_cli("-p %d MEMORY USAGE %s", port, q);
    errno = 0;
    v = strtoll(out, &end, 10);
    return (!*out || errno || *end) ? LLONG_MIN : v;
}

int main(void)
{
    static uint8_t value[200000], buf[MEM_LEN];
    const char *plain_id = h_id("plain"), *zstd_id = h_id("zstd"), *lz4_id = h_id("lz4");
    const char *short_id = h_id("short"), *corrupt_id = h_id("corrupt"), *big_id = h_id("big");
    char extra[256], prefix[64];
    uint8_t stored[64];
    uint8_t *data = NULL;
    size_t len = 0, vlen = session_text(1, value, 8000);
    long long mem_plain, mem_zstd, usage_plain, usage_zstd;
    int32_t st;
    struct restored r;

    h_begin("test_compression");
    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, "")), ORS_OK, "init with compression=off (the default)") !=
        ORS_OK)
        return h_done();

    /* Off: the stored bytes are exactly the given ones. */
    CHECK(round_trip(plain_id, value, vlen), "compression=off: put and get %zu bytes", vlen);
    CHECK(redis_cli_key_int("STRLEN", h_key(CLUSTER, plain_id)) == (long long)vlen,
          "compression=off stores %zu bytes: as many as given", vlen);
    CHECK(stored_prefix(plain_id, stored, 40) == 40 && memcmp(stored, value, 40) == 0,
          "compression=off stores the given bytes (an older release reads them as they are)");
    usage_plain = memory_usage(h_key(CLUSTER, plain_id));

    /* zstd, turned on live. */
    CHECK_STATUS(ors_redis_reconfigure(config_for(CLUSTER, "compression=zstd")), ORS_OK,
                 "reconfigure: compression=zstd");
    CHECK(round_trip(zstd_id, value, vlen), "compression=zstd: get returns the exact %zu bytes", vlen);
    CHECK(starts_with_magic(zstd_id), "the stored zstd value starts with the envelope's magic");
    usage_zstd = memory_usage(h_key(CLUSTER, zstd_id));
    CHECK(redis_cli_key_int("STRLEN", h_key(CLUSTER, zstd_id)) * 3 < (long long)vlen,
          "zstd stores %lld of %zu bytes", redis_cli_key_int("STRLEN", h_key(CLUSTER, zstd_id)), vlen);
    if (usage_plain == LLONG_MIN && strstr(redis_cli("-p %d MEMORY USAGE x", h_port()), "unknown command")) {
        h_note("MEMORY USAGE: not before Redis 4 (STRLEN above compares the stored bytes)");
    } else {
        CHECK(usage_zstd > 0 && usage_zstd * 3 < usage_plain, "MEMORY USAGE: %lld bytes with zstd, %lld plain",
              usage_zstd, usage_plain);
    }
    st = CHECK_STATUS(ors_session_get(plain_id, &data, &len), ORS_OK, "the plain value, read with compression=zstd");
    CHECK(st == ORS_OK && len == vlen && memcmp(data, value, vlen) == 0, "it is returned as stored");
    ors_free(data);
    data = NULL;
    CHECK(round_trip(short_id, (const uint8_t *)"short value", 11), "a short value round-trips");
    CHECK(redis_cli_key_int("STRLEN", h_key(CLUSTER, short_id)) == 11,
          "a value under compression-min-bytes is stored plain");
    CHECK(round_trip(h_id("empty"), (const uint8_t *)"", 0), "an empty value round-trips");
    {
        /* Values that begin with the magic round-trip too (wrapped). */
        uint8_t tricky[300];
        memcpy(tricky, MAGIC, 8);
        memset(tricky + 8, 'x', sizeof tricky - 8);
        CHECK(round_trip(h_id("magic"), tricky, sizeof tricky), "a value that begins with the magic round-trips");
        CHECK(round_trip(h_id("magic-short"), tricky, 9), "and a short one");
    }

    /* lz4, live again. */
    CHECK_STATUS(ors_redis_reconfigure(config_for(CLUSTER, "compression=lz4")), ORS_OK,
                 "reconfigure: compression=lz4");
    CHECK(round_trip(lz4_id, value, vlen), "compression=lz4: get returns the exact %zu bytes", vlen);
    CHECK(starts_with_magic(lz4_id), "the stored lz4 value starts with the envelope's magic");
    CHECK(redis_cli_key_int("STRLEN", h_key(CLUSTER, lz4_id)) < (long long)vlen / 2, "lz4 stores %lld of %zu bytes",
          redis_cli_key_int("STRLEN", h_key(CLUSTER, lz4_id)), vlen);
    st = CHECK_STATUS(ors_session_get(zstd_id, &data, &len), ORS_OK, "the zstd value, read with compression=lz4");
    CHECK(st == ORS_OK && len == vlen && memcmp(data, value, vlen) == 0, "exact bytes");
    ors_free(data);
    data = NULL;

    /* Back to off: compressed values stay readable. */
    CHECK_STATUS(ors_redis_reconfigure(config_for(CLUSTER, "")), ORS_OK, "reconfigure: compression=off again");
    st = CHECK_STATUS(ors_session_get(lz4_id, &data, &len), ORS_OK, "the lz4 value, read with compression=off");
    CHECK(st == ORS_OK && len == vlen && memcmp(data, value, vlen) == 0, "exact bytes");
    ors_free(data);
    data = NULL;

    /* Restore returns what ORS gave, compressed or not. */
    snprintf(prefix, sizeof prefix, "%ld-", (long)getpid());
    r = (struct restored){zstd_id, value, vlen, 0};
    CHECK_STATUS(ors_session_restore(prefix, on_restore, &r), ORS_OK, "restore");
    CHECK(r.found_exact, "restore hands over the zstd session's exact bytes");
    r = (struct restored){plain_id, value, vlen, 0};
    CHECK_STATUS(ors_session_restore(prefix, on_restore, &r), ORS_OK, "restore");
    CHECK(r.found_exact, "and the plain session's");

    /* A dictionary, set live (trained and stored by the operator command):
     * a value compressed with it names it; one written after it is unset
     * does not; both read back, by get and by restore. */
    {
        char id[9], key[160], small[512];
        const char *dict_id = h_id("dict"), *after_id = h_id("after-dict");
        size_t small_len = h_session_like(777, small, sizeof small);
        uint8_t header[22], id_bytes[4];
        unsigned long parsed;
        if (CHECK(h_train_dictionary(CLUSTER, id), "a dictionary trained and stored by $ORS_CLI (%s)",
                  h_env("ORS_CLI", "unset"))) {
            snprintf(extra, sizeof extra, "compression=zstd compression-dictionary=%s compression-min-bytes=64", id);
            CHECK_STATUS(ors_redis_reconfigure(config_for(CLUSTER, extra)), ORS_OK, "reconfigure: dictionary %s", id);
            CHECK(round_trip(dict_id, (const uint8_t *)small, small_len), "a %zu-byte session round-trips",
                  small_len);
            parsed = strtoul(id, NULL, 16);
            id_bytes[0] = (uint8_t)parsed, id_bytes[1] = (uint8_t)(parsed >> 8);
            id_bytes[2] = (uint8_t)(parsed >> 16), id_bytes[3] = (uint8_t)(parsed >> 24);
            CHECK(stored_prefix(dict_id, header, sizeof header) == 22 && memcmp(header, MAGIC, 8) == 0 &&
                      header[13] == 3 && memcmp(header + 18, id_bytes, 4) == 0,
                  "stored as algorithm 3, naming dictionary %s", id);
            CHECK(redis_cli_key_int("STRLEN", h_key(CLUSTER, dict_id)) * 2 < (long long)small_len,
                  "in %lld of %zu bytes", redis_cli_key_int("STRLEN", h_key(CLUSTER, dict_id)), small_len);
            CHECK_STATUS(ors_redis_reconfigure(config_for(CLUSTER, "compression=zstd compression-min-bytes=64")),
                         ORS_OK, "reconfigure: the dictionary unset");
            CHECK(round_trip(after_id, (const uint8_t *)small, small_len), "a session written without it");
            CHECK(stored_prefix(after_id, header, sizeof header) == 22 && header[13] == 2,
                  "stored as algorithm 2 (zstd alone)");
            st = CHECK_STATUS(ors_session_get(dict_id, &data, &len), ORS_OK, "the dictionary's session, read again");
            CHECK(st == ORS_OK && len == small_len && memcmp(data, small, len) == 0, "exact bytes");
            ors_free(data);
            data = NULL;
            r = (struct restored){dict_id, (const uint8_t *)small, small_len, 0};
            CHECK_STATUS(ors_session_restore(prefix, on_restore, &r), ORS_OK, "restore");
            CHECK(r.found_exact, "restore hands over the dictionary's session's exact bytes");
            ors_session_del(dict_id);
            ors_session_del(after_id);
            snprintf(key, sizeof key, "ORS:%s:dict:%s", CLUSTER, id);
            redis_cli_key("DEL", key);
        }
    }

    /* Too large once decompressed: a 150000-byte value, then a smaller max. */
    memset(value, 'a', 150000);
    snprintf(extra, sizeof extra, "compression=zstd");
    CHECK_STATUS(ors_redis_reconfigure(config_for(CLUSTER, extra)), ORS_OK, "reconfigure: compression=zstd");
    CHECK(round_trip(big_id, value, 150000), "a 150000-byte value round-trips");
    CHECK(redis_cli_key_int("STRLEN", h_key(CLUSTER, big_id)) < 1000, "stored in %lld bytes",
          redis_cli_key_int("STRLEN", h_key(CLUSTER, big_id)));
    CHECK_STATUS(ors_redis_reconfigure(config_for(CLUSTER, "compression=zstd max-value-bytes=100000")), ORS_OK,
                 "reconfigure: max-value-bytes=100000");
    data = NULL;
    st = CHECK_STATUS(ors_session_get(big_id, &data, &len), ORS_ERR_TOO_LARGE,
                      "get of a value that decompresses past max-value-bytes");
    h_save_error();
    CHECK(data == NULL, "no buffer handed out");
    CHECK(strstr(h_saved_error(), "max-value-bytes") != NULL, "the message says why (\"%s\")", h_saved_error());
    CHECK_STATUS(ors_session_del(big_id), ORS_OK, "del");

    /* A corrupt envelope: the magic, then a header whose checksum fails. */
    CHECK(raw_set(corrupt_id, "\\000\\211ORSz\\r\\n\\001\\002\\003\\004\\001\\002\\020\\000\\000\\000garbage") == 0,
          "a corrupt envelope written with redis-cli");
    CHECK(redis_cli_key_int("STRLEN", h_key(CLUSTER, corrupt_id)) == 25, "25 bytes stored");
    data = NULL;
    st = CHECK_STATUS(ors_session_get(corrupt_id, &data, &len), ORS_ERR_SERVER, "get of a corrupt envelope");
    h_save_error();
    CHECK(data == NULL, "no buffer handed out");
    CHECK(strstr(h_saved_error(), "corrupt compressed value") != NULL && strstr(h_saved_error(), "node 127.0.0.1:"),
          "the message says so and names the node (\"%s\")", h_saved_error());
    r = (struct restored){zstd_id, value, vlen, 0};
    st = CHECK_STATUS(ors_session_restore(prefix, on_restore, &r), ORS_ERR_SERVER, "restore meets it");
    h_save_error();
    CHECK(strstr(h_saved_error(), "corrupt compressed value") != NULL && strstr(h_saved_error(), "corrupt") &&
              strstr(h_saved_error(), "127.0.0.1:"),
          "restore's message names it and the node (\"%s\")", h_saved_error());
    CHECK_STATUS(ors_session_del(corrupt_id), ORS_OK, "del the corrupt one");
    /* A plain value that starts with part of the magic is returned as stored. */
    CHECK(raw_set(corrupt_id, "\\000\\211ORSz plain") == 0, "a plain value with 6 bytes of the magic");
    st = CHECK_STATUS(ors_session_get(corrupt_id, &data, &len), ORS_OK, "get");
    CHECK(st == ORS_OK && len == 12 && memcmp(data, "\0\x89ORSz plain", 12) == 0, "returned as stored");
    ors_free(data);
    CHECK_STATUS(ors_session_del(corrupt_id), ORS_OK, "del");

    /* Memory on the server: the same sessions, plain and with zstd. */
    CHECK_STATUS(ors_redis_reconfigure(config_for(CLUSTER, "")), ORS_OK, "compression=off");
    mem_plain = memory_of_sessions("mem-off", buf);
    CHECK_STATUS(ors_redis_reconfigure(config_for(CLUSTER, "compression=zstd")), ORS_OK, "compression=zstd");
    mem_zstd = memory_of_sessions("mem-zstd", buf);
    h_note("used_memory for %d sessions of %d bytes: %lld plain, %lld zstd (%.1f%% less)", N_MEM, MEM_LEN, mem_plain,
           mem_zstd, mem_plain > 0 ? 100.0 * (double)(mem_plain - mem_zstd) / (double)mem_plain : 0.0);
    CHECK(mem_plain > 0 && mem_zstd > 0 && mem_zstd * 2 < mem_plain,
          "used_memory grows by less than half as much with zstd (%lld vs %lld)", mem_zstd, mem_plain);

    {
        int i, gone = 0;
        char suffix[64];
        for (i = 0; i < 2 * N_MEM; i++) {
            snprintf(suffix, sizeof suffix, "mem-%s-%d", i < N_MEM ? "off" : "zstd", i % N_MEM);
            gone += ors_session_del(h_id(suffix)) == ORS_OK;
        }
        CHECK(gone == 2 * N_MEM, "the measured sessions deleted (%d)", gone);
    }
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    return h_done();
}
