/*
 * chaos_durability.c - nothing acknowledged is lost when a master dies.
 *
 * Worker threads write new sessions without pause (each put a session of its
 * own, so that each acknowledgement stands for exactly one key and value).
 * Each round SIGKILLs a master, waits for its replica's promotion, restarts
 * the killed node from its data and waits until it is a synced replica again.
 *
 * With wait-replicas=1, every put that returned ORS_OK must be readable
 * afterwards with exactly its bytes, over 5 rounds. Between the promotion and
 * the old master's return the new master has no replica, so puts on its
 * slots must return ORS_ERR_NOT_DURABLE (the write is applied, not durable).
 *
 * The same rounds run with wait-replicas=0, and the number of acknowledged
 * writes that were lost is measured (Redis replicates asynchronously).
 */
#include "chaos.h"

#define CLUSTER "chaos_durability"
#define THREADS 4
#define ROUNDS 5
#define MAX_PUTS 200000 /* per thread and pass */
#define OP_TIMEOUT_MS 10000
#define TTL_S 900
#define AT_RISK_US 1000000 /* "acknowledged within 1 s before the kill" */
#define RUN_LIMIT_MS 200000 /* per pass */

struct rec {
    int64_t t0, t1;
    int8_t status;
    uint8_t round;
    uint8_t on_victim; /* the slot was served by the master this round killed */
};

struct worker {
    int t;
    int pass_wait;
    struct rec *recs;
    int n;
    long lost, lost_on_victim, lost_at_risk, bad_status;
    int64_t lost_ack_before_kill_us; /* the largest "acknowledged this long before the kill" of a lost write */
    char first_lost[256];
    char first_bad[512];
};

static struct worker workers[THREADS];
static int victim_of_slot[CHAOS_SLOTS]; /* 1 when the slot is on this round's victim */
static int round_no;
static int paused = 1, idle_count, stop_flag, throttle;
static int64_t kill_us[ROUNDS], promoted_us[ROUNDS], restart_us[ROUNDS];

static void make_id(char *buf, size_t cap, int pass_wait, int t, int n)
{
    snprintf(buf, cap, "%ld-d%d-t%d-%d", (long)getpid(), pass_wait, t, n);
}

static void *load(void *arg)
{
    struct worker *w = (struct worker *)arg;
    int was_idle = 0;
    int64_t end = h_now_ms() + RUN_LIMIT_MS;
    while (!chaos_load(&stop_flag) && w->n < MAX_PUTS && h_now_ms() < end) {
        char id[96];
        struct rec *r;
        int32_t st;
        if (chaos_load(&paused)) {
            if (!was_idle) __atomic_add_fetch(&idle_count, 1, __ATOMIC_SEQ_CST);
            was_idle = 1;
            h_sleep_ms(2);
            continue;
        }
        if (was_idle) __atomic_sub_fetch(&idle_count, 1, __ATOMIC_SEQ_CST);
        was_idle = 0;
        make_id(id, sizeof id, w->pass_wait, w->t, w->n);
        r = &w->recs[w->n++];
        r->round = (uint8_t)chaos_load(&round_no);
        r->on_victim = (uint8_t)chaos_load(&victim_of_slot[chaos_slot(id)]);
        r->t0 = chaos_now_us();
        st = chaos_put(id, chaos_tag(id), (uint32_t)w->n, TTL_S);
        r->t1 = chaos_now_us();
        r->status = (int8_t)st;
        if (st != ORS_OK && st != ORS_ERR_NOT_DURABLE && w->bad_status++ == 0)
            snprintf(w->first_bad, sizeof w->first_bad, "put %s: %s, last_error=\"%s\"", id, h_code_name(st),
                     ors_last_error());
        if (chaos_load(&throttle)) h_sleep_ms(2);
    }
    if (!was_idle) __atomic_add_fetch(&idle_count, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

/* Reads back every acknowledged put of one worker. */
static void *verify(void *arg)
{
    struct worker *w = (struct worker *)arg;
    int i;
    for (i = 0; i < w->n; i++) {
        struct rec *r = &w->recs[i];
        char id[96];
        uint8_t want[CHAOS_VALUE_MAX], *data = NULL;
        size_t want_len, len = 0;
        int32_t st;
        if (r->status != ORS_OK) continue;
        make_id(id, sizeof id, w->pass_wait, w->t, i);
        want_len = chaos_value(want, chaos_tag(id), (uint32_t)(i + 1));
        st = ors_session_get(id, &data, &len);
        if (st != ORS_OK || len != want_len || memcmp(data, want, len) != 0) {
            w->lost++;
            if (r->on_victim) w->lost_on_victim++;
            if (r->on_victim && r->t1 < kill_us[r->round] && r->t1 >= kill_us[r->round] - AT_RISK_US)
                w->lost_at_risk++;
            if (kill_us[r->round] - r->t1 > w->lost_ack_before_kill_us)
                w->lost_ack_before_kill_us = kill_us[r->round] - r->t1;
            if (w->lost == 1)
                snprintf(w->first_lost, sizeof w->first_lost,
                     "%s (round %d, acknowledged %lld us before the kill): get %s, %zu bytes", id, r->round + 1,
                     (long long)(kill_us[r->round] - r->t1), h_code_name(st), len);
        }
        ors_free(data);
    }
    return NULL;
}

/* A session id on a slot of master `port` (per topo), for the window checks. */
static void id_on(const struct chaos_topo *topo, int port, const char *what, int k, char *buf, size_t cap)
{
    int n;
    for (n = 0; n < 1000000; n++) {
        snprintf(buf, cap, "%ld-%s-%d-%d", (long)getpid(), what, k, n);
        if (topo->owner[chaos_slot(buf)] == port) return;
    }
}

static void wait_idle(void)
{
    int64_t end = h_now_ms() + 30000;
    while (chaos_load(&idle_count) < THREADS && h_now_ms() < end) h_sleep_ms(2);
}

static void run_pass(int wait_replicas)
{
    static struct chaos_topo topo;
    pthread_t th[THREADS];
    int started[THREADS];
    char extra[256];
    int i, r, rc, not_durable_checked = 0, window_puts = 0, window_ok = 0, window_nd = 0;
    long acked = 0, acked_victim = 0, acked_at_risk = 0, lost = 0, lost_victim = 0, lost_at_risk = 0, bad = 0;
    long nd_total = 0, nd_elsewhere = 0;
    int64_t lost_latest_us = 0;
    char lost_text[160] = "";
    int64_t failover_ms_max = 0, t_pass = h_now_ms();

    h_note("--- wait-replicas=%d: %d rounds", wait_replicas, ROUNDS);
    snprintf(extra, sizeof extra, "op-timeout=%d wait-replicas=%d log-level=warn", OP_TIMEOUT_MS, wait_replicas);
    if (CHECK_STATUS(ors_redis_init(chaos_config(CLUSTER, extra)), ORS_OK, "init (%s)", extra) != ORS_OK) return;

    chaos_store(&stop_flag, 0);
    chaos_store(&paused, 1);
    chaos_store(&idle_count, 0);
    for (i = 0; i < THREADS; i++) {
        struct worker *w = &workers[i];
        memset(w, 0, sizeof *w);
        w->t = i;
        w->pass_wait = wait_replicas;
        w->recs = (struct rec *)calloc(MAX_PUTS, sizeof *w->recs);
        started[i] = w->recs && pthread_create(&th[i], NULL, load, w) == 0;
    }
    wait_idle();

    for (r = 0; r < ROUNDS; r++) {
        int victim, slot = -1, new_master;
        char id[96];
        if (!CHECK(chaos_ctl("wait-healthy 60") == 0, "round %d: cluster healthy before the kill", r + 1)) break;
        if (!CHECK(chaos_topology(&topo, 0) == 3, "round %d: 3 masters", r + 1)) break;
        victim = topo.master_port[r % 3];
        for (i = 0; i < CHAOS_SLOTS; i++) {
            victim_of_slot[i] = topo.owner[i] == victim;
            if (slot < 0 && topo.owner[i] == victim) slot = i;
        }
        chaos_store(&round_no, r);
        chaos_store(&throttle, 0);
        chaos_store(&paused, 0);
        h_sleep_ms(400);

        rc = chaos_signal_node(victim, SIGKILL, &kill_us[r]);
        CHECK(rc == 1, "round %d: master %d killed with SIGKILL under load", r + 1, victim);
        new_master = chaos_wait_failover(victim, slot, 30000);
        promoted_us[r] = chaos_now_us();
        if (!CHECK(new_master != 0, "round %d: replica %d promoted", r + 1, new_master)) break;
        if ((promoted_us[r] - kill_us[r]) / 1000 > failover_ms_max)
            failover_ms_max = (promoted_us[r] - kill_us[r]) / 1000;
        chaos_store(&throttle, 1);

        if (wait_replicas > 0) {
            /* The promoted master has no replica until the old one returns. */
            int k;
            for (k = 0; k < 2; k++) {
                uint8_t want[CHAOS_VALUE_MAX], *data = NULL;
                size_t want_len, len = 0;
                int32_t st;
                id_on(&topo, victim, "window", r * 10 + k, id, sizeof id);
                want_len = chaos_value(want, chaos_tag(id), 7);
                st = ors_session_put(id, want, want_len, TTL_S);
                not_durable_checked += st == ORS_ERR_NOT_DURABLE;
                CHECK_STATUS(st, ORS_ERR_NOT_DURABLE,
                             "round %d: put while new master %d has no replica is honestly not durable", r + 1,
                             new_master);
                st = ors_session_get(id, &data, &len);
                CHECK(st == ORS_OK && len == want_len && memcmp(data, want, len) == 0,
                      "round %d: ... but the master applied it (get %s, %zu bytes)", r + 1, h_code_name(st), len);
                ors_free(data);
            }
        }

        restart_us[r] = chaos_now_us();
        CHECK(chaos_ctl("node-start %d", victim) == 0, "round %d: node %d restarted from its data", r + 1, victim);
        CHECK(chaos_ctl("wait-healthy 60") == 0, "round %d: node %d synced as a replica of %d", r + 1, victim,
              new_master);
        if (wait_replicas > 0) {
            id_on(&topo, victim, "after", r, id, sizeof id);
            CHECK_STATUS(chaos_put(id, chaos_tag(id), 1, TTL_S), ORS_OK,
                         "round %d: puts on %d's slots are durable again once the old master is back", r + 1,
                         new_master);
        }
        h_sleep_ms(300);
        chaos_store(&paused, 1);
        wait_idle();
        h_note("round %d: killed %d, %d promoted after %.1f s, old master back as a replica", r + 1, victim,
               new_master, (promoted_us[r] - kill_us[r]) / 1e6);
    }
    chaos_store(&stop_flag, 1);
    chaos_store(&paused, 0);
    for (i = 0; i < THREADS; i++)
        if (started[i]) pthread_join(th[i], NULL);

    /* Puts of workers on the victim's slots between promotion and restart. */
    for (i = 0; i < THREADS; i++) {
        struct worker *w = &workers[i];
        int j;
        for (j = 0; j < w->n; j++) {
            struct rec *x = &w->recs[j];
            if (x->status == ORS_ERR_NOT_DURABLE) nd_total++;
            if (x->status == ORS_OK) {
                acked++;
                if (x->on_victim) acked_victim++;
                if (x->on_victim && x->t1 < kill_us[x->round] && x->t1 >= kill_us[x->round] - AT_RISK_US)
                    acked_at_risk++;
            }
            if (x->status == ORS_ERR_NOT_DURABLE && !x->on_victim) nd_elsewhere++;
            /* Between the kill and the old master's restart, the victim's slots
             * are on a dead master or on a promoted one without a replica. */
            if (x->on_victim && x->t0 >= kill_us[x->round] && x->t1 <= restart_us[x->round]) {
                window_puts++;
                window_ok += x->status == ORS_OK;
                window_nd += x->status == ORS_ERR_NOT_DURABLE;
            }
        }
        bad += w->bad_status;
        if (w->bad_status) h_note("thread %d: %ld put(s) failed, first: %s", i, w->bad_status, w->first_bad);
    }
    CHECK(bad == 0, "wait-replicas=%d: every put returned ORS_OK%s (%ld other statuses)", wait_replicas,
          wait_replicas ? " or ORS_ERR_NOT_DURABLE" : "", bad);
    if (wait_replicas > 0)
        CHECK(window_ok == 0,
              "no worker put on the killed master's slots returned ORS_OK before the old master was back (%d puts: "
              "%d NOT_DURABLE)",
              window_puts, window_nd);

    /* Read back every acknowledged write. */
    for (i = 0; i < THREADS; i++) started[i] = pthread_create(&th[i], NULL, verify, &workers[i]) == 0;
    for (i = 0; i < THREADS; i++) {
        if (started[i]) pthread_join(th[i], NULL);
        CHECK(started[i], "verification thread %d ran", i);
        lost += workers[i].lost;
        lost_victim += workers[i].lost_on_victim;
        lost_at_risk += workers[i].lost_at_risk;
        if (workers[i].lost_ack_before_kill_us > lost_latest_us) lost_latest_us = workers[i].lost_ack_before_kill_us;
        if (workers[i].lost) h_note("thread %d: first lost write: %s", i, workers[i].first_lost);
    }
    if (wait_replicas > 0) {
        CHECK(acked > 0 && lost == 0,
              "wait-replicas=%d: all %ld acknowledged writes readable with exactly their bytes after %d kills",
              wait_replicas, acked, ROUNDS);
    } else {
        /* The measured trade-off, not an assertion: asynchronous replication. */
        CHECK(acked > 0 && lost == lost_victim,
              "wait-replicas=0: writes lost only on killed masters' slots (%ld lost, %ld of them there)", lost,
              lost_victim);
    }
    if (lost)
        snprintf(lost_text, sizeof lost_text,
                 " (%ld of them acknowledged within 1 s before their master's kill, the earliest %.3f ms before it)",
                 lost_at_risk, lost_latest_us / 1000.0);
    h_note("FIGURE durability wait-replicas=%d: %d kill+restart rounds, %ld acknowledged writes checked (%ld on the "
           "killed masters' slots, %ld of them acknowledged within 1 s before the kill), %ld lost%s; "
           "ORS_ERR_NOT_DURABLE puts %ld (%ld of them on masters that were not killed; explicit "
           "checks %d); worker puts on the killed master's slots between kill and restart %d: %d NOT_DURABLE, %d OK; "
           "longest promotion %lld ms; pass took %.0f s",
           wait_replicas, ROUNDS, acked, acked_victim, acked_at_risk, lost, lost_text,
           nd_total, nd_elsewhere,
           not_durable_checked, window_puts, window_nd, window_ok, (long long)failover_ms_max,
           (h_now_ms() - t_pass) / 1000.0);
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    for (i = 0; i < THREADS; i++) {
        free(workers[i].recs);
        workers[i].recs = NULL;
    }
}

int main(void)
{
    h_begin("chaos_durability: acknowledged writes across SIGKILLed masters");
    chaos_value_span = 200; /* many keys: keep them small */
    ors_redis_set_logger(chaos_logger, NULL);
    if (!chaos_cluster_ready()) return h_done();
    run_pass(1);
    run_pass(0);
    return h_done();
}
