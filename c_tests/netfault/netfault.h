/*
 * netfault.h - helpers for the network-fault suite (c_tests/netfault/nf_*.c,
 * ctest label netfault), on top of chaos.h.
 *
 * Each program runs under netns.sh: in a network namespace of its own with a
 * fresh cluster whose node i listens on 127.0.0.(11+i), port base+i. The
 * library is given those addresses; the program's own redis-cli and admin
 * sockets use 127.0.0.1 (chaos.h's helpers), which no rule touches. Faults
 * are iptables rules in the namespace's INPUT chain (every packet on
 * loopback passes it once); nf_heal() flushes them.
 *
 * The bound every call must keep, whatever the fault: op-timeout + 250 ms.
 */
#ifndef ORS_NETFAULT_H
#define ORS_NETFAULT_H

#include "chaos.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define NF_SLACK_MS 250

/* 127.0.0.11 .. 127.0.0.16: the address of the node on `port`. */
static inline const char *nf_host(int port)
{
    static char bufs[8][32];
    static unsigned next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "127.0.0.%d", 11 + port - chaos_base_port());
    return b;
}

/* The library's config: every node at its own address as a seed. */
static inline const char *nf_config(const char *cluster_name, const char *extra)
{
    static char buf[2048];
    int base = chaos_base_port(), i, n;
    n = snprintf(buf, sizeof buf, "redis-nodes=");
    for (i = 0; i < CHAOS_NODES; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%s:%d", i ? ";" : "", nf_host(base + i), base + i);
    /* The suite was written for calls that ride out a failover: the node
     * health tests ask for node-fail-fast=true themselves. */
    if (!extra || !strstr(extra, "node-fail-fast=")) n += snprintf(buf + n, sizeof buf - (size_t)n, " node-fail-fast=false");
    snprintf(buf + n, sizeof buf - (size_t)n, " cluster-name=%s%s%s", cluster_name, (extra && *extra) ? " " : "",
             extra ? extra : "");
    return buf;
}

/* Reads the slot map, names the victim (the first master in port order, the
 * same on every run) and initialises the library with op-timeout and
 * `extra`; the victim's port, 0 on failure (checks printed). */
static inline int nf_begin(struct chaos_topo *topo, const char *cluster_name, long op_timeout, const char *extra)
{
    char opts[256];
    int m;
    ors_redis_set_logger(chaos_logger, NULL);
    if (chaos_topology(topo, 0) < 3) {
        CHECK(0, "the cluster's slot map can be read");
        return 0;
    }
    m = topo->master_port[0];
    snprintf(opts, sizeof opts, "op-timeout=%ld log-level=warn%s%s", op_timeout, (extra && *extra) ? " " : "",
             extra ? extra : "");
    h_note("victim master %s:%d; %s", nf_host(m), m, opts);
    if (CHECK_STATUS(ors_redis_init(nf_config(cluster_name, opts)), ORS_OK, "init") != ORS_OK) return 0;
    return m;
}

/* ------------------------------------------------------------------ */
/* iptables rules in this namespace                                    */
/* ------------------------------------------------------------------ */

/* Appends one rule to INPUT ("-s ... -j DROP"); 1 on success. */
static inline int nf_rule(const char *fmt, ...) H_PRINTF(1, 2);
static inline int nf_rule(const char *fmt, ...)
{
    char rule[1024];
    int rc;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rule, sizeof rule, fmt, ap);
    va_end(ap);
    rc = chaos_sh("iptables -w 10 -A INPUT %s 2>&1", rule);
    if (rc != 0) h_note("iptables -A INPUT %s failed (exit %d)", rule, rc);
    return rc == 0;
}

/* Removes every rule: the network is whole again. */
static inline int nf_heal(void)
{
    return chaos_sh("iptables -w 10 -F INPUT 2>&1") == 0;
}

/* The client's packets to the node's port and the node's replies, dropped
 * (no reset, no ICMP): the node looks dead to the library only. */
static inline int nf_blackhole_client(int port)
{
    const char *h = nf_host(port);
    return nf_rule("-s 127.0.0.1 -d %s -p tcp --dport %d -j DROP", h, port) &&
           nf_rule("-s %s -p tcp --sport %d -d 127.0.0.1 -j DROP", h, port);
}

/* Every packet to or from the node's address: the node looks dead to
 * everyone but the test's own 127.0.0.1 control path. */
static inline int nf_blackhole_node(int port)
{
    const char *h = nf_host(port);
    return nf_rule("-s %s -j DROP", h) && nf_rule("-d %s -j DROP", h);
}

/* The node cut from every other node, still reachable by the client. */
static inline int nf_partition_node(int port)
{
    const char *h = nf_host(port);
    return nf_rule("-s %s ! -d 127.0.0.1 -j DROP", h) && nf_rule("-d %s ! -s 127.0.0.1 -j DROP", h);
}

/* ------------------------------------------------------------------ */
/* The cluster, seen through 127.0.0.1                                  */
/* ------------------------------------------------------------------ */

/* One CLUSTER NODES line's fields: id, port, flags, master id, link state. */
struct nf_node_line {
    char id[64], flags[128], master[64], link[32];
    int port;
};

static inline int nf_parse_node_line(const char *line, struct nf_node_line *n)
{
    char addr[128], *cut;
    long ping, pong, epoch;
    if (sscanf(line, "%63s %127s %127s %63s %ld %ld %ld %31s", n->id, addr, n->flags, n->master, &ping, &pong, &epoch,
               n->link) != 8)
        return 0;
    cut = strrchr(addr, '@');
    if (cut) *cut = '\0';
    cut = strrchr(addr, ':');
    n->port = cut ? atoi(cut + 1) : 0;
    return n->port > 0;
}

/* The port of a connected replica of the master on `port` (CLUSTER NODES
 * as `ask_port` sees it); 0 when there is none. */
static inline int nf_replica_of(int port, int ask_port)
{
    static char out[65536];
    struct nf_node_line n;
    char master_id[64] = "";
    const char *line;
    if (h_cli_capture(out, sizeof out, "-p %d CLUSTER NODES", ask_port) <= 0) return 0;
    for (line = out; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "")
        if (nf_parse_node_line(line, &n) && n.port == port) snprintf(master_id, sizeof master_id, "%s", n.id);
    if (!master_id[0]) return 0;
    for (line = out; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "")
        if (nf_parse_node_line(line, &n) && strstr(n.flags, "slave") && !strstr(n.flags, "fail") &&
            strcmp(n.master, master_id) == 0 && strcmp(n.link, "connected") == 0)
            return n.port;
    return 0;
}

/* A connection of the test's own to a node over 127.0.0.1, for fast polls
 * (ROLE every millisecond; redis-cli would cost a process each time). */
static inline int nf_admin_connect(int port)
{
    struct sockaddr_in a;
    struct timeval tv = {0, 200000};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ROLE on an admin connection: 1 master, 0 replica, -1 no answer (the
 * connection is then closed and *fd set to -1 for the caller to redial). */
static inline int nf_admin_is_master(int *fd)
{
    char buf[512];
    ssize_t n;
    if (*fd < 0) return -1;
    if (write(*fd, "ROLE\r\n", 6) != 6 || (n = read(*fd, buf, sizeof buf - 1)) <= 0) {
        close(*fd);
        *fd = -1;
        return -1;
    }
    buf[n] = '\0';
    /* "*3\r\n$6\r\nmaster..." or "*5\r\n$5\r\nslave..."; the rest of a long
     * master reply (its replicas) is drained by the next short reads. */
    while (n == (ssize_t)sizeof buf - 1 && (n = recv(*fd, buf + 16, sizeof buf - 17, MSG_DONTWAIT)) > 0) {
    }
    return strstr(buf, "master") != NULL ? 1 : 0;
}

/* Polls ROLE on `port` every millisecond until it says master (bounded);
 * the moment it first did (chaos_now_us), 0 on timeout. */
static inline int64_t nf_wait_master(int port, long limit_ms)
{
    int64_t end = h_now_ms() + limit_ms;
    int fd = nf_admin_connect(port), r;
    while (h_now_ms() < end) {
        if (fd < 0) fd = nf_admin_connect(port);
        r = nf_admin_is_master(&fd);
        if (r == 1) {
            int64_t t = chaos_now_us();
            close(fd);
            return t;
        }
        h_sleep_ms(1);
    }
    if (fd >= 0) close(fd);
    return 0;
}

/* cluster.sh wait-healthy: every node up, agreeing, each master with a replica. */
static inline int nf_wait_healthy(int seconds)
{
    int rc = chaos_ctl("wait-healthy %d", seconds);
    CHECK(rc == 0, "the cluster is healthy again after the heal (within %d s)", seconds);
    return rc == 0;
}

/* ------------------------------------------------------------------ */
/* Call durations against the bound                                     */
/* ------------------------------------------------------------------ */

struct nf_calls {
    long n, ok, errors, over; /* over: calls longer than the bound */
    int64_t max_us;
    int32_t worst_status;
};

static inline void nf_calls_add(struct nf_calls *c, int64_t us, int32_t st, long bound_ms)
{
    c->n++;
    if (st < 0) c->errors++;
    else c->ok++;
    if (us > bound_ms * 1000) c->over++;
    if (us > c->max_us) {
        c->max_us = us;
        c->worst_status = st;
    }
}

/* Prints "# FIGURE <what>: ..." for c and checks the bound. */
static inline void nf_check_bound(const char *what, const struct nf_calls *c, long bound_ms)
{
    printf("# FIGURE %s: %ld calls (%ld ok, %ld errors), max %.1f ms (%s), %ld over %ld ms\n", what, c->n, c->ok,
           c->errors, c->max_us / 1000.0, h_code_name(c->worst_status), c->over, bound_ms);
    CHECK(c->over == 0, "%s: every call returned within op-timeout + %d ms (%ld ms; max %.1f ms)", what, NF_SLACK_MS,
          bound_ms, c->max_us / 1000.0);
}

/* ------------------------------------------------------------------ */
/* Worker threads (chaos.h's chaos_worker, rounds of put + get)          */
/* ------------------------------------------------------------------ */

struct nf_worker {
    struct chaos_worker *w; /* an element of the program's chaos_worker array, for chaos.h's helpers */
    int port;        /* the master its session lives on */
    long max_rounds; /* bounded in count, and by *stop in time */
    int *stop;
    uint32_t ttl;
    long pace_ms; /* pause between rounds */
};

static inline void *nf_worker_main(void *arg)
{
    struct nf_worker *nw = (struct nf_worker *)arg;
    struct chaos_round r;
    long i;
    for (i = 0; i < nw->max_rounds && !chaos_load(nw->stop); i++) {
        chaos_worker_round(nw->w, 0, nw->ttl, &r);
        if (r.read == CHAOS_READ_NONE || r.read == CHAOS_READ_FAILED) h_sleep_ms(5); /* no busy loop on errors */
        else if (nw->pace_ms) h_sleep_ms(nw->pace_ms);
    }
    return NULL;
}

/* Readies worker t with one session on the master on `port` (topology *t)
 * and room for max_calls logged calls. */
static inline int nf_worker_init(struct nf_worker *nw, struct chaos_worker *cw, int t, const struct chaos_topo *topo,
                                 int port, int max_calls, int *stop)
{
    memset(nw, 0, sizeof *nw);
    nw->w = cw;
    nw->port = port;
    nw->max_rounds = max_calls / 2;
    nw->stop = stop;
    nw->ttl = 600;
    nw->pace_ms = 1;
    return chaos_worker_init(cw, t, max_calls) && chaos_worker_place(cw, 0, "nf", topo, port);
}

/* The logged calls of workers w[0 .. n-1] that overlap [from, to): started
before `to` and ended after `from`. */
static inline void nf_calls_of(struct nf_calls *c, const struct chaos_worker *w, int n, int64_t from, int64_t to,
                               long bound_ms)
{
    int i, j;
    memset(c, 0, sizeof *c);
    for (i = 0; i < n; i++)
        for (j = 0; j < chaos_load(&w[i].n); j++)
            if (w[i].calls[j].t0 < to && w[i].calls[j].t0 + w[i].calls[j].us > from)
                nf_calls_add(c, w[i].calls[j].us, w[i].calls[j].status, bound_ms);
}

/* Readies n workers, each with room for max_calls logged calls: the first
 * on_victim on the slots of the master on `m`, the others spread over the
 * other masters. */
static inline int nf_workers_ready(struct nf_worker *nw, struct chaos_worker *w, int n, int on_victim,
                                   const struct chaos_topo *topo, int m, int max_calls, int *stop)
{
    int i, others = 0, other[CHAOS_MAX_MASTERS];
    for (i = 0; i < topo->n_masters; i++)
        if (topo->master_port[i] != m) other[others++] = topo->master_port[i];
    for (i = 0; i < n; i++) {
        int port = (i < on_victim || !others) ? m : other[(i - on_victim) % others];
        if (!nf_worker_init(&nw[i], &w[i], i, topo, port, max_calls, stop)) {
            CHECK(0, "worker %d ready (a session on master %d)", i, port);
            return 0;
        }
    }
    return 1;
}

/* Starts workers w[0 .. n-1]; started[i] says which did. */
static inline int nf_start_workers(struct nf_worker *w, pthread_t *th, int *started, int n)
{
    int i, all = 1;
    for (i = 0; i < n; i++) {
        started[i] = pthread_create(&th[i], NULL, nf_worker_main, &w[i]) == 0;
        all &= started[i];
    }
    if (!all) chaos_stop_workers(w[0].stop, th, started, n);
    CHECK(all, "%d worker threads started", n);
    return all;
}

/* Wrong values read by workers w[0 .. n-1] (none allowed, whatever the fault). */
static inline void nf_check_wrong(const struct chaos_worker *w, int n)
{
    long wrong = 0;
    const char *first = "";
    int i;
    for (i = 0; i < n; i++) {
        if (w[i].wrong && !wrong) first = w[i].first_wrong;
        wrong += w[i].wrong;
    }
    CHECK(wrong == 0, "no get returned a value never put or not yet put (%ld%s%s)", wrong, wrong ? ": " : "", first);
}

#endif /* ORS_NETFAULT_H */
