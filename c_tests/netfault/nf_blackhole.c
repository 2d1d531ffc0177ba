/*
 * nf_blackhole.c - a blackholed master: first its client port (the library's
 * packets to it and its replies dropped, the cluster still sees it alive),
 * then the whole node until the cluster fails it over. Every call to it
 * returns within op-timeout + 250 ms. While only M's client port is
 * blackholed, calls to the other masters go on without an error (their max
 * latency printed); once the cluster flags M as failed it answers
 * CLUSTERDOWN everywhere until M's replica is promoted, so there only the
 * bound is checked. Once a replica took over, calls on M's slots succeed.
 */
#include "netfault.h"

#define OP_TIMEOUT 2000
#define ON_VICTIM 2
#define WORKERS (ON_VICTIM + 2)
#define MAX_CALLS 200000

int main(void)
{
    static struct chaos_topo topo;
    static struct nf_worker nw[WORKERS];
    static struct chaos_worker w[WORKERS];
    pthread_t th[WORKERS];
    int started[WORKERS], stop = 0, i, m, new_master = 0;
    long bound = OP_TIMEOUT + NF_SLACK_MS;
    int64_t t_client, t_node, t_failover, t_end;
    struct nf_calls c;

    h_begin("nf_blackhole");
    if (!(m = nf_begin(&topo, "nfblackhole", OP_TIMEOUT, ""))) return h_done();
    if (!nf_workers_ready(nw, w, WORKERS, ON_VICTIM, &topo, m, MAX_CALLS, &stop) ||
        !nf_start_workers(nw, th, started, WORKERS)) goto out;
    h_sleep_ms(1000);

    CHECK(nf_blackhole_client(m), "client port of M blackholed");
    t_client = chaos_now_us();
    h_sleep_ms(3000);
    CHECK(nf_blackhole_node(m), "whole node M blackholed");
    t_node = chaos_now_us();
    new_master = chaos_wait_failover(m, chaos_slot(w[0].ids[0]), 30000);
    t_failover = chaos_now_us();
    CHECK(new_master != 0, "a replica took over M's slots (now on %d)", new_master);
    printf("# FIGURE blackhole: failover %.2f s after the whole node was blackholed\n", (t_failover - t_node) / 1e6);
    h_sleep_ms(2000);
    t_end = chaos_now_us();
    chaos_stop_workers(&stop, th, started, WORKERS);
    nf_heal();

    nf_calls_of(&c, w, ON_VICTIM, t_client, t_node, bound);
    nf_check_bound("blackhole: calls to M, client port blackholed", &c, bound);
    nf_calls_of(&c, w, ON_VICTIM, t_node, t_failover, bound);
    nf_check_bound("blackhole: calls to M, whole node blackholed until failover", &c, bound);
    nf_calls_of(&c, w, ON_VICTIM, t_failover, t_end, bound);
    nf_check_bound("blackhole: calls on M's slots after the failover", &c, bound);
    CHECK(c.ok > 0, "calls on M's slots succeed after the failover (%ld ok)", c.ok);
    nf_calls_of(&c, w + ON_VICTIM, WORKERS - ON_VICTIM, t_client, t_node, bound);
    nf_check_bound("blackhole: calls to the other masters, M's client port blackholed", &c, bound);
    CHECK(c.errors == 0 && c.ok > 0, "calls to the other masters all succeeded (%ld of %ld)", c.ok, c.n);
    /* Between the moment the cluster flags M as failed and the promotion of
     * its replica, every node answers CLUSTERDOWN (cluster-require-full-
     * coverage): errors there are the cluster's, only the bound is checked. */
    nf_calls_of(&c, w + ON_VICTIM, WORKERS - ON_VICTIM, t_node, t_end, bound);
    nf_check_bound("blackhole: calls to the other masters, M blackholed whole, failover", &c, bound);
    nf_check_wrong(w, WORKERS);
out:
    for (i = 0; i < WORKERS; i++) chaos_worker_free(&w[i]);
    ors_redis_shutdown();
    return h_done();
}
