/*
 * test_restore.c - ors_session_restore, the bulk read of a backup ORS at
 * takeover: each live session whose id has the prefix exactly once with its
 * value (binary, empty, large), prefix taken literally, early stop, a slot
 * holding more sessions than one listing returns, put/get/del and shutdown
 * from inside the callback, its counters, and its sockets closed afterwards.
 * Keys live under ORS:t_restore:.
 */
#define _GNU_SOURCE 1
#include "harness.h"

#define CLUSTER "t_restore"
/* Sessions of the main set, and of one slot (more than the first listing
 * count of 1000, so the slot is listed again with a larger count). */
#define N_MAIN 3000
#define N_SLOT 1100
#define MAX_SEEN (N_MAIN + N_SLOT + 64)

/* CRC16 (XMODEM) as the cluster spec hashes keys, table-driven and
 * resumable (the slot ids are searched for: a prefix's CRC is reused). */
static uint16_t crc_table[256];

static void crc_init(void)
{
    int i, b;
    for (i = 0; i < 256; i++) {
        uint16_t crc = (uint16_t)(i << 8);
        for (b = 0; b < 8; b++) crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
        crc_table[i] = crc;
    }
}

static uint16_t crc16_more(uint16_t crc, const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) crc = (uint16_t)((crc << 8) ^ crc_table[((crc >> 8) ^ (uint8_t)s[i]) & 0xff]);
    return crc;
}

/* The value of session i: deterministic, some empty, some binary, a few large. */
static size_t value_of(unsigned i, uint8_t *out, size_t cap)
{
    size_t len, k;
    if (i % 97 == 0) return 0;
    len = (i % 501 == 0) ? 100000 : 20 + (i * 37) % 2000;
    if (len > cap) len = cap;
    for (k = 0; k < len; k++) out[k] = (uint8_t)((i * 131 + k * 7) ^ (k >> 3));
    return len;
}

struct seen {
    int calls;
    int stop_after; /* 0: never */
    int bad_user_data;
    int null_pointers;
    int wrong_values;
    int unknown_ids;
    int duplicates;
    int reported[MAX_SEEN];
    int foreign;
    /* Calls of the library made from inside the callback. */
    int nested_every;
    int nested_failed;
    int shutdown_after;
    int32_t shutdown_status;
};
static int restore_tag;
static struct seen seen;
static char prefix_main[32], prefix_slot[32];
static char slot_ids[N_SLOT][96];

/* Which session an id is: 0..N_MAIN-1 (main), N_MAIN.. (slot), -1 foreign. */
static int index_of(const char *id)
{
    size_t lm = strlen(prefix_main), ls = strlen(prefix_slot);
    int i;
    if (strncmp(id, prefix_main, lm) == 0) {
        i = atoi(id + lm);
        return (i >= 0 && i < N_MAIN) ? i : -1;
    }
    if (strncmp(id, prefix_slot, ls) == 0)
        for (i = 0; i < N_SLOT; i++)
            if (strcmp(id, slot_ids[i]) == 0) return N_MAIN + i;
    return -1;
}

static uint8_t expected[200000];

static int32_t restore_cb(const char *session_id, const uint8_t *data, size_t len, void *user_data)
{
    int i;
    size_t want;
    seen.calls++;
    if (user_data != &restore_tag) seen.bad_user_data++;
    if (!session_id || !data) {
        seen.null_pointers++;
        return 0;
    }
    i = index_of(session_id);
    if (i < 0) {
        seen.foreign++;
    } else {
        if (seen.reported[i]++) seen.duplicates++;
        want = value_of((unsigned)i, expected, sizeof expected);
        if (want != len || memcmp(expected, data, len) != 0) seen.wrong_values++;
    }
    if (seen.nested_every && seen.calls % seen.nested_every == 0) {
        uint8_t *got = NULL;
        size_t got_len = 0;
        const char *id = h_id("restore-nested");
        if (ors_session_put(id, data, len, 60) != ORS_OK) seen.nested_failed++;
        if (ors_session_get(id, &got, &got_len) != ORS_OK || got_len != len || (len && memcmp(got, data, len)))
            seen.nested_failed++;
        ors_free(got);
        if (ors_session_del(id) != ORS_OK) seen.nested_failed++;
    }
    if (seen.shutdown_after && seen.calls == seen.shutdown_after) seen.shutdown_status = ors_redis_shutdown();
    return (seen.stop_after && seen.calls >= seen.stop_after) ? 1 : 0;
}

static int32_t do_restore(const char *prefix)
{
    int stop = seen.stop_after, nested = seen.nested_every, shutdown_after = seen.shutdown_after;
    memset(&seen, 0, sizeof seen);
    seen.stop_after = stop;
    seen.nested_every = nested;
    seen.shutdown_after = shutdown_after;
    return ors_session_restore(prefix, restore_cb, &restore_tag);
}

static int count_reported(int from, int to, int *missing)
{
    int i, n = 0;
    *missing = 0;
    for (i = from; i < to; i++) {
        if (seen.reported[i]) n++;
        else (*missing)++;
    }
    return n;
}

static void fill(void)
{
    static uint8_t value[200000];
    char id[96];
    int i, failed = 0, made = 0;
    uint16_t slot;
    for (i = 0; i < N_MAIN; i++) {
        size_t len = value_of((unsigned)i, value, sizeof value);
        snprintf(id, sizeof id, "%s%d", prefix_main, i);
        if (ors_session_put(id, len ? value : NULL, len, 600) != ORS_OK) failed++;
    }
    /* N_SLOT ids of the slot of the first one. */
    crc_init();
    {
        /* Candidate suffixes "a", "b", .. "z", "aa", ... counted like an
         * odometer (no printf per try: this runs under valgrind too). */
        uint16_t base = crc16_more(0, prefix_slot, strlen(prefix_slot));
        char digits[16] = "a";
        size_t nd = 1, k;
        slot = crc16_more(base, digits, nd) & 16383;
        for (i = 0; made < N_SLOT && i < 100000000; i++) {
            for (k = nd; k-- > 0;) {
                if (digits[k] < 'z') {
                    digits[k]++;
                    break;
                }
                digits[k] = 'a';
                if (k == 0) digits[nd++] = 'a';
            }
            if ((crc16_more(base, digits, nd) & 16383) != slot) continue;
            snprintf(id, sizeof id, "%s%s", prefix_slot, digits);
        snprintf(slot_ids[made], sizeof slot_ids[made], "%s", id);
            {
                size_t len = value_of((unsigned)(N_MAIN + made), value, sizeof value);
                if (ors_session_put(id, len ? value : NULL, len, 600) != ORS_OK) failed++;
            }
            made++;
        }
    }
    CHECK(failed == 0 && made == N_SLOT, "stored %d + %d sessions (%d of them in slot %u; %d puts failed)", N_MAIN,
          N_SLOT, made, (unsigned)slot, failed);
}

static void check_restore(void)
{
    int32_t st;
    int missing, n;
    ors_redis_stats before, after;
    char foreign_cfg[4096], id[96];

    CHECK_STATUS(ors_session_restore("", restore_cb, &restore_tag), ORS_ERR_NOT_INITIALIZED, "restore before init");

    /* A session of another cluster name, under a prefix of ours. */
    snprintf(foreign_cfg, sizeof foreign_cfg, "%s", config_for(CLUSTER "_other", NULL));
    CHECK_STATUS(ors_redis_init(foreign_cfg), ORS_OK, "init (other cluster name)");
    snprintf(prefix_main, sizeof prefix_main, "%ld-rM-", (long)getpid());
    snprintf(prefix_slot, sizeof prefix_slot, "%ld-rS-", (long)getpid());
    snprintf(id, sizeof id, "%s7", prefix_main);
    CHECK_STATUS(ors_session_put(id, (const uint8_t *)"other", 5, 600), ORS_OK, "put (other cluster name)");
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");

    CHECK_STATUS(ors_redis_init(config_for(CLUSTER, "log-level=error")), ORS_OK, "init");
    CHECK_STATUS(ors_session_restore("", NULL, NULL), ORS_ERR_INVALID_ARGUMENT, "restore with fn == NULL");
    CHECK_STATUS(ors_session_restore("a\x01", restore_cb, &restore_tag), ORS_ERR_INVALID_ARGUMENT,
                 "restore with a prefix no id can have");
    fill();

    CHECK_STATUS(ors_redis_get_stats(&before), ORS_OK, "stats");
    st = do_restore(prefix_main);
    CHECK(st == ORS_OK, "restore(\"%s\") -> %s (%s)", prefix_main, h_code_name(st), st ? ors_last_error() : "");
    n = count_reported(0, N_MAIN, &missing);
    CHECK(n == N_MAIN && missing == 0 && seen.duplicates == 0,
          "restore(prefix): each of the %d sessions exactly once (%d reported, %d missing, %d twice)", N_MAIN, n,
          missing, seen.duplicates);
    CHECK(seen.wrong_values == 0, "restore(prefix): every value byte-exact, empty and 100 kB ones included (%d wrong)",
          seen.wrong_values);
    CHECK(seen.foreign == 0 && seen.calls == N_MAIN,
          "restore(prefix): nothing else, not the other cluster name's session (%d calls, %d foreign)", seen.calls,
          seen.foreign);
    CHECK(seen.bad_user_data == 0 && seen.null_pointers == 0, "restore passes user_data and never a NULL pointer");
    CHECK_STATUS(ors_redis_get_stats(&after), ORS_OK, "stats");
    CHECK(after.restored - before.restored == N_MAIN, "stats: restored counts the sessions handed over (+%llu)",
          (unsigned long long)(after.restored - before.restored));
    CHECK(after.restore_pages - before.restore_pages >= 16384,
          "stats: restore_pages counts every slot listed (+%llu)",
          (unsigned long long)(after.restore_pages - before.restore_pages));

    st = do_restore(prefix_slot);
    n = count_reported(N_MAIN, N_MAIN + N_SLOT, &missing);
    CHECK(st == ORS_OK && n == N_SLOT && missing == 0 && seen.duplicates == 0 && seen.wrong_values == 0,
          "restore: a slot of %d sessions (more than one listing) whole, once each (%s, %d reported, %d missing, %d "
          "twice, %d wrong)",
          N_SLOT, h_code_name(st), n, missing, seen.duplicates, seen.wrong_values);

    st = do_restore(NULL);
    n = count_reported(0, N_MAIN + N_SLOT, &missing);
    CHECK(st == ORS_OK && missing == 0 && seen.duplicates == 0 && seen.wrong_values == 0,
          "restore(NULL): every session of this cluster name once (%s, %d of %d, %d twice)", h_code_name(st), n,
          N_MAIN + N_SLOT, seen.duplicates);

    /* The prefix is literal: a glob character matches only itself. */
    snprintf(id, sizeof id, "%ld-r*", (long)getpid());
    st = do_restore(id);
    CHECK(st == ORS_OK && seen.calls == 0, "restore(\"%s\") takes the prefix literally (%s, %d calls)", id,
          h_code_name(st), seen.calls);

    /* Early stop. */
    seen.stop_after = 5;
    st = do_restore(prefix_main);
    CHECK(st == ORS_OK && seen.calls == 5, "restore stops when fn returns non-zero: OK after 5 calls (%s, %d calls)",
          h_code_name(st), seen.calls);
    seen.stop_after = 0;

    /* The library's calls from inside the callback, on the same thread. */
    seen.nested_every = 50;
    st = do_restore(prefix_main);
    n = count_reported(0, N_MAIN, &missing);
    CHECK(st == ORS_OK && n == N_MAIN && seen.nested_failed == 0,
          "put/get/del from inside the callback work, and the restore goes on (%s, %d reported, %d nested failed)",
          h_code_name(st), n, seen.nested_failed);
    seen.nested_every = 0;

    /* Deleted sessions are not reported. */
    for (n = 0; n < 10; n++) {
        snprintf(id, sizeof id, "%s%d", prefix_main, n);
        ors_session_del(id);
    }
    st = do_restore(prefix_main);
    n = count_reported(0, N_MAIN, &missing);
    CHECK(st == ORS_OK && n == N_MAIN - 10 && missing == 10, "after 10 deletes, %d reported (got %d, %s)",
          N_MAIN - 10, n, h_code_name(st));

    /* Shutdown from inside the callback ends the restore; its workers'
     * sockets are closed when shutdown returns. */
    seen.shutdown_after = 100;
    st = do_restore(prefix_main);
    h_save_error();
    CHECK(st == ORS_ERR_NOT_INITIALIZED && seen.shutdown_status == ORS_OK && seen.calls == 100,
          "shutdown from the callback: restore returns ORS_ERR_NOT_INITIALIZED after it (%s, shutdown %s, %d calls)",
          h_code_name(st), h_code_name(seen.shutdown_status), seen.calls);
    CHECK_ERROR_MENTIONS("shut down", "the error says the library was shut down");
    seen.shutdown_after = 0;
    n = h_wait_sockets_at_most(0, 2000);
    CHECK(n == 0, "no socket left open after the shutdown (%d)", n);

    /* Clean up. */
    CHECK_STATUS(ors_redis_init(config_for(CLUSTER, NULL)), ORS_OK, "init again");
    seen.stop_after = 0;
    st = do_restore(NULL);
    CHECK(st == ORS_OK, "restore after a new init (%s)", h_code_name(st));
    for (n = 0; n < N_MAIN; n++) {
        snprintf(id, sizeof id, "%s%d", prefix_main, n);
        ors_session_del(id);
    }
    for (n = 0; n < N_SLOT; n++) ors_session_del(slot_ids[n]);
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    CHECK_STATUS(ors_redis_init(foreign_cfg), ORS_OK, "init (other cluster name)");
    snprintf(id, sizeof id, "%s7", prefix_main);
    ors_session_del(id);
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
}

int main(void)
{
    h_begin("test_restore");
    check_restore();
    return h_done();
}
