/*
 * chaos_freeze.c - a master frozen with SIGSTOP under load.
 *
 * A frozen node still accepts TCP connections (the kernel does that) but
 * never answers: the worst case for a client. Three "A" threads call sessions
 * on the frozen master's slots, four "B" threads sessions on the other two
 * masters' slots.
 *
 * Phase 1, a short freeze (SIGCONT before cluster-node-timeout): every A call
 * returns within op-timeout plus a margin, with ORS_ERR_TIMEOUT when the
 * node stayed frozen for all of it; B calls go on at normal latency (each
 * thread has its own connections: no head-of-line blocking); after SIGCONT
 * the A calls succeed again by themselves.
 *
 * Phase 2, a long freeze: the cluster fails the node over; A calls time out
 * (bounded) until the promotion, then succeed on the new master; SIGCONT
 * makes the old master a replica; everything goes on without re-init.
 */
#include "chaos.h"

#define CLUSTER "chaos_freeze"
#define A_THREADS 3
#define B_THREADS 4
#define THREADS (A_THREADS + B_THREADS)
#define IDS 12
/* op-timeout well below the short freeze: an A thread's call in flight at
 * SIGSTOP times out after OP_TIMEOUT_MS, and the calls it starts next, still
 * in the freeze, are due before SIGCONT, so the phase 1 window below always
 * holds worker calls (with 1000 ms against a 1600 ms freeze it held none). */
#define OP_TIMEOUT_MS 500
#define SOCKET_TIMEOUT_MS 300
#define MARGIN_MS 1500
#define SHORT_FREEZE_MS 1600 /* below cluster-node-timeout (2000): no failover */
#define MAX_CALLS 1500000
#define RUN_LIMIT_MS 150000

CHAOS_WORKER_IDS_FIT(IDS);

/* The A threads first: workers[0 .. A_THREADS-1]. */
static struct chaos_worker workers[THREADS];
static int stop_flag;
static int64_t run_end_ms;

static int is_a(const struct chaos_worker *w)
{
    return w->t < A_THREADS;
}

/* The end of the first A call started at or after `from` that succeeded; 0: none yet. */
static int64_t first_a_success(int64_t from)
{
    return chaos_first_success(workers, A_THREADS, from);
}

static void *work(void *arg)
{
    struct chaos_worker *w = (struct chaos_worker *)arg;
    long iter;
    for (iter = 0; !chaos_load(&stop_flag) && w->n < MAX_CALLS - 2 && h_now_ms() < run_end_ms; iter++) {
        int k = (int)(iter % IDS);
        struct chaos_round r;
        chaos_worker_round(w, k, 600, &r);
        /* Noted as diagnostics: an A thread's TIMEOUT is what the freeze is for. */
        if (r.put_st != ORS_OK && !(is_a(w) && r.put_st == ORS_ERR_TIMEOUT)) chaos_worker_failed(w, "put", k, r.put_st);
    }
    return NULL;
}

struct window_stats {
    long calls, ok, timeout, cluster, other, over_bound;
    struct chaos_lat lat;
};

/* Calls of A (a_threads=1) or B threads that started in [from, to). */
static void window(int a_threads, int64_t from, int64_t to, struct window_stats *s)
{
    int i, j;
    memset(s, 0, sizeof *s);
    for (i = 0; i < THREADS; i++) {
        struct chaos_worker *w = &workers[i];
        if (is_a(w) != a_threads) continue;
        for (j = 0; j < w->n; j++) {
            struct chaos_call *c = &w->calls[j];
            if (c->t0 < from || c->t0 >= to) continue;
            s->calls++;
            chaos_lat_add(&s->lat, c->us);
            if (c->status == ORS_OK) s->ok++;
            else if (c->status == ORS_ERR_TIMEOUT) s->timeout++;
            else if (c->status == ORS_ERR_CLUSTER) s->cluster++;
            else s->other++;
            if (c->us > (OP_TIMEOUT_MS + MARGIN_MS) * 1000) s->over_bound++;
        }
    }
}

int main(void)
{
    static struct chaos_topo topo;
    pthread_t th[THREADS];
    int started[THREADS];
    int i, k, victim, victim2, new_master, a_slot, placed;
    char extra[256];
    int64_t freeze1 = 0, cont1 = 0, freeze2 = 0, recovered = 0, end_us, t, probe_us = 0;
    int32_t probe_st = ORS_OK;
    long victim_pid;
    char probe_err[512] = "";
    struct window_stats a1, b0, b1, a1_full, a2, b2, after;
    long wrong = 0, stale = 0, longest_us = 0;
    ors_redis_stats st0, st1;

    h_begin("chaos_freeze: SIGSTOP of a master under load");
    if (!chaos_cluster_ready()) return h_done();
    if (!CHECK(chaos_topology(&topo, 0) == 3, "the cluster has 3 masters")) return h_done();
    victim = topo.master_port[1];
    h_note("masters %d %d %d; the frozen one is %d", topo.master_port[0], topo.master_port[1], topo.master_port[2],
           victim);

    snprintf(extra, sizeof extra, "op-timeout=%d redis-socket-timeout=%d redis-connect-timeout=%d log-level=warn",
             OP_TIMEOUT_MS, SOCKET_TIMEOUT_MS, SOCKET_TIMEOUT_MS);
    ors_redis_set_logger(chaos_logger, NULL);
    if (CHECK_STATUS(ors_redis_init(chaos_config(CLUSTER, extra)), ORS_OK, "init (%s)", extra) != ORS_OK)
        return h_done();

    /* A sessions on the victim (master 1), B sessions alternately on masters 0 and 2. */
    placed = 0;
    for (i = 0; i < THREADS; i++) {
        struct chaos_worker *w = &workers[i];
        chaos_worker_init(w, i, MAX_CALLS);
        for (k = 0; k < IDS; k++)
            placed += chaos_worker_place(w, k, "fz", &topo, is_a(w) ? victim : topo.master_port[k % 2 ? 0 : 2]);
    }
    if (!CHECK(placed == THREADS * IDS, "every session id lives on the master chosen for it (%d of %d)", placed,
               THREADS * IDS))
        return h_done();
    a_slot = chaos_slot(workers[0].ids[0]);

    st0 = chaos_stats();
    run_end_ms = h_now_ms() + RUN_LIMIT_MS;
    for (i = 0; i < THREADS; i++) started[i] = workers[i].calls && pthread_create(&th[i], NULL, work, &workers[i]) == 0;
    h_sleep_ms(800);

    /* Phase 1: a short freeze. */
    victim_pid = chaos_node_pid(victim); /* looked up before: the freeze is timed */
    CHECK(chaos_signal_pid(victim_pid, SIGSTOP, &freeze1), "phase 1: master %d frozen (SIGSTOP)", victim);
    {
        /* A call of our own that starts in the freeze and is due before
         * SIGCONT (the workers' timing decides whether theirs are). */
        int valid;
        uint32_t seq;
        int64_t p0 = chaos_now_us();
        probe_st = chaos_get(workers[0].ids[0], workers[0].tag[0], &valid, &seq);
        probe_us = chaos_now_us() - p0;
        snprintf(probe_err, sizeof probe_err, "%s", ors_last_error());
    }
    t = freeze1 / 1000 + SHORT_FREEZE_MS - h_now_ms();
    if (t > 0) h_sleep_ms((long)t);
    i = chaos_signal_pid(victim_pid, SIGCONT, &cont1);
    CHECK(i, "phase 1: master %d thawed (SIGCONT) after %.1f s", victim, (cont1 - freeze1) / 1e6);
    t = chaos_wait_first_success(workers, A_THREADS, cont1, 10000);
    CHECK(t != 0, "phase 1: calls on %d's slots succeed again by themselves, %.0f ms after SIGCONT", victim,
          (t - cont1) / 1000.0);
    h_sleep_ms(500);
    CHECK(chaos_ctl("wait-healthy 60") == 0, "phase 1: cluster healthy after the short freeze");

    /* Phase 2: a freeze long enough for a failover. */
    chaos_topology(&topo, 0);
    victim2 = topo.owner[a_slot];
    if (victim2 != victim) h_note("phase 1 caused a failover after all: %d now serves the A sessions", victim2);
    CHECK(chaos_signal_node(victim2, SIGSTOP, &freeze2), "phase 2: master %d frozen (SIGSTOP) until failover",
          victim2);
    t = chaos_wait_first_success(workers, A_THREADS, freeze2, 40000);
    CHECK(t != 0, "phase 2: calls on the frozen master's slots succeed again after the failover, %.0f ms after "
                  "SIGSTOP",
          (t - freeze2) / 1000.0);
    new_master = chaos_wait_failover(victim2, a_slot, 30000);
    CHECK(new_master != 0, "phase 2: replica %d promoted", new_master);
    CHECK(chaos_ctl("node-kill %d CONT", victim2) == 0, "phase 2: old master %d thawed (cluster.sh node-kill %d CONT)",
          victim2, victim2);
    CHECK(chaos_ctl("wait-healthy 60") == 0, "phase 2: cluster healthy again, the old master a replica");
    {
        const char *role = chaos_role(victim2);
        CHECK(strcmp(role, "slave") == 0, "phase 2: thawed node %d is a replica now (ROLE: %s)", victim2, role);
    }
    recovered = chaos_now_us();
    h_sleep_ms(1000);
    chaos_stop_workers(&stop_flag, th, started, THREADS);
    end_us = chaos_now_us();
    st1 = chaos_stats();

    for (i = 0; i < THREADS; i++) {
        int j;
        wrong += workers[i].wrong;
        stale += workers[i].stale;
        if (workers[i].wrong) h_note("thread %d: %s", i, workers[i].first_wrong);
        if (workers[i].failed)
            h_note("%s thread %d: %ld error(s), first: %s", is_a(&workers[i]) ? "A" : "B", i, workers[i].failed,
                   workers[i].first_failure);
        for (j = 0; j < workers[i].n; j++)
            if (workers[i].calls[j].us > longest_us) longest_us = workers[i].calls[j].us;
    }
    CHECK(wrong == 0, "no get returned bytes never written for its session (%ld)", wrong);
    CHECK(longest_us <= (OP_TIMEOUT_MS + MARGIN_MS) * 1000L, "no call hung: longest %.0f ms <= op-timeout %d + %d ms",
          longest_us / 1000.0, OP_TIMEOUT_MS, MARGIN_MS);

    /* Phase 1 figures. A calls that started while the node was frozen and
     * whose deadline passed before SIGCONT cannot have had an answer. */
    window(1, freeze1, cont1 - OP_TIMEOUT_MS * 1000L, &a1);
    window(1, freeze1, cont1, &a1_full);
    window(0, freeze1 - 700000, freeze1, &b0);
    window(0, freeze1, cont1, &b1);
    CHECK(probe_st == ORS_ERR_TIMEOUT && probe_us <= (OP_TIMEOUT_MS + MARGIN_MS) * 1000L,
          "phase 1: a get on the frozen master's slots returned %s after %.0f ms (op-timeout %d): \"%s\"",
          h_code_name(probe_st), probe_us / 1000.0, OP_TIMEOUT_MS, probe_err);
    CHECK(a1.calls > 0 && a1.timeout == a1.calls,
          "phase 1: worker calls started in the freeze and due before SIGCONT all returned ORS_ERR_TIMEOUT (%ld of "
          "%ld, at least one)",
          a1.timeout, a1.calls);
    CHECK(a1_full.over_bound == 0 && a1_full.other == 0 && a1_full.cluster == 0,
          "phase 1: every A call in the freeze returned OK or TIMEOUT within op-timeout + %d ms (%ld calls, %ld OK, "
          "%ld TIMEOUT, longest %.0f ms)",
          MARGIN_MS, a1_full.calls, a1_full.ok, a1_full.timeout, a1_full.lat.max_us / 1000.0);
    CHECK(b1.calls > 0 && b1.ok == b1.calls, "phase 1: B calls on the other masters all succeeded during the freeze "
                                             "(%ld of %ld)",
          b1.ok, b1.calls);
    CHECK(b1.lat.max_us < SOCKET_TIMEOUT_MS * 1000L,
          "phase 1: no B call waited for the frozen node (longest %.1f ms < redis-socket-timeout %d ms)",
          b1.lat.max_us / 1000.0, SOCKET_TIMEOUT_MS);
    h_note("FIGURE freeze (short, %.1f s, no failover): a get on the frozen master's slots: %s after %.0f ms; A "
           "calls on the frozen master: %ld, %ld ORS_ERR_TIMEOUT, longest %.0f ms (op-timeout %d); B calls on the other masters: %ld, all OK, p50 %.2f / p99 %.2f / max "
           "%.1f ms (before the freeze: p50 %.2f / p99 %.2f / max %.1f ms); A recovered %.0f ms after SIGCONT",
           (cont1 - freeze1) / 1e6, h_code_name(probe_st), probe_us / 1000.0, a1_full.calls, a1_full.timeout, a1_full.lat.max_us / 1000.0, OP_TIMEOUT_MS,
           b1.calls, chaos_lat_ms(&b1.lat, 0.5), chaos_lat_ms(&b1.lat, 0.99), b1.lat.max_us / 1000.0,
           chaos_lat_ms(&b0.lat, 0.5), chaos_lat_ms(&b0.lat, 0.99), b0.lat.max_us / 1000.0,
           (first_a_success(cont1) - cont1) / 1000.0);

    /* Phase 2 figures. */
    window(1, freeze2, recovered, &a2);
    window(0, freeze2, recovered, &b2);
    window(0, recovered, end_us, &after);
    {
        struct window_stats a_after;
        window(1, recovered, end_us, &a_after);
        CHECK(a2.other == 0 && b2.other == 0,
              "phase 2: during the freeze and failover, calls returned only OK, TIMEOUT or CLUSTER (A: %ld OK, %ld "
              "TIMEOUT, %ld CLUSTER; B: %ld OK, %ld TIMEOUT, %ld CLUSTER)",
              a2.ok, a2.timeout, a2.cluster, b2.ok, b2.timeout, b2.cluster);
        CHECK(after.calls > 0 && after.ok == after.calls && a_after.calls > 0 && a_after.ok == a_after.calls,
              "phase 2: after recovery every call succeeds, without re-init (A %ld of %ld, B %ld of %ld)", a_after.ok,
              a_after.calls, after.ok, after.calls);
        h_note("FIGURE freeze (long, until failover): SIGSTOP -> first A success on the new master %d: %.0f ms; A "
               "calls meanwhile %ld (%ld TIMEOUT, %ld CLUSTER, %ld OK), longest %.0f ms; B calls %ld (%ld OK, %ld "
               "CLUSTER while the cluster marked the failed master and voted, %ld TIMEOUT), B p99 %.2f ms, max %.0f "
               "ms; after recovery %ld calls, all OK; retries %" PRIu64 ", slot-map reloads %" PRIu64
               "; stale reads %ld",
               new_master, (first_a_success(freeze2) - freeze2) / 1000.0, a2.calls, a2.timeout, a2.cluster, a2.ok,
               a2.lat.max_us / 1000.0, b2.calls, b2.ok, b2.cluster, b2.timeout, chaos_lat_ms(&b2.lat, 0.99),
               b2.lat.max_us / 1000.0, after.calls + a_after.calls, st1.retries - st0.retries,
               st1.topology_refreshes - st0.topology_refreshes, stale);
        chaos_lat_free(&a_after.lat);
    }
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    chaos_lat_free(&a1.lat);
    chaos_lat_free(&a1_full.lat);
    chaos_lat_free(&b0.lat);
    chaos_lat_free(&b1.lat);
    chaos_lat_free(&a2.lat);
    chaos_lat_free(&b2.lat);
    chaos_lat_free(&after.lat);
    for (i = 0; i < THREADS; i++) chaos_worker_free(&workers[i]);
    return h_done();
}
