/*
 * acl_checks.c - authentication against a cluster with ACL users
 * (c_tests/acl.conf, ctest label acl): the least-privilege ORS user works end
 * to end; a user without access to ORS:* keys gets ORS_ERR_AUTH naming NOPERM
 * and the command; a wrong password gets ORS_ERR_AUTH (WRONGPASS); the
 * password alone logs in as the default user, as with requirepass; a user
 * with the rule of before the restore (no cluster|getkeysinslot) is told
 * at init which permission the restore lacks and the ACL line that adds
 * it, still scans (with SCAN) and restores (by SCAN, each session exactly
 * once, with its value, one warn line saying why it is slower); and no
 * password ever reaches ors_last_error() or a log line, even at trace level.
 * Keys live under ORS:t_acl:.
 */
#define _GNU_SOURCE 1
#include "harness.h"

#define CLUSTER "t_acl"
#define ORS_PW "ors-test-pw"
#define STRANGER_PW "stranger-pw"
#define LEGACY_PW "legacy-pw"
#define DEFAULT_PW "ors-default-pw"

static char cfg[2048];
static const char *with_auth(const char *auth, const char *extra)
{
    snprintf(cfg, sizeof cfg, "redis-nodes=%s cluster-name=" CLUSTER " %s %s", h_nodes(), auth, extra ? extra : "");
    return cfg;
}

/* Every log line, to look for passwords in. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_lines, log_leaks, restore_acl_lines, restore_slower_lines;
static void log_cb(int32_t level, const char *message, void *user_data)
{
    (void)level;
    (void)user_data;
    pthread_mutex_lock(&log_lock);
    log_lines++;
    if (message && strstr(message, "ACL SETUSER ors-legacy +cluster|getkeysinslot")) restore_acl_lines++;
    if (message && strstr(message, "ors_session_restore reads by SCAN pages")) restore_slower_lines++;
    if (message && (strstr(message, ORS_PW) || strstr(message, STRANGER_PW) || strstr(message, DEFAULT_PW) ||
                    strstr(message, LEGACY_PW) ||
                    strstr(message, "wrong-pw-123")))
        log_leaks++;
    pthread_mutex_unlock(&log_lock);
}

static int legacy_seen;
static int32_t count_cb(const char *session_id, void *user_data)
{
    (void)session_id;
    (void)user_data;
    legacy_seen++;
    return 0;
}

/* Each legacy session restored: how often, and with its value ("l<i>"). */
static int restored[20], restored_wrong;
static int32_t restore_count_cb(const char *session_id, const uint8_t *data, size_t len, void *user_data)
{
    const char *dash = strrchr(session_id, '-');
    int i = dash ? atoi(dash + 1) : -1;
    char want[16];
    (void)user_data;
    if (i < 0 || i >= 20) {
        restored_wrong++;
        return 0;
    }
    restored[i]++;
    snprintf(want, sizeof want, "l%d", i);
    if (len != strlen(want) || memcmp(data, want, len) != 0) restored_wrong++;
    return 0;
}

static void no_secret_in_last_error(const char *what)
{
    const char *e = ors_last_error();
    CHECK(!strstr(e, ORS_PW) && !strstr(e, STRANGER_PW) && !strstr(e, DEFAULT_PW) && !strstr(e, LEGACY_PW) &&
              !strstr(e, "wrong-pw-123"),
          "%s: no password in ors_last_error() (\"%s\")", what, e);
}

int main(void)
{
    const char *id;
    uint8_t *data = NULL;
    size_t len = 0;
    int32_t st;

    h_begin("acl_checks");
    CHECK_STATUS(ors_redis_set_logger(log_cb, NULL), ORS_OK, "a logger that looks for passwords");

    /* The least-privilege user, at trace level. */
    st = CHECK_STATUS(ors_redis_init(with_auth("username=ors password=" ORS_PW, "log-level=trace")), ORS_OK,
                      "init as the least-privilege ORS user");
    if (st == ORS_OK) {
        id = h_id("acl");
        CHECK_STATUS(ors_session_put(id, (const uint8_t *)"v1", 2, 60), ORS_OK, "put as ors");
        CHECK_STATUS(ors_session_get(id, &data, &len), ORS_OK, "get as ors");
        CHECK(len == 2 && data && memcmp(data, "v1", 2) == 0, "the value reads back");
        ors_free(data);
        data = NULL;
        CHECK_STATUS(ors_session_del(id), ORS_OK, "del as ors");
        CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    }

    /* A user without access to ORS:* keys. */
    st = CHECK_STATUS(ors_redis_init(with_auth("username=stranger password=" STRANGER_PW, "log-level=trace")), ORS_OK,
                      "init as a user who may read the topology but not ORS:* keys");
    if (st == ORS_OK) {
        id = h_id("stranger");
        CHECK_STATUS(ors_session_put(id, (const uint8_t *)"x", 1, 60), ORS_ERR_AUTH, "put without key access");
        CHECK_ERROR_MENTIONS("NOPERM", "the message says NOPERM");
        CHECK_ERROR_MENTIONS("SET", "the message names the command");
        no_secret_in_last_error("NOPERM");
        CHECK_STATUS(ors_session_get(id, &data, &len), ORS_ERR_AUTH, "get without key access");
        CHECK_ERROR_MENTIONS("GET", "the message names the command");
        CHECK(data == NULL && len == 0, "a refused get leaves NULL and 0");
        CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    }

    /* The rule of before the restore: no cluster|getkeysinslot. */
    st = CHECK_STATUS(ors_redis_init(with_auth("username=ors-legacy password=" LEGACY_PW, NULL)), ORS_OK,
                      "init as a user of the rule without cluster|getkeysinslot");
    CHECK(restore_acl_lines == 1, "init says what the restore lacks and the ACL line that adds it (%d lines)",
          restore_acl_lines);
    if (st == ORS_OK) {
        int i, once = 0;
        char prefix[64], sid[96], value[16];
        snprintf(prefix, sizeof prefix, "%ld-legacy-", (long)getpid());
        for (i = 0; i < 20; i++) {
            snprintf(sid, sizeof sid, "%s%d", prefix, i);
            snprintf(value, sizeof value, "l%d", i);
            ors_session_put(sid, (const uint8_t *)value, strlen(value), 60);
        }
        legacy_seen = 0;
        CHECK_STATUS(ors_session_scan(prefix, count_cb, NULL), ORS_OK, "scan pages with SCAN where slots cannot be listed");
        CHECK(legacy_seen == 20, "the scan reported the 20 sessions (%d)", legacy_seen);
        CHECK_STATUS(ors_session_restore(prefix, restore_count_cb, NULL), ORS_OK,
                     "restore without cluster|getkeysinslot (by SCAN)");
        for (i = 0; i < 20; i++) once += restored[i] == 1;
        CHECK(once == 20 && restored_wrong == 0, "every session restored exactly once with its value (%d once, %d wrong)",
              once, restored_wrong);
        CHECK_STATUS(ors_session_restore(prefix, restore_count_cb, NULL), ORS_OK, "a second restore");
        CHECK(restore_slower_lines == 1, "one warn line says why the restore is slower (%d)", restore_slower_lines);
        no_secret_in_last_error("restore by SCAN");
        for (i = 0; i < 20; i++) {
            snprintf(sid, sizeof sid, "%s%d", prefix, i);
            ors_session_del(sid);
        }
        CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    }

    /* A wrong password. */
    CHECK_STATUS(ors_redis_init(with_auth("username=ors password=wrong-pw-123", "log-level=trace")), ORS_ERR_AUTH,
                 "init with a wrong password");
    CHECK_ERROR_MENTIONS("WRONGPASS", "the message says WRONGPASS");
    no_secret_in_last_error("WRONGPASS");

    /* No password at all. */
    CHECK_STATUS(ors_redis_init(with_auth("", NULL)), ORS_ERR_AUTH, "init without a password");
    CHECK_ERROR_MENTIONS("NOAUTH", "the message says NOAUTH");

    /* The password alone: the default user, as with requirepass. */
    st = CHECK_STATUS(ors_redis_init(with_auth("password=" DEFAULT_PW, "log-level=trace")), ORS_OK,
                      "init with the password alone (requirepass)");
    if (st == ORS_OK) {
        id = h_id("default");
        CHECK_STATUS(ors_session_put(id, (const uint8_t *)"d", 1, 60), ORS_OK, "put as the default user");
        CHECK_STATUS(ors_session_del(id), ORS_OK, "del as the default user");
        CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    }

    pthread_mutex_lock(&log_lock);
    h_note("%d log lines at trace level", log_lines);
    CHECK(log_lines > 0, "the library logged at trace level (%d lines)", log_lines);
    CHECK(log_leaks == 0, "no log line holds a password (%d did)", log_leaks);
    pthread_mutex_unlock(&log_lock);
    CHECK_STATUS(ors_redis_set_logger(NULL, NULL), ORS_OK, "logger back to stderr");
    return h_done();
}
