/*
 * chaos_refresh.c - topology refresh discipline.
 *
 * 64 threads hold connections to every master and the process's slot map.
 * Slots are resharded behind the library's back; then all 64 threads call at
 * once, each on a session whose slot has moved. So that every one of them
 * really gets MOVED at the same moment (on a busy machine, a thread that
 * starts after the first refresh has landed routes with the new map and
 * never sees MOVED), the old master is frozen (SIGSTOP, well below
 * cluster-node-timeout; CLIENT PAUSE would not do: a paused node still
 * answers MOVED at once) while the threads send: once thawed, it answers all
 * 64 queued requests with MOVED together. The slot
 * map refresh is single-flight and rate-limited: the nodes must see only a
 * handful of CLUSTER SLOTS from this process (INFO commandstats,
 * cmdstat_cluster|slots on Redis 7, summed over every node), not one per
 * thread.
 */
#include "chaos.h"

#define CLUSTER "chaos_refresh"
#define THREADS 64
#define RESHARD_SLOTS 1000
#define HANDFUL 3
#define FREEZE_MS 400

struct worker {
    int t;
    char warm_ids[3][64];
    char id[64];
    int32_t put_st, get_st;
    int valid;
    uint32_t seq;
    char error[512];
};

static struct worker workers[THREADS];
static int warmed, go, done;

static void *work(void *arg)
{
    struct worker *w = (struct worker *)arg;
    int k, valid;
    uint32_t seq;
    int64_t end;
    /* Warm up: a connection to every master, the current slot map. */
    for (k = 0; k < 3; k++) {
        if (chaos_put(w->warm_ids[k], chaos_tag(w->warm_ids[k]), 1, 300) != ORS_OK ||
            chaos_get(w->warm_ids[k], chaos_tag(w->warm_ids[k]), &valid, &seq) != ORS_OK || !valid)
            snprintf(w->error, sizeof w->error, "warm-up on %s: %s", w->warm_ids[k], ors_last_error());
    }
    __atomic_add_fetch(&warmed, 1, __ATOMIC_SEQ_CST);
    end = h_now_ms() + 120000;
    while (!chaos_load(&go) && h_now_ms() < end) h_sleep_ms(1);
    if (!chaos_load(&go)) return NULL;
    w->put_st = chaos_put(w->id, chaos_tag(w->id), 2, 300);
    if (w->put_st != ORS_OK) snprintf(w->error, sizeof w->error, "put %s: %s", w->id, ors_last_error());
    w->get_st = chaos_get(w->id, chaos_tag(w->id), &w->valid, &w->seq);
    __atomic_add_fetch(&done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

int main(void)
{
    static struct chaos_topo before, after;
    static char out[1 << 20];
    static int used[CHAOS_SLOTS];
    pthread_t th[THREADS];
    int started[THREADS];
    int i, k, a, b, src, rc, moved = 0, ok = 0;
    long long slots0, slots1;
    ors_redis_stats st0, st1;
    int64_t end;

    h_begin("chaos_refresh: 64 threads hit MOVED at once");
    if (!chaos_cluster_ready()) return h_done();
    if (!CHECK(chaos_topology(&before, 0) == 3, "the cluster has 3 masters")) return h_done();
    src = chaos_richest_master(&before);
    a = before.master_port[src];
    b = before.master_port[(src + 1) % 3];
    if (CHECK_STATUS(ors_redis_init(chaos_config(CLUSTER, "op-timeout=5000")), ORS_OK, "init") != ORS_OK)
        return h_done();

    for (i = 0; i < THREADS; i++) {
        struct worker *w = &workers[i];
        memset(w, 0, sizeof *w);
        w->t = i;
        for (k = 0; k < 3; k++) {
            int n;
            for (n = 0; n < 100000; n++) {
                snprintf(w->warm_ids[k], sizeof w->warm_ids[k], "%ld-rf-warm-%d-%d-%d", (long)getpid(), i, k, n);
                if (before.owner[chaos_slot(w->warm_ids[k])] == before.master_port[k]) break;
            }
        }
    }
    for (i = 0; i < THREADS; i++) started[i] = pthread_create(&th[i], NULL, work, &workers[i]) == 0;
    end = h_now_ms() + 60000;
    while (chaos_load(&warmed) < THREADS && h_now_ms() < end) h_sleep_ms(5);
    st0 = chaos_stats();
    CHECK(chaos_load(&warmed) == THREADS && st0.threads_connected >= THREADS,
          "%d threads warmed up (connections open: %" PRIu64 ", threads connected: %" PRIu64 ")", THREADS,
          st0.connections_open, st0.threads_connected);

    /* Move slots behind the library's back. */
    rc = chaos_run_capture(out, sizeof out,
                           "timeout 120 %s --cluster reshard 127.0.0.1:%d --cluster-from %s --cluster-to %s "
                           "--cluster-slots %d --cluster-yes 2>&1",
                           h_env("REDIS_CLI", "redis-cli"), a, before.master_id[src], before.master_id[(src + 1) % 3],
                           RESHARD_SLOTS);
    if (!CHECK(rc == 0, "redis-cli --cluster reshard moved %ld slots from %d to %d", chaos_count(out, "\nMoving slot "),
               a, b))
        chaos_note_tail(out, 10);
    CHECK(chaos_wait_agreement(a), "all nodes agree on the new slot map");
    CHECK(chaos_topology(&after, 0) == 3, "the cluster still has 3 masters");

    /* One session per thread, each on a different slot that moved. */
    for (k = 0; k < CHAOS_SLOTS; k++) used[k] = !(before.owner[k] == a && after.owner[k] == b);
    for (k = 0, rc = 0; k < CHAOS_SLOTS; k++) rc += !used[k];
    for (i = 0; i < THREADS && rc >= THREADS; i++) {
        struct worker *w = &workers[i];
        int n;
        for (n = 0; n < 10000000; n++) {
            int s;
            snprintf(w->id, sizeof w->id, "%ld-rf-%d-%d", (long)getpid(), i, n);
            s = chaos_slot(w->id);
            if (!used[s]) {
                used[s] = 1;
                moved++;
                break;
            }
        }
    }
    CHECK(moved == THREADS, "%d sessions on %d distinct moved slots", moved, THREADS);

    /* Only this process sends CLUSTER SLOTS from here on. */
    slots0 = chaos_cmdstat_calls("cluster|slots");
    st0 = chaos_stats();
    {
        int64_t frozen = 0, thawed = 0;
        rc = chaos_signal_node(a, SIGSTOP, &frozen);
        chaos_store(&go, 1);
        h_sleep_ms(FREEZE_MS);
        rc &= chaos_signal_node(a, SIGCONT, &thawed);
        CHECK(rc, "old master %d frozen for %.0f ms while the threads sent: their requests queued there and got "
                  "MOVED together",
              a, (thawed - frozen) / 1000.0);
    }
    end = h_now_ms() + 60000;
    while (chaos_load(&done) < THREADS && h_now_ms() < end) h_sleep_ms(5);
    for (i = 0; i < THREADS; i++)
        if (started[i]) pthread_join(th[i], NULL);
    st1 = chaos_stats();
    slots1 = chaos_cmdstat_calls("cluster|slots");

    for (i = 0; i < THREADS; i++) {
        struct worker *w = &workers[i];
        if (w->put_st == ORS_OK && w->get_st == ORS_OK && w->valid && w->seq == 2 && !w->error[0])
            ok++;
        else if (ok == i)
            h_note("thread %d: put %s, get %s, valid %d: %s", i, h_code_name(w->put_st), h_code_name(w->get_st),
                   w->valid, w->error);
    }
    CHECK(ok == THREADS, "all %d threads' calls on moved slots succeeded with the right value (%d)", THREADS, ok);
    CHECK(st1.retries - st0.retries >= THREADS, "every thread hit MOVED: %" PRIu64 " retries for %d threads",
          st1.retries - st0.retries, THREADS);
    CHECK(slots0 >= 0 && slots1 >= 0, "INFO commandstats read on every node (cmdstat_cluster|slots %lld -> %lld)",
          slots0, slots1);
    CHECK(slots1 - slots0 >= 1 && slots1 - slots0 <= HANDFUL,
          "the %d threads caused %lld CLUSTER SLOTS call(s) in all (at most %d)", THREADS, slots1 - slots0, HANDFUL);
    h_note("FIGURE refresh: %d slots resharded behind the library; %d threads hit MOVED at once (%" PRIu64
           " retries): %lld CLUSTER SLOTS call(s) on the nodes, %" PRIu64 " slot-map reload(s) in the library",
           RESHARD_SLOTS, THREADS, st1.retries - st0.retries, slots1 - slots0,
           st1.topology_refreshes - st0.topology_refreshes);
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    /* Leave the slots balanced for whatever runs next on this cluster. */
    CHECK(chaos_rebalance(a) >= 0, "slots rebalanced afterwards");
    return h_done();
}
