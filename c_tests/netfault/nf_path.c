/*
 * nf_path.c halfopen|reset - one master's path to the client fails for 3 s,
 * then heals:
 *   halfopen  the master's packets to the client are dropped (requests
 *             arrive and are applied, replies never come back);
 *   reset     the client's packets to the master are answered with a TCP
 *             reset (REJECT --reject-with tcp-reset): connections break and
 *             new ones are refused at once.
 * Every call returns within op-timeout + 250 ms; under reset the calls fail
 * fast (figure: median and max of the failed calls); after the heal calls
 * on the master's slots succeed again within that bound; the other masters'
 * calls never fail.
 */
#include "netfault.h"

#define OP_TIMEOUT 2000
#define ON_VICTIM 2
#define WORKERS (ON_VICTIM + 2)
#define MAX_CALLS 100000
#define FAULT_MS 3000

int main(int argc, char **argv)
{
    static struct chaos_topo topo;
    static struct nf_worker nw[WORKERS];
    static struct chaos_worker w[WORKERS];
    static struct chaos_lat failed;
    pthread_t th[WORKERS];
    const char *mode = argc > 1 ? argv[1] : "";
    int reset = strcmp(mode, "reset") == 0, started[WORKERS], stop = 0, i, j, m;
    long bound = OP_TIMEOUT + NF_SLACK_MS;
    int64_t t_fault, t_heal, t_end, first_ok;
    struct nf_calls c;
    char what[160];

    if (!reset && strcmp(mode, "halfopen") != 0) {
        fprintf(stderr, "usage: %s halfopen|reset\n", argv[0]);
        return 2;
    }
    h_begin(reset ? "nf_path reset" : "nf_path halfopen");
    if (!(m = nf_begin(&topo, "nfpath", OP_TIMEOUT, ""))) return h_done();
    if (!nf_workers_ready(nw, w, WORKERS, ON_VICTIM, &topo, m, MAX_CALLS, &stop) ||
        !nf_start_workers(nw, th, started, WORKERS)) goto out;
    h_sleep_ms(1000);

    if (reset)
        CHECK(nf_rule("-s 127.0.0.1 -d %s -p tcp --dport %d -j REJECT --reject-with tcp-reset", nf_host(m), m),
              "client packets to M answered with a reset");
    else
        CHECK(nf_rule("-s %s -p tcp --sport %d -d 127.0.0.1 -j DROP", nf_host(m), m), "M's packets to the client dropped");
    t_fault = chaos_now_us();
    h_sleep_ms(FAULT_MS);
    nf_heal();
    t_heal = chaos_now_us();
    h_sleep_ms(3000);
    t_end = chaos_now_us();
    chaos_stop_workers(&stop, th, started, WORKERS);

    snprintf(what, sizeof what, "%s: calls to M during the fault", mode);
    nf_calls_of(&c, w, ON_VICTIM, t_fault, t_heal, bound);
    nf_check_bound(what, &c, bound);
    for (i = 0; i < ON_VICTIM; i++)
        for (j = 0; j < w[i].n; j++)
            if (w[i].calls[j].t0 < t_heal && w[i].calls[j].t0 + w[i].calls[j].us > t_fault && w[i].calls[j].status < 0)
                chaos_lat_add(&failed, w[i].calls[j].us);
    if (failed.n) {
        double med = chaos_lat_ms(&failed, 0.5);
        printf("# FIGURE %s: %zu failed calls during the fault, median %.1f ms, max %.1f ms\n", mode, failed.n, med,
               failed.max_us / 1000.0);
    }
    CHECK(failed.n > 0, "calls to M failed during the fault (%zu)", failed.n);

    first_ok = 0;
    for (i = 0; i < ON_VICTIM; i++)
        for (j = 0; j < w[i].n; j++) {
            const struct chaos_call *k = &w[i].calls[j];
            if (k->t0 >= t_heal && k->status == ORS_OK && (!first_ok || k->t0 + k->us < first_ok))
                first_ok = k->t0 + k->us;
        }
    if (first_ok) printf("# FIGURE %s: first call to M to succeed after the heal ended %.1f ms after it\n", mode,
                         (first_ok - t_heal) / 1000.0);
    CHECK(first_ok && first_ok - t_heal <= bound * 1000, "calls to M succeed again within %ld ms of the heal", bound);
    snprintf(what, sizeof what, "%s: calls to M after the heal", mode);
    nf_calls_of(&c, w, ON_VICTIM, t_heal, t_end, bound);
    nf_check_bound(what, &c, bound);
    snprintf(what, sizeof what, "%s: calls to the other masters meanwhile", mode);
    nf_calls_of(&c, w + ON_VICTIM, WORKERS - ON_VICTIM, t_fault, t_end, bound);
    nf_check_bound(what, &c, bound);
    CHECK(c.errors == 0 && c.ok > 0, "calls to the other masters all succeeded (%ld of %ld)", c.ok, c.n);
    nf_check_wrong(w, WORKERS);
out:
    chaos_lat_free(&failed);
    for (i = 0; i < WORKERS; i++) chaos_worker_free(&w[i]);
    ors_redis_shutdown();
    return h_done();
}
