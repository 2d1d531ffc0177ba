/*
 * nf_partition.c 0|1 - minority partition: master M is cut from every other
 * node but stays reachable by the client, while writer threads put new
 * sessions (one key per write) on M's slots with wait-replicas 0 or 1. The
 * majority fails M over to its replica; the partition heals, M rejoins as a
 * replica and drops what it took alone. Every acknowledged write (ORS_OK) is
 * then read back: a missing or different value is an acknowledged write
 * lost.
 *
 * wait-replicas=1: none may be lost (a write is acknowledged only once a
 * replica has it). wait-replicas=0: the count is printed, not asserted:
 * Redis Cluster replicates asynchronously, so what M acknowledged alone
 * before it stopped taking writes (cluster-node-timeout) is lost.
 */
#include "netfault.h"

#define OP_TIMEOUT 2000
#define WRITERS 2
#define MAX_WRITES 40000 /* per writer */
#define TTL 600

struct writer {
    pthread_t th;
    int t, started, *stop, port;
    const struct chaos_topo *topo;
    long n;                /* writes made */
    int8_t st[MAX_WRITES]; /* status of write i */
    int64_t t0[MAX_WRITES];
    int64_t max_us;
    long over, lost, read_errors;
    int64_t lost_first, lost_last;
};

/* The session id of write i: the first name on M's slots. */
static void write_id(const struct writer *w, long i, char *id, size_t cap)
{
    long n;
    for (n = 0; n < CHAOS_PLACE_TRIES; n++) {
        snprintf(id, cap, "%ld-part-%d-%ld-%ld", (long)getpid(), w->t, i, n);
        if (w->topo->owner[chaos_slot(id)] == w->port) return;
    }
}

static void *writer_main(void *arg)
{
    struct writer *w = (struct writer *)arg;
    char id[96];
    for (w->n = 0; w->n < MAX_WRITES && !chaos_load(w->stop); w->n++) {
        int64_t t1;
        write_id(w, w->n, id, sizeof id);
        w->t0[w->n] = chaos_now_us();
        w->st[w->n] = (int8_t)chaos_put(id, chaos_tag(id), (uint32_t)w->n, TTL);
        t1 = chaos_now_us();
        if (t1 - w->t0[w->n] > w->max_us) w->max_us = t1 - w->t0[w->n];
        if (t1 - w->t0[w->n] > (OP_TIMEOUT + NF_SLACK_MS) * 1000L) w->over++;
        if (w->st[w->n] < 0) h_sleep_ms(2);
    }
    return NULL;
}

/* Reads back every acknowledged write of w. */
static void *reader_main(void *arg)
{
    struct writer *w = (struct writer *)arg;
    char id[96];
    long i;
    for (i = 0; i < w->n; i++) {
        int valid = 0, tries;
        uint32_t seq = 0;
        int32_t st = ORS_ERR_INTERNAL;
        if (w->st[i] != ORS_OK) continue;
        write_id(w, i, id, sizeof id);
        for (tries = 0; tries < 5; tries++) {
            st = chaos_get(id, chaos_tag(id), &valid, &seq);
            if (st >= 0) break;
            h_sleep_ms(100);
        }
        if (st < 0) {
            w->read_errors++;
        } else if (st != ORS_OK || !valid || seq != (uint32_t)i) {
            if (!w->lost++) w->lost_first = w->t0[i];
            w->lost_last = w->t0[i];
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    static struct chaos_topo topo;
    static struct writer w[WRITERS];
    int wait_replicas = argc > 1 ? atoi(argv[1]) : 0, stop = 0, i, m, r;
    long by_status[16] = {0}, total = 0, acked = 0, lost = 0, read_errors = 0, over = 0;
    int64_t t_part, t_promo, t_heal, max_us = 0, lost_first = 0, lost_last = 0;
    char extra[128], name[64];

    snprintf(name, sizeof name, "nf_partition wait-replicas=%d", wait_replicas);
    h_begin(name);
    chaos_value_span = 64;
    snprintf(extra, sizeof extra, "wait-replicas=%d", wait_replicas);
    if (!(m = nf_begin(&topo, "nfpart", OP_TIMEOUT, extra))) return h_done();
    r = nf_replica_of(m, m);
    CHECK(r > 0, "M %s:%d has a replica (%d)", nf_host(m), m, r);
    for (i = 0; i < WRITERS; i++) {
        w[i].t = i;
        w[i].stop = &stop;
        w[i].port = m;
        w[i].topo = &topo;
        w[i].started = pthread_create(&w[i].th, NULL, writer_main, &w[i]) == 0;
        CHECK(w[i].started, "writer %d started", i);
    }
    h_sleep_ms(1000);
    t_part = chaos_now_us();
    CHECK(nf_partition_node(m), "M cut from every other node (client still reaches it)");
    t_promo = r > 0 ? nf_wait_master(r, 30000) : 0;
    CHECK(t_promo != 0, "M's replica %d took over", r);
    if (t_promo) printf("# FIGURE partition wait-replicas=%d: replica promoted %.2f s after the partition\n",
                        wait_replicas, (t_promo - t_part) / 1e6);
    h_sleep_ms(1500);
    chaos_stop_workers(&stop, NULL, NULL, 0);
    for (i = 0; i < WRITERS; i++)
        if (w[i].started) pthread_join(w[i].th, NULL);
    nf_heal();
    t_heal = chaos_now_us();
    nf_wait_healthy(60);
    h_note("healed %.2f s after the partition; reading back", (t_heal - t_part) / 1e6);

    for (i = 0; i < WRITERS; i++) w[i].started = pthread_create(&w[i].th, NULL, reader_main, &w[i]) == 0;
    for (i = 0; i < WRITERS; i++) {
        long j;
        if (w[i].started) pthread_join(w[i].th, NULL);
        for (j = 0; j < w[i].n; j++) {
            total++;
            if (w[i].st[j] == ORS_OK) acked++;
            by_status[(-w[i].st[j]) & 15]++;
        }
        lost += w[i].lost;
        read_errors += w[i].read_errors;
        over += w[i].over;
        if (w[i].max_us > max_us) max_us = w[i].max_us;
        if (w[i].lost && (!lost_first || w[i].lost_first < lost_first)) lost_first = w[i].lost_first;
        if (w[i].lost_last > lost_last) lost_last = w[i].lost_last;
    }
    printf("# FIGURE partition wait-replicas=%d: %ld writes, %ld acknowledged, %ld NOT_DURABLE, %ld TIMEOUT, %ld "
           "CLUSTER, %ld other errors; max call %.1f ms\n",
           wait_replicas, total, acked, by_status[11], by_status[6], by_status[9],
           total - acked - by_status[11] - by_status[6] - by_status[9], max_us / 1000.0);
    printf("# FIGURE partition wait-replicas=%d: %ld of %ld acknowledged writes lost after the heal", wait_replicas,
           lost, acked);
    if (lost)
        printf(" (written %.2f s to %.2f s after the partition)", (lost_first - t_part) / 1e6,
               (lost_last - t_part) / 1e6);
    printf("\n");
    CHECK(over == 0, "every write returned within op-timeout + %d ms (max %.1f ms)", NF_SLACK_MS, max_us / 1000.0);
    CHECK(read_errors == 0, "every acknowledged write could be read back (%ld read errors)", read_errors);
    CHECK(acked > 0, "writes were acknowledged (%ld)", acked);
    if (wait_replicas >= 1)
        CHECK(lost == 0, "wait-replicas=%d: no acknowledged write lost (%ld of %ld)", wait_replicas, lost, acked);
    else
        h_note("wait-replicas=0: %ld lost, Redis Cluster's asynchronous replication (printed, not asserted)", lost);
    ors_redis_shutdown();
    return h_done();
}
