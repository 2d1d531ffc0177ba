/*
 * nf_shape.c - the cluster as sites behind NAT or on IPv6 see it (ctest
 * label netshape), under netns.sh:
 *
 *   netns.sh --announce-ip nf_shape nat ORS_REDIS_COMMAND
 *       The nodes announce 127.0.0.111-116, where nothing listens for the
 *       library. Without redis-address-map, init reaches a seed and fails
 *       with ORS_ERR_CONNECTION naming an announced address and the key;
 *       with the map (seeds given as announced addresses too), everything
 *       below works.
 *   netns.sh --ipv6 nf_shape ipv6 ORS_REDIS_COMMAND [CA_FILE]
 *       Every node on ::1, seeds as [::1]:port; with CA_FILE, over TLS
 *       (certificates for IP ::1; netfault/shape-tls.sh starts that cluster).
 *
 * What must work: init; 200 put/get/del cycles; a MOVED and an ASK to a
 * node as the cluster announces it (IPv6 unbracketed: "MOVED 1 ::1:7001");
 * the operator command (doctor, sessions list); a failover (a master
 * killed, its replica promoted) that calls ride out.
 */
#include "netfault.h"

#define OP_TIMEOUT 8000
#define CYCLES 200

static const char *mode, *ors_command, *ca_file;
static char config[4096];

/* The address the cluster announces for the node on `port`. */
static const char *announced(int port)
{
    static char bufs[4][64];
    static unsigned next;
    char *b = bufs[next++ % 4];
    if (strcmp(mode, "nat") == 0)
        snprintf(b, sizeof bufs[0], "127.0.0.%d:%d", 111 + port - chaos_base_port(), port);
    else
        snprintf(b, sizeof bufs[0], "[::1]:%d", port);
    return b;
}

/* The library's config: two announced seeds (and, behind NAT, the map of
 * every node unless `mapped` is 0: then the seeds are the reachable ones). */
static void make_config(int mapped)
{
    int base = chaos_base_port(), i, n;
    n = snprintf(config, sizeof config, "cluster-name=shape_%s op-timeout=%d log-level=warn", mode, OP_TIMEOUT);
    if (strcmp(mode, "nat") == 0 && !mapped) {
        n += snprintf(config + n, sizeof config - (size_t)n, " redis-nodes=%s:%d;%s:%d", nf_host(base), base,
                      nf_host(base + 1), base + 1);
        return;
    }
    n += snprintf(config + n, sizeof config - (size_t)n, " redis-nodes=%s;%s", announced(base), announced(base + 1));
    if (strcmp(mode, "nat") == 0) {
        n += snprintf(config + n, sizeof config - (size_t)n, " redis-address-map='");
        for (i = 0; i < CHAOS_NODES; i++)
            n += snprintf(config + n, sizeof config - (size_t)n, "%s%s=%s:%d", i ? ";" : "", announced(base + i),
                          nf_host(base + i), base + i);
        n += snprintf(config + n, sizeof config - (size_t)n, "'");
    }
    if (ca_file) snprintf(config + n, sizeof config - (size_t)n, " tls-enabled=true tls-cacert=%s", ca_file);
}

/* The operator command with the library's config: its exit status, its
 * output (stdout and stderr) in out. */
static int operator_command(char *out, size_t cap, const char *args)
{
    char cmd[1024];
    setenv("ORS_REDIS_CONFIG", config, 1);
    snprintf(cmd, sizeof cmd, "timeout 60 '%s' %s 2>&1", ors_command, args);
    return chaos_run_capture(out, cap, "%s", cmd);
}

static int setslot(int port, int slot, const char *how, const char *node_id)
{
    static char out[4096];
    return chaos_run_capture(out, sizeof out, "timeout 20 %s -h 127.0.0.1 -p %d CLUSTER SETSLOT %d %s %s",
                             h_env("REDIS_CLI", "redis-cli"), port, slot, how, node_id) == 0 &&
           strstr(out, "OK") != NULL;
}

/* A fresh session id whose slot the master on `port` serves. */
static void id_on(char *id, size_t cap, const char *kind, const struct chaos_topo *t, int port)
{
    long i;
    for (i = 0; i < 1000000; i++) {
        snprintf(id, cap, "%ld-%s-%ld", (long)getpid(), kind, i);
        if (t->owner[chaos_slot(id)] == port) return;
    }
}

/* Keys in `slot` on the node on `port` (CLUSTER COUNTKEYSINSLOT). */
static long keys_in_slot(int port, int slot)
{
    return atol(redis_cli("-p %d CLUSTER COUNTKEYSINSLOT %d", port, slot));
}

static void cycles(void)
{
    int i, ok = 0, valid;
    uint32_t seq;
    char id[64];
    for (i = 0; i < CYCLES; i++) {
        snprintf(id, sizeof id, "%ld-cycle-%d", (long)getpid(), i);
        if (chaos_put(id, chaos_tag(id), 1, 600) == ORS_OK && chaos_get(id, chaos_tag(id), &valid, &seq) == ORS_OK &&
            valid && seq == 1 && (i % 2 || ors_session_del(id) == ORS_OK))
            ok++;
    }
    CHECK(ok == CYCLES, "%s: %d of %d put/get/del cycles succeeded", mode, ok, CYCLES);
}

/* A MOVED, then an ASK, to the master on `to`: a put on a slot moved
 * from `from` since init (MOVED), and one on a slot held in
 * MIGRATING/IMPORTING with its key not yet on `from` (ASK). */
static void redirects(const struct chaos_topo *t, int from, int to)
{
    char moved[64], asked[64];
    const char *from_id = t->master_id[chaos_master_index(t, from)], *to_id = t->master_id[chaos_master_index(t, to)];
    int i, ok = 1, valid, slot;
    uint32_t seq;

    id_on(moved, sizeof moved, "moved", t, from);
    slot = chaos_slot(moved);
    ok &= setslot(to, slot, "IMPORTING", from_id) && setslot(from, slot, "MIGRATING", to_id);
    for (i = 0; i < t->n_masters; i++) ok &= setslot(t->master_port[i], slot, "NODE", to_id);
    if (!CHECK(ok, "slot %d of %s moved to %s by hand", slot, announced(from), announced(to))) return;
    CHECK_STATUS(chaos_put(moved, chaos_tag(moved), 1, 600), ORS_OK, "put after a MOVED to %s", announced(to));
    CHECK(keys_in_slot(to, slot) == 1, "the MOVED put landed on %s", announced(to));

    id_on(asked, sizeof asked, "ask", t, from);
    slot = chaos_slot(asked);
    ok = setslot(to, slot, "IMPORTING", from_id) && setslot(from, slot, "MIGRATING", to_id);
    if (CHECK(ok, "slot %d of %s held migrating to %s", slot, announced(from), announced(to))) {
        CHECK_STATUS(chaos_put(asked, chaos_tag(asked), 1, 600), ORS_OK, "put after an ASK to %s", announced(to));
        CHECK(keys_in_slot(to, slot) == 1, "the ASK put landed on %s", announced(to));
    }
    for (i = 0; i < t->n_masters; i++) ok &= setslot(t->master_port[i], slot, "NODE", to_id);
    CHECK(ok, "slot %d handed to %s", slot, announced(to));
    CHECK_STATUS(chaos_get(asked, chaos_tag(asked), &valid, &seq), ORS_OK, "get after the migration");
    CHECK(valid && seq == 1, "the session put through ASK reads back");
}

static void operator(const char *some_id)
{
    static char out[1 << 16];
    int rc = operator_command(out, sizeof out, "doctor");
    CHECK(rc == 0 && strstr(out, announced(chaos_base_port())) != NULL,
          "ors-redis doctor passes and names the nodes as announced (exit %d)", rc);
    if (rc != 0) chaos_note_tail(out, 30);
    rc = operator_command(out, sizeof out, "sessions list");
    CHECK(rc == 0 && strstr(out, some_id) != NULL, "ors-redis sessions list lists %s (exit %d)", some_id, rc);
    if (rc != 0) chaos_note_tail(out, 30);
}

/* A master killed; its replica takes over and a call on its slots
 * succeeds again (each call bounded by op-timeout, the whole by 30 s). */
static void failover(const struct chaos_topo *t, int victim)
{
    char id[64];
    int32_t st = ORS_ERR_CONNECTION;
    int64_t end;
    id_on(id, sizeof id, "failover", t, victim);
    CHECK_STATUS(chaos_put(id, chaos_tag(id), 1, 600), ORS_OK, "put on %s before the failover", announced(victim));
    if (!CHECK(chaos_ctl("node-kill %d", victim) == 0, "master %s killed", announced(victim))) return;
    end = h_now_ms() + 30000;
    while (h_now_ms() < end && (st = chaos_put(id, chaos_tag(id), 2, 600)) != ORS_OK) h_sleep_ms(100);
    CHECK_STATUS(st, ORS_OK, "a put on the slots of the killed master succeeds after its replica took over");
    CHECK(chaos_wait_failover(victim, chaos_slot(id), 1000) != 0, "a replica of %s serves its slots",
          announced(victim));
}

int main(int argc, char **argv)
{
    static struct chaos_topo topo;
    char id[64];
    int from, to;

    mode = argc > 1 ? argv[1] : "";
    ors_command = argc > 2 ? argv[2] : "";
    ca_file = argc > 3 ? argv[3] : NULL;
    if ((strcmp(mode, "nat") != 0 && strcmp(mode, "ipv6") != 0) || !*ors_command) {
        fprintf(stderr, "usage: nf_shape nat|ipv6 ORS_REDIS_COMMAND [CA_FILE]\n");
        return 2;
    }
    h_begin("nf_shape");
    ors_redis_set_logger(chaos_logger, NULL);
    if (!CHECK(chaos_topology(&topo, 0) >= 3, "the cluster's slot map can be read")) return h_done();

    if (strcmp(mode, "nat") == 0) {
        static char out[1 << 16];
        int64_t t0 = h_now_ms();
        make_config(0);
        h_note("unmapped: %s", config);
        CHECK_STATUS(ors_redis_init(config), ORS_ERR_CONNECTION, "init with the announced addresses unmapped");
        CHECK(strstr(h_saved_error(), announced(topo.master_port[0])) != NULL, "the error names the announced %s",
              announced(topo.master_port[0]));
        CHECK_ERROR_MENTIONS("redis-address-map", "the error names the key to set");
        h_note("init took %lld ms: %s", (long long)(h_now_ms() - t0), h_saved_error());
        ors_redis_shutdown();
        CHECK(operator_command(out, sizeof out, "doctor") == 1, "ors-redis doctor fails unmapped");
        chaos_note_tail(out, 12);
        CHECK(strstr(out, "address_map") != NULL && strstr(out, "redis-address-map") != NULL,
              "ors-redis doctor names redis-address-map");
    }

    make_config(1);
    h_note("config: %s", config);
    if (CHECK_STATUS(ors_redis_init(config), ORS_OK, "init") != ORS_OK) return h_done();
    cycles();
    from = topo.master_port[0];
    to = topo.master_port[1];
    redirects(&topo, from, to);
    snprintf(id, sizeof id, "%ld-listed", (long)getpid());
    CHECK_STATUS(chaos_put(id, chaos_tag(id), 1, 600), ORS_OK, "put %s", id);
    operator(id);
    failover(&topo, topo.master_port[2]);
    cycles();
    ors_redis_shutdown();
    return h_done();
}
