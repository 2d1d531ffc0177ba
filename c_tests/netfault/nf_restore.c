/*
 * nf_restore.c - ors_session_restore and a blackholed master: the client
 * port of a master is blackholed a fifth of the way through a restore (the
 * cluster still sees the master alive, so no replica takes over). The
 * restore fails with ORS_ERR_TIMEOUT or ORS_ERR_CONNECTION, an error that
 * names the node and its unread slots, within op-timeout plus one wait
 * (connect or reply timeout) of the blackhole, and no gap between two
 * callbacks is longer than that either. Healed, a restore reads every
 * session once.
 */
#include "netfault.h"

#define OP_TIMEOUT 2000
#define WAIT_MS 1000 /* redis-connect-timeout and redis-socket-timeout */
#define N 20000

static int victim;
static int calls, blackholed, rule_ok;
static int64_t blackholed_us, last_cb_us, longest_gap_us;
static int *reported;
static int twice, wrong;
static char prefix[32];

static int32_t restore_cb(const char *id, const uint8_t *data, size_t len, void *user_data)
{
    int64_t now = chaos_now_us();
    uint32_t seq = 0;
    int i = atoi(id + strlen(prefix));
    (void)user_data;
    if (last_cb_us && now - last_cb_us > longest_gap_us) longest_gap_us = now - last_cb_us;
    if (i >= 0 && i < N) {
        if (reported[i]++) twice++;
        if (!chaos_value_ok(data, len, chaos_tag(id), &seq) || seq != 1) wrong++;
    }
    if (++calls == N / 5 && blackholed) {
        rule_ok = nf_blackhole_client(victim);
        blackholed_us = chaos_now_us();
    }
    last_cb_us = chaos_now_us();
    return 0;
}

static int32_t restore(int blackhole)
{
    calls = 0;
    blackholed = blackhole;
    last_cb_us = 0;
    longest_gap_us = 0;
    twice = wrong = 0;
    memset(reported, 0, N * sizeof *reported);
    return ors_session_restore(prefix, restore_cb, NULL);
}

int main(void)
{
    static struct chaos_topo topo;
    static uint8_t buf[CHAOS_VALUE_MAX];
    char id[64], node[64], extra[128];
    int i, failed = 0, missing = 0;
    int32_t st;
    int64_t took_ms, bound_ms = OP_TIMEOUT + WAIT_MS + NF_SLACK_MS;

    h_begin("nf_restore");
    reported = (int *)calloc(N, sizeof *reported);
    snprintf(extra, sizeof extra, "redis-connect-timeout=%d redis-socket-timeout=%d", WAIT_MS, WAIT_MS);
    if (!reported || !(victim = nf_begin(&topo, "nfrestore", OP_TIMEOUT, extra))) return h_done();
    snprintf(prefix, sizeof prefix, "%ld-nr-", (long)getpid());
    for (i = 0; i < N; i++) {
        snprintf(id, sizeof id, "%s%d", prefix, i);
        if (ors_session_put(id, buf, chaos_value(buf, chaos_tag(id), 1), 600) != ORS_OK) failed++;
    }
    CHECK(failed == 0, "%d sessions written (%d failed)", N, failed);

    st = restore(1);
    took_ms = (chaos_now_us() - blackholed_us) / 1000;
    h_save_error();
    CHECK(rule_ok, "client port of master %s:%d blackholed after %d sessions", nf_host(victim), victim, N / 5);
    CHECK(st == ORS_ERR_TIMEOUT || st == ORS_ERR_CONNECTION, "the restore fails: %s", h_code_name(st));
    snprintf(node, sizeof node, "%s:%d", nf_host(victim), victim);
    CHECK_ERROR_MENTIONS(node, "the error names the blackholed node %s", node);
    CHECK_ERROR_MENTIONS("slots", "the error names the slots not read");
    h_note("error: %s", h_saved_error());
    CHECK(took_ms <= bound_ms, "the restore returned %lld ms after the blackhole (<= op-timeout %d + one wait %d + %d)",
          (long long)took_ms, OP_TIMEOUT, WAIT_MS, NF_SLACK_MS);
    CHECK(longest_gap_us / 1000 <= bound_ms, "no wait between two callbacks longer than %lld ms (longest %.0f ms)",
          (long long)bound_ms, longest_gap_us / 1000.0);
    CHECK(twice == 0 && wrong == 0, "what was reported was reported once, exactly (%d twice, %d wrong)", twice, wrong);
    printf("# FIGURE restore, master blackholed: error after %lld ms (op-timeout %d); %d sessions reported before it\n",
           (long long)took_ms, OP_TIMEOUT, calls);

    nf_heal();
    st = restore(0);
    for (i = 0; i < N; i++)
        if (!reported[i]) missing++;
    CHECK(st == ORS_OK && missing == 0 && twice == 0 && wrong == 0,
          "healed: every session once, exactly (%s, %d missing, %d twice, %d wrong)", h_code_name(st), missing, twice,
          wrong);
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    free(reported);
    return h_done();
}
