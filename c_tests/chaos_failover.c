/*
 * chaos_failover.c - a master killed with SIGKILL under load.
 *
 * Worker threads put and get their sessions (a third of them on each master)
 * without pause. One master is killed; with op-timeout above the cluster's
 * failover time, no call may fail while its replica is promoted. The killed
 * node is then restarted from its data: it must rejoin as a replica, and the
 * load goes on on the same library instance (no re-init).
 *
 * Figures: the longest call, and the time from the kill to the first
 * successful call on the dead master's slots.
 */
#include "chaos.h"

#define CLUSTER "chaos_failover"
#define THREADS 6
#define IDS 30
#define OP_TIMEOUT_MS 10000
#define MAX_ITERS 50000000L
#define RUN_LIMIT_MS 120000

CHAOS_WORKER_IDS_FIT(IDS);

struct worker {
    struct chaos_worker s; /* its sessions; s.failed: every failed call */
    int on_victim[IDS];
    long calls, stale_elsewhere, calls_after_rejoin;
    struct chaos_lat lat;
};

static struct worker workers[THREADS];
static int stop_flag;
static int rejoined_flag;
static int64_t kill_us;          /* when the kill was sent (0: not yet) */
static int64_t first_ok_after_us; /* end of the first OK call on the victim's slots started after the kill */
static int64_t run_end_ms;

static void count_call(struct worker *w, int64_t t0, int64_t t1, int after_rejoin)
{
    w->calls++;
    w->calls_after_rejoin += after_rejoin;
    chaos_lat_add(&w->lat, t1 - t0);
}

/* A successful call on session k: the first on the victim's slots that
 * started after the kill ends the recovery. */
static void note_success(struct worker *w, int k, int64_t t0, int64_t t1)
{
    if (w->on_victim[k] && chaos_load64(&kill_us) && t0 >= chaos_load64(&kill_us))
        chaos_min64(&first_ok_after_us, t1);
}

static void *work(void *arg)
{
    struct worker *w = (struct worker *)arg;
    long iter;
    for (iter = 0; iter < MAX_ITERS && !chaos_load(&stop_flag) && h_now_ms() < run_end_ms; iter++) {
        int k = (int)(iter % IDS);
        int after_rejoin = chaos_load(&rejoined_flag);
        struct chaos_round r;

        chaos_worker_round(&w->s, k, 600, &r);
        count_call(w, r.put_t0, r.put_t1, after_rejoin);
        if (r.put_st != ORS_OK) {
            chaos_worker_failed(&w->s, "put", k, r.put_st);
            continue;
        }
        note_success(w, k, r.put_t0, r.put_t1);
        count_call(w, r.get_t0, r.get_t1, after_rejoin);
        if (r.read == CHAOS_READ_STALE) {
            /* An acknowledged write that the promoted replica never got. */
            if (!w->on_victim[k]) w->stale_elsewhere++;
        } else if (r.read == CHAOS_READ_FAILED) {
            chaos_worker_failed(&w->s, "get", k, r.get_st);
        } else if (r.read == CHAOS_READ_CURRENT) {
            note_success(w, k, r.get_t0, r.get_t1);
        }
    }
    return NULL;
}

int main(void)
{
    static struct chaos_topo topo;
    pthread_t th[THREADS];
    int started[THREADS];
    int i, k, victim, new_master = 0, rc, placed;
    char extra[256];
    long calls = 0, failed = 0, wrong = 0, stale = 0, stale_elsewhere = 0, after_rejoin = 0;
    struct chaos_lat all;
    ors_redis_stats st0, st1;
    int64_t recovery_us = 0, wait_end;
    char role[64];

    h_begin("chaos_failover: SIGKILL of a master under load");
    memset(&all, 0, sizeof all);
    if (!chaos_cluster_ready()) return h_done();
    if (!CHECK(chaos_topology(&topo, 0) == 3, "the cluster has 3 masters")) return h_done();
    victim = topo.master_port[0];
    h_note("masters %d %d %d; the victim is %d", topo.master_port[0], topo.master_port[1], topo.master_port[2],
           victim);

    snprintf(extra, sizeof extra, "op-timeout=%d log-level=warn", OP_TIMEOUT_MS);
    ors_redis_set_logger(chaos_logger, NULL);
    if (CHECK_STATUS(ors_redis_init(chaos_config(CLUSTER, extra)), ORS_OK, "init (%s)", extra) != ORS_OK)
        return h_done();

    /* Ids spread evenly: id k of each thread lives on master k % 3. */
    placed = 0;
    for (i = 0; i < THREADS; i++) {
        struct worker *w = &workers[i];
        memset(w, 0, sizeof *w);
        chaos_worker_init(&w->s, i, 0);
        for (k = 0; k < IDS; k++) {
            placed += chaos_worker_place(&w->s, k, "fo", &topo, topo.master_port[k % 3]);
            w->on_victim[k] = topo.owner[chaos_slot(w->s.ids[k])] == victim;
        }
    }
    if (!CHECK(placed == THREADS * IDS, "every session id lives on the master chosen for it (%d of %d)", placed,
               THREADS * IDS))
        return h_done();
    chaos_check_slot_function(CLUSTER, workers[0].s.ids[0]);

    st0 = chaos_stats();
    run_end_ms = h_now_ms() + RUN_LIMIT_MS;
    for (i = 0; i < THREADS; i++) started[i] = pthread_create(&th[i], NULL, work, &workers[i]) == 0;
    h_sleep_ms(1000);

    {
        int64_t at = 0;
        rc = chaos_signal_node(victim, SIGKILL, &at);
        chaos_store64(&kill_us, at);
        CHECK(rc == 1, "master %d killed with SIGKILL", victim);
    }

    /* The replica takes over: wait (bounded) for the first success on the victim's slots. */
    wait_end = h_now_ms() + 60000;
    while (!chaos_load64(&first_ok_after_us) && h_now_ms() < wait_end) h_sleep_ms(20);
    if (chaos_load64(&first_ok_after_us)) recovery_us = chaos_load64(&first_ok_after_us) - chaos_load64(&kill_us);
    CHECK(recovery_us > 0, "calls on the killed master's slots succeed again (%.0f ms after the kill)",
          recovery_us / 1000.0);
    for (k = 0; k < CHAOS_SLOTS; k++)
        if (topo.owner[k] == victim) break;
    new_master = chaos_wait_failover(victim, k, 30000);
    CHECK(new_master != 0, "a replica was promoted for the killed master's slots (new master %d)", new_master);
    h_sleep_ms(1000);

    /* The killed node comes back from its own data and rejoins as a replica. */
    rc = chaos_ctl("node-start %d", victim);
    CHECK(rc == 0, "node %d restarted from its data (cluster.sh node-start)", victim);
    rc = chaos_ctl("wait-healthy 60");
    CHECK(rc == 0, "cluster healthy again: 3 masters with an online replica each");
    snprintf(role, sizeof role, "%s", chaos_role(victim));
    CHECK(strcmp(role, "slave") == 0, "the restarted node %d rejoined as a replica (ROLE: %s)", victim, role);
    chaos_store(&rejoined_flag, 1);
    h_sleep_ms(1500);

    chaos_stop_workers(&stop_flag, th, started, THREADS);
    st1 = chaos_stats();

    for (i = 0; i < THREADS; i++) {
        struct worker *w = &workers[i];
        calls += w->calls;
        failed += w->s.failed;
        wrong += w->s.wrong;
        stale += w->s.stale;
        stale_elsewhere += w->stale_elsewhere;
        after_rejoin += w->calls_after_rejoin;
        chaos_lat_merge(&all, &w->lat);
        if (w->s.failed) h_note("thread %d: %ld failed call(s), first: %s", i, w->s.failed, w->s.first_failure);
        if (w->s.wrong) h_note("thread %d: %s", i, w->s.first_wrong);
    }
    CHECK(failed == 0, "no call failed during the failover (%ld calls, %ld failed)", calls, failed);
    CHECK(wrong == 0, "no get returned bytes that were never written for its session (%ld)", wrong);
    CHECK(stale_elsewhere == 0, "no acknowledged write lost on the masters that stayed up (%ld)", stale_elsewhere);
    CHECK(all.max_us <= (int64_t)(OP_TIMEOUT_MS + 1500) * 1000, "longest call %.0f ms <= op-timeout %d ms + 1500",
          all.max_us / 1000.0, OP_TIMEOUT_MS);
    CHECK(after_rejoin > 0, "the load went on after the node rejoined, without re-init (%ld calls)", after_rejoin);
    {
        int warn;
        chaos_log_counts(&warn, NULL, NULL);
        h_note("FIGURE failover: %d threads, %ld calls, %ld failed; longest call %.0f ms (p99 %.1f ms); kill -> first "
               "success on the killed master's slots %.0f ms; new master %d; restarted node %d rejoined as %s; "
               "retries %" PRIu64 ", slot-map reloads %" PRIu64 "; stale reads after the failover (async "
               "replication) %ld; warn lines %d",
               THREADS, calls, failed, all.max_us / 1000.0, chaos_lat_ms(&all, 0.99), recovery_us / 1000.0,
               new_master, victim, role[0] ? role : "?", st1.retries - st0.retries,
               st1.topology_refreshes - st0.topology_refreshes, stale, warn);
    }
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    for (i = 0; i < THREADS; i++) chaos_lat_free(&workers[i].lat);
    chaos_lat_free(&all);
    return h_done();
}
