/*
 * nf_trickle.c - a master's traffic trickles: its replies to the client, and
 * then separately the client's requests to it, are rate-limited (iptables
 * `limit` match: packets above the rate are dropped, TCP retransmits them)
 * while the client gets, then puts, a multi-MiB value. Every call must
 * return within op-timeout + 250 ms (ORS_OK or ORS_ERR_TIMEOUT): each read
 * and write uses what is left of the call's deadline, not a fresh socket
 * timeout. After the heal the value reads back whole.
 *
 * Environment (for exploring): NF_TRICKLE_MIB (value size, default 8),
 * NF_TRICKLE_RATE (packets per second, default 20).
 */
#include "netfault.h"

#define OP_TIMEOUT 2000
#define CALLS 2

static uint8_t *big[3];
static size_t big_len;

/* Which of the big values (1, 2) the bytes are; 0: none of them. */
static int which(const uint8_t *data, size_t len)
{
    int v;
    for (v = 1; v <= 2; v++)
        if (data && len == big_len && memcmp(data, big[v], len) == 0) return v;
    return 0;
}

/* Rate-limits the packets matching `match` (the rest is dropped). */
static int trickle(const char *match, long rate)
{
    return nf_rule("%s -m limit --limit %ld/second --limit-burst 4 -j ACCEPT", match, rate) &&
           nf_rule("%s -j DROP", match);
}

int main(void)
{
    static struct chaos_topo topo;
    long mib = atol(h_env("NF_TRICKLE_MIB", "8")), rate = atol(h_env("NF_TRICKLE_RATE", "20"));
    long bound = OP_TIMEOUT + NF_SLACK_MS;
    char id[64], match[256];
    int m, i, v;
    long n;
    uint8_t *data;
    size_t len;
    int32_t st;
    struct nf_calls c;

    h_begin("nf_trickle");
    if (!(m = nf_begin(&topo, "nftrickle", OP_TIMEOUT, ""))) return h_done();
    for (n = 0; n < CHAOS_PLACE_TRIES; n++) {
        snprintf(id, sizeof id, "%ld-trickle-%ld", (long)getpid(), n);
        if (topo.owner[chaos_slot(id)] == m) break;
    }
    big_len = (size_t)mib << 20;
    for (v = 1; v <= 2; v++) {
        big[v] = (uint8_t *)malloc(big_len);
        if (!big[v]) return 1;
        h_fill(big[v], big_len, 13, (unsigned)v);
    }
    h_note("value %ld MiB, %ld packets/s", mib, rate);
    CHECK_STATUS(ors_session_put(id, big[1], big_len, 600), ORS_OK, "put of the %ld MiB value, network whole", mib);

    /* Replies trickle: gets. */
    snprintf(match, sizeof match, "-s %s -p tcp --sport %d -d 127.0.0.1", nf_host(m), m);
    CHECK(trickle(match, rate), "M's replies rate-limited to %ld packets/s", rate);
    memset(&c, 0, sizeof c);
    for (i = 0; i < CALLS; i++) {
        int64_t t0 = chaos_now_us(), us;
        data = NULL;
        len = 0;
        st = ors_session_get(id, &data, &len);
        us = chaos_now_us() - t0;
        printf("# FIGURE trickle: get of %ld MiB with replies trickling: %s after %.1f ms%s\n", mib, h_code_name(st),
               us / 1000.0, st == ORS_OK && which(data, len) != 1 ? " (WRONG BYTES)" : "");
        CHECK(st != ORS_OK || which(data, len) == 1, "a get that returns OK returns the value whole");
        ors_free(data);
        nf_calls_add(&c, us, st, bound);
    }
    nf_check_bound("trickle: gets, replies rate-limited", &c, bound);
    nf_heal();

    /* Requests trickle: puts of value 2. */
    snprintf(match, sizeof match, "-s 127.0.0.1 -d %s -p tcp --dport %d", nf_host(m), m);
    CHECK(trickle(match, rate), "requests to M rate-limited to %ld packets/s", rate);
    memset(&c, 0, sizeof c);
    for (i = 0; i < CALLS; i++) {
        int64_t t0 = chaos_now_us(), us;
        st = ors_session_put(id, big[2], big_len, 600);
        us = chaos_now_us() - t0;
        printf("# FIGURE trickle: put of %ld MiB with requests trickling: %s after %.1f ms\n", mib, h_code_name(st),
               us / 1000.0);
        nf_calls_add(&c, us, st, bound);
    }
    nf_check_bound("trickle: puts, requests rate-limited", &c, bound);
    nf_heal();

    /* Whole again: the value is one of the two, whole. */
    data = NULL;
    len = 0;
    st = ors_session_get(id, &data, &len);
    v = st == ORS_OK ? which(data, len) : 0;
    ors_free(data);
    CHECK(st == ORS_OK && v != 0, "after the heal the value reads back whole (%s, value %d)", h_code_name(st), v);
    CHECK_STATUS(ors_session_put(id, big[1], big_len, 600), ORS_OK, "a put after the heal");

    ors_redis_shutdown();
    free(big[1]);
    free(big[2]);
    return h_done();
}
