/*
 * ns_names.c - host-name endpoints and DNS (ctest label netshape).
 *
 * Runs under netns.sh --hostnames [--tls]: the nodes announce the names
 * redis-1 .. redis-6 (CLUSTER SLOTS, MOVED and ASK name them), the test's
 * own /etc/hosts lists them, and the seed is redis-cfg:6379, a name that
 * resolves to three addresses, each DNATed to a node (a managed service's
 * configuration endpoint). The resolver, 127.0.0.53, is nobody.
 *
 *   ns_names calls   init through the seed name, 200 put/get/del cycles, an
 *                    ASK and a MOVED to a host name, `ors-redis doctor`
 *                    (with --tls: each node's certificate names only that
 *                    node, so every connect must send and check its own
 *                    node's name)
 *   ns_names dns     then the names stop resolving (their hosts entries
 *                    removed, the resolver blackholed: a lookup hangs for
 *                    glibc's 10 s) and the client connections are reset
 *                    (again every 20 cycles):
 *                    every call must still succeed within op-timeout on
 *                    the last known addresses, with one log line per name;
 *                    a name never resolved fails init within
 *                    redis-connect-timeout; then, names back, the master
 *                    of a session fails over and the calls find the
 *                    promoted replica by its name.
 *   ns_names reset   names and resets together (issue 28): the names stop
 *                    resolving and every client connection is closed at
 *                    once, the answers aged: the first call after the
 *                    reset succeeds within op-timeout on the last known
 *                    addresses, and so do the next ones.
 *
 * Figures ("# FIGURE"): the first call after the blackhole, the slowest of
 * the later ones, the failed init's time and status, the failover.
 */
#include "netfault.h"

#include <signal.h>

#define OP_TIMEOUT 2000
#define CONNECT_TIMEOUT 1000
#define CYCLES 200

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int unresolved_lines, resolves_again_lines, named_masters, no_replica_lines;

/* chaos_logger, plus the lines this test counts. */
static void logger(int32_t level, const char *message, void *user_data)
{
    pthread_mutex_lock(&log_lock);
    if (strstr(message, "host name does not resolve")) unresolved_lines++;
    if (strstr(message, "host name resolves again")) resolves_again_lines++;
    if (strstr(message, "master redis-")) named_masters++;
    if (strstr(message, "has no replica")) no_replica_lines++;
    pthread_mutex_unlock(&log_lock);
    chaos_logger(level, message, user_data);
}

static int counted(int *n)
{
    int v;
    pthread_mutex_lock(&log_lock);
    v = *n;
    pthread_mutex_unlock(&log_lock);
    return v;
}

static const char *config(const char *seed, const char *extra)
{
    static char buf[1024];
    const char *tls = getenv("ORS_NETNS_TLS");
    char tls_opts[512] = "";
    if (tls && *tls) snprintf(tls_opts, sizeof tls_opts, " tls-enabled=true tls-cacert=%s/ca.pem", tls);
    snprintf(buf, sizeof buf, "redis-nodes=%s cluster-name=nsnames op-timeout=%d redis-connect-timeout=%d%s%s%s", seed,
             OP_TIMEOUT, CONNECT_TIMEOUT, tls_opts, (extra && *extra) ? " " : "", extra ? extra : "");
    return buf;
}

/* A put, a get and a delete of `id`; ORS_OK or the first failure. */
static int32_t cycle(const char *id, uint32_t seq)
{
    uint32_t tag = chaos_tag(id), got = 0;
    int valid = 0;
    int32_t st = chaos_put(id, tag, seq, 600);
    if (st != ORS_OK) return st;
    st = chaos_get(id, tag, &valid, &got);
    if (st != ORS_OK) return st;
    if (!valid || got != seq) return ORS_ERR_INTERNAL;
    return ors_session_del(id);
}

/* The node id of the node on `port`. */
static int node_id(int port, char *out, size_t cap)
{
    const char *id = redis_cli("-p %d CLUSTER MYID", port);
    snprintf(out, cap, "%s", id);
    return strlen(out) == 40;
}

/* A session's slot taken from its master to another one: the put meets an
 * ASK to the importing node's name, the get after the move a MOVED. */
static void redirects_to_names(void)
{
    static struct chaos_topo topo;
    char id[64], src_id[48], dst_id[48];
    int slot, src, dst, i, moved0, ask0, moved, ask, valid = 0;
    uint32_t seq = 0;
    if (!CHECK(chaos_topology(&topo, 0) >= 3, "the slot map can be read")) return;
    snprintf(id, sizeof id, "ns-redirect-%ld", (long)getpid());
    slot = chaos_slot(id);
    src = topo.owner[slot];
    dst = 0;
    for (i = 0; i < topo.n_masters; i++)
        if (topo.master_port[i] != src) dst = topo.master_port[i];
    if (!CHECK(src && dst && node_id(src, src_id, sizeof src_id) && node_id(dst, dst_id, sizeof dst_id),
               "slot %d: its master %d and another master %d", slot, src, dst))
        return;
    chaos_log_counts(NULL, &moved0, &ask0);
    CHECK(strcmp(redis_cli("-p %d CLUSTER SETSLOT %d IMPORTING %s", dst, slot, src_id), "OK") == 0 &&
              strcmp(redis_cli("-p %d CLUSTER SETSLOT %d MIGRATING %s", src, slot, dst_id), "OK") == 0,
          "slot %d migrating from %d to %d", slot, src, dst);
    CHECK_STATUS(chaos_put(id, chaos_tag(id), 1, 600), ORS_OK, "put while its slot migrates (ASK)");
    CHECK(strcmp(redis_cli("-p %d CLUSTER SETSLOT %d NODE %s", dst, slot, dst_id), "OK") == 0 &&
              strcmp(redis_cli("-p %d CLUSTER SETSLOT %d NODE %s", src, slot, dst_id), "OK") == 0,
          "slot %d moved to %d", slot, dst);
    CHECK_STATUS(chaos_get(id, chaos_tag(id), &valid, &seq), ORS_OK, "get after the slot moved (MOVED)");
    CHECK(valid && seq == 1, "the value written through the ASK is read through the MOVED");
    chaos_log_counts(NULL, &moved, &ask);
    CHECK(ask > ask0 && moved > moved0, "an ASK (%d) and a MOVED (%d) were followed", ask - ask0, moved - moved0);
    ors_session_del(id);
}

/* The operator command against the same seed name. */
static void doctor(void)
{
    static char out[65536];
    char cmd[2048], q[1024];
    const char *dir = getenv("CARGO_TARGET");
    int rc;
    if (!CHECK(dir && *dir, "CARGO_TARGET names the folder of the ors-redis command")) return;
    h_shell_quote(q, sizeof q, config(getenv("ORS_NETNS_SEED"), "log-level=warn"));
    snprintf(cmd, sizeof cmd, "%s/ors-redis", dir);
    if (!CHECK(access(cmd, X_OK) == 0, "%s exists (cargo build --release --features cli)", cmd)) return;
    rc = chaos_run_capture(out, sizeof out, "%s/ors-redis doctor -q -c %s 2>&1", dir, q);
    chaos_note_tail(out, 40);
    CHECK(rc == 0, "ors-redis doctor through the seed name passes (exit %d)", rc);
    CHECK(strstr(out, "redis-1:") || strstr(out, "127.0.0.11:"), "the report lists the nodes");
}

/* Writes `text` over the hosts file in place (it is bind-mounted: the
 * inode must stay). */
static int write_hosts(const char *text)
{
    const char *path = getenv("ORS_NETNS_HOSTS");
    FILE *f = path ? fopen(path, "w") : NULL;
    if (!f) return 0;
    fputs(text, f);
    return fclose(f) == 0;
}

static int read_hosts(char *buf, size_t cap)
{
    const char *path = getenv("ORS_NETNS_HOSTS");
    FILE *f = path ? fopen(path, "r") : NULL;
    size_t n;
    if (!f) return 0;
    n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
    return n > 0;
}

static void reset_client_connections(void);

/* Waits (bounded) until `*n` log lines were counted. */
static void wait_for_lines(int *n, long limit_ms)
{
    int64_t end = h_now_ms() + limit_ms;
    while (counted(n) == 0 && h_now_ms() < end) h_sleep_ms(50);
}

/* Names and resets together (issue 28): the names stop resolving (their
 * hosts entries gone, the resolver silent) and every client connection is
 * closed at the same moment, while the cached answers have aged. The first
 * call after the reset must succeed within op-timeout on the last known
 * addresses (it used to spend its budget waiting for the resolver, name
 * after name, and fail with "gave up after 1 attempt(s) ... the node
 * closed the connection"), without waiting for the resolver at all; so must
 * the next ones. */
static void names_and_resets(void)
{
    static char hosts[8192];
    char id[64];
    int i, failed = 0, valid = 0;
    uint32_t seq = 0;
    int64_t t0, first_us, worst_us = 0;
    int32_t first_st, st;

    snprintf(id, sizeof id, "ns-reset-%ld", (long)getpid());
    CHECK_STATUS(chaos_put(id, chaos_tag(id), 1, 600), ORS_OK, "put before the reset");
    for (i = 0; i < 20; i++) cycle("ns-reset-warm", (uint32_t)i + 1);
    /* Past the 5 s an answer is trusted, as any long-lived ORS is. */
    h_sleep_ms(5500);
    if (!CHECK(read_hosts(hosts, sizeof hosts), "the hosts file can be read")) return;
    CHECK(write_hosts("127.0.0.1 localhost\n::1 localhost\n") &&
              chaos_sh("iptables -w 10 -A INPUT -d 127.0.0.53 -p udp --dport 53 -j DROP && "
                       "iptables -w 10 -A INPUT -d 127.0.0.53 -p tcp --dport 53 -j DROP") == 0,
          "the names stop resolving (hosts entries gone, resolver silent)");
    reset_client_connections();

    t0 = chaos_now_us();
    first_st = chaos_get(id, chaos_tag(id), &valid, &seq);
    first_us = chaos_now_us() - t0;
    h_save_error();
    CHECK_STATUS(first_st, ORS_OK, "the first call after the reset (%s)", h_saved_error());
    CHECK(valid && seq == 1, "it reads the session written before");
    CHECK(first_us < (int64_t)(OP_TIMEOUT + NF_SLACK_MS) * 1000, "within op-timeout (%.1f ms)", first_us / 1e3);
    /* It waits for no lookup: the addresses it knows answer (it used to wait
     * half a connect budget per name it met, 1 s and more of its 2). */
    CHECK(first_us < NF_SLACK_MS * 1000, "without waiting for the silent resolver (%.1f ms < %d ms)", first_us / 1e3,
          NF_SLACK_MS);
    for (i = 0; i < 20; i++) {
        char each[32];
        snprintf(each, sizeof each, "ns-reset-%d", i);
        if (i % 5 == 0) reset_client_connections();
        t0 = chaos_now_us();
        st = cycle(each, (uint32_t)i + 2);
        t0 = chaos_now_us() - t0;
        if (t0 > worst_us) worst_us = t0;
        if (st != ORS_OK) failed++;
    }
    printf("# FIGURE names and resets: first call (get) after the reset %.1f ms, status %d; 20 later cycles "
           "(connections reset every 5): %d failed, slowest %.1f ms; op-timeout %d ms\n",
           first_us / 1e3, first_st, failed, worst_us / 1e3, OP_TIMEOUT);
    CHECK(failed == 0, "no later call failed (%d)", failed);
    CHECK(write_hosts(hosts) && nf_heal(), "the names resolve again");
}

static void reset_client_connections(void)
{
    int i;
    for (i = 0; i < CHAOS_NODES; i++)
        redis_cli("-p %d CLIENT KILL TYPE normal SKIPME yes", chaos_base_port() + i);
}

static void dns_goes_away(void)
{
    static char hosts[8192];
    static struct chaos_topo topo;
    char id[64];
    int i, failed = 0, m, r;
    int64_t t0, first_us, worst_us = 0, t_kill, t_ok = 0;
    int32_t st, first_st;

    for (i = 0; i < 20; i++) cycle("ns-dns-warm", (uint32_t)i + 1);
    /* Past the 5 s an answer is trusted: the next connect asks again. */
    h_sleep_ms(5500);
    if (!CHECK(read_hosts(hosts, sizeof hosts), "the hosts file can be read")) return;
    CHECK(write_hosts("127.0.0.1 localhost\n::1 localhost\n"), "the node names are gone from the hosts file");
    /* INPUT, not OUTPUT: a packet dropped on its way out fails the send at
     * once (EPERM), and the lookup with it; dropped on its way in, it is
     * never answered and the lookup waits for glibc's timeout. */
    CHECK(chaos_sh("iptables -w 10 -A INPUT -d 127.0.0.53 -p udp --dport 53 -j DROP && "
                   "iptables -w 10 -A INPUT -d 127.0.0.53 -p tcp --dport 53 -j DROP") == 0,
          "the resolver 127.0.0.53 is blackholed");
    reset_client_connections();

    t0 = chaos_now_us();
    first_st = cycle("ns-dns-1", 1);
    first_us = chaos_now_us() - t0;
    CHECK_STATUS(first_st, ORS_OK, "the first call after the names stopped resolving");
    for (i = 0; i < 100; i++) {
        char each[32];
        snprintf(each, sizeof each, "ns-dns-%d", i);
        if (i % 20 == 10) reset_client_connections();
        t0 = chaos_now_us();
        st = cycle(each, (uint32_t)i + 2);
        t0 = chaos_now_us() - t0;
        if (t0 > worst_us) worst_us = t0;
        if (st != ORS_OK) failed++;
    }
    printf("# FIGURE dns blackholed: first call (put+get+del, connections reset) %.1f ms, status %d; "
           "100 later cycles (connections reset every 20): %d failed, slowest %.1f ms; op-timeout %d ms\n",
           first_us / 1e3, first_st, failed, worst_us / 1e3, OP_TIMEOUT);
    CHECK(failed == 0, "no call failed while the names did not resolve (%d)", failed);
    CHECK(first_us < (int64_t)(OP_TIMEOUT + NF_SLACK_MS) * 1000, "the first call kept op-timeout (%.1f ms)",
          first_us / 1e3);
    /* The names in use are asked again in the background; a silent
     * resolver's lookup ends after glibc's 10 s, and then the name is
     * reported (or earlier, by a connect that found it in flight). */
    wait_for_lines(&unresolved_lines, 15000);
    CHECK(counted(&unresolved_lines) >= 1 && counted(&unresolved_lines) <= CHAOS_NODES,
          "a name that stops resolving is reported once, not per call (%d lines)", counted(&unresolved_lines));

    /* A name never resolved: init fails within redis-connect-timeout. */
    ors_redis_shutdown();
    t0 = chaos_now_us();
    st = ors_redis_init(config("redis-new:6379", "log-level=warn"));
    t0 = chaos_now_us() - t0;
    printf("# FIGURE dns blackholed: init with a seed name never resolved failed in %.1f ms with status %d (%s); "
           "redis-connect-timeout %d ms\n",
           t0 / 1e3, st, ors_last_error(), CONNECT_TIMEOUT);
    CHECK(st != ORS_OK, "init with a name that does not resolve fails");
    CHECK(t0 < (int64_t)(OP_TIMEOUT + NF_SLACK_MS) * 1000, "within op-timeout (%.1f ms)", t0 / 1e3);

    /* The names come back; a master fails over, its replica found by name. */
    CHECK(write_hosts(hosts), "the hosts file is whole again");
    CHECK(nf_heal(), "the resolver is reachable again (refusing)");
    if (CHECK_STATUS(ors_redis_init(config(getenv("ORS_NETNS_SEED"), "log-level=info")), ORS_OK, "init again") !=
        ORS_OK)
        return;
    snprintf(id, sizeof id, "ns-failover-%ld", (long)getpid());
    CHECK_STATUS(cycle(id, 1), ORS_OK, "a cycle before the failover");
    if (!CHECK(chaos_topology(&topo, 0) >= 3, "the slot map can be read")) return;
    m = topo.owner[chaos_slot(id)];
    r = nf_replica_of(m, m);
    if (!CHECK(m && r > 0, "the session's master %d has a replica (%d)", m, r)) return;
    CHECK(chaos_signal_node(m, SIGKILL, &t_kill), "master %d killed", m);
    for (i = 0; i < 200 && !t_ok; i++) {
        int64_t c0 = chaos_now_us();
        st = chaos_put(id, chaos_tag(id), (uint32_t)i + 2, 600);
        CHECK(chaos_now_us() - c0 < (int64_t)(OP_TIMEOUT + NF_SLACK_MS) * 1000, "put %d kept op-timeout", i);
        if (st == ORS_OK) t_ok = chaos_now_us();
        else h_sleep_ms(100);
    }
    if (CHECK(t_ok != 0, "a put on the session succeeded after the failover"))
        printf("# FIGURE dns: failover of master redis-%d to a replica named by the cluster: first successful put "
               "%.2f s after the kill\n",
               m - chaos_base_port() + 1, (t_ok - t_kill) / 1e6);
    CHECK(strcmp(chaos_role(r), "master") == 0, "replica %d (redis-%d) is the master now", r,
          r - chaos_base_port() + 1);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "calls";
    const char *seed = getenv("ORS_NETNS_SEED");
    int i, failed = 0;
    char id[64];

    h_begin("ns_names");
    if (!CHECK(seed && getenv("ORS_NETNS_HOSTS"), "run under netns.sh --hostnames")) return h_done();
    ors_redis_set_logger(logger, NULL);
    h_note("seed %s, %s", seed, getenv("ORS_NETNS_TLS") ? "TLS, a certificate per node name" : "plain TCP");
    if (CHECK_STATUS(ors_redis_init(config(seed, "log-level=debug")), ORS_OK, "init through the seed name") !=
        ORS_OK)
        return h_done();
    CHECK(counted(&named_masters) > 0, "the slot map names its masters by host name");
    CHECK(counted(&no_replica_lines) == 0, "init counts the replicas of masters named by host name (%d warnings)",
          counted(&no_replica_lines));
    for (i = 0; i < CYCLES; i++) {
        snprintf(id, sizeof id, "ns-%d", i);
        if (cycle(id, (uint32_t)i + 1) != ORS_OK && failed++ < 3) h_note("cycle %d: %s", i, ors_last_error());
    }
    CHECK(failed == 0, "%d put/get/del cycles through host names, %d failed", CYCLES, failed);
    if (strcmp(mode, "calls") == 0) {
        redirects_to_names();
        doctor();
    } else if (strcmp(mode, "dns") == 0) {
        dns_goes_away();
    } else if (strcmp(mode, "reset") == 0) {
        names_and_resets();
    } else {
        CHECK(0, "mode '%s' is calls, dns or reset", mode);
    }
    ors_redis_shutdown();
    return h_done();
}
