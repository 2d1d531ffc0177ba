/*
 * chaos.h - helpers for the chaos suite (c_tests/chaos_*.c, ctest label
 * chaos): control of the suite's own local cluster through cluster.sh, its
 * slot map as the nodes see it, self-checking session values, worker
 * threads that put and get their own sessions, latency figures, and the
 * process's sockets and memory.
 *
 * The chaos cluster is not the core tests' one: 3 masters + 3 replicas on
 * ORS_CHAOS_PORT .. +5 (default 7040), data in ORS_CLUSTER_DIR. ctest sets
 * the environment (ORS_CHAOS_PORT, ORS_CLUSTER_PORT, ORS_CLUSTER_DIR,
 * ORS_CLUSTER_SH, REDIS_CLI) so that `cluster.sh` started from here acts on it.
 *
 * Every program prints its result as lines starting with "# FIGURE " and
 * ends with harness.h's "N passed, M failed" line.
 */
#ifndef ORS_CHAOS_H
#define ORS_CHAOS_H

#include "harness.h"

#include <signal.h>
#include <sys/wait.h>

#define CHAOS_NODES 6
#define CHAOS_MAX_MASTERS 8
#define CHAOS_SLOTS 16384

/* ------------------------------------------------------------------ */
/* Small things                                                        */
/* ------------------------------------------------------------------ */

static inline int chaos_base_port(void)
{
    return atoi(h_env("ORS_CHAOS_PORT", "7040"));
}

static inline int64_t chaos_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Flags and counters shared between threads (GCC/Clang atomics). */
static inline int chaos_load(const int *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static inline void chaos_store(int *p, int v)
{
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

static inline int64_t chaos_load64(const int64_t *p)
{
    return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static inline void chaos_store64(int64_t *p, int64_t v)
{
    __atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

/* *p = min(*p, v), where 0 means "not set yet". */
static inline void chaos_min64(int64_t *p, int64_t v)
{
    int64_t cur = __atomic_load_n(p, __ATOMIC_SEQ_CST);
    while ((cur == 0 || v < cur) && !__atomic_compare_exchange_n(p, &cur, v, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
    }
}

/* The library's seed list: every node of the chaos cluster (ORS passes its
 * whole list too), so that any one of them being down does not matter. */
static inline const char *chaos_config(const char *cluster_name, const char *extra)
{
    static char buf[2048];
    int base = chaos_base_port(), i, n;
    n = snprintf(buf, sizeof buf, "redis-nodes=");
    for (i = 0; i < CHAOS_NODES; i++)
        n += snprintf(buf + n, sizeof buf - (size_t)n, "%s127.0.0.1:%d", i ? ";" : "", base + i);
    /* The suite was written for calls that ride out a failover: the node
     * health tests ask for node-fail-fast=true themselves. */
    if (!extra || !strstr(extra, "node-fail-fast=")) n += snprintf(buf + n, sizeof buf - (size_t)n, " node-fail-fast=false");
    snprintf(buf + n, sizeof buf - (size_t)n, " cluster-name=%s%s%s", cluster_name, (extra && *extra) ? " " : "",
             extra ? extra : "");
    return buf;
}

/* ------------------------------------------------------------------ */
/* cluster.sh                                                          */
/* ------------------------------------------------------------------ */

/* Runs a command line through the shell, its output copied as "# " lines;
 * returns its exit status (-1 when it could not run or was killed). */
static inline int chaos_run_noted(const char *cmd)
{
    char line[1024];
    FILE *p = popen(cmd, "re");
    int rc;
    if (!p) return -1;
    while (fgets(line, sizeof line, p)) {
        size_t len = strlen(line);
        while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        h_note("%s", line);
    }
    rc = pclose(p);
    return (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1;
}

/* Runs a shell command line, output as "# " lines; its exit status. */
static inline int chaos_sh(const char *fmt, ...) H_PRINTF(1, 2);
static inline int chaos_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    return chaos_run_noted(cmd);
}

/* Runs `cluster.sh <args>` (bounded by `timeout`), copies its output as "# "
 * lines, returns its exit status (-1 when it could not run or was killed). */
static inline int chaos_ctl(const char *fmt, ...) H_PRINTF(1, 2);
static inline int chaos_ctl(const char *fmt, ...)
{
    char args[512], cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "timeout 180 '%s' %s 2>&1", h_env("ORS_CLUSTER_SH", "./cluster.sh"), args);
    return chaos_run_noted(cmd);
}

/* The pid of the chaos cluster's node on `port` (cluster.sh node-pid, which
 * checks that it is a node this cluster started); 0 when there is none. */
static inline long chaos_node_pid(int port)
{
    char cmd[1024], out[64] = "";
    FILE *p;
    long pid;
    snprintf(cmd, sizeof cmd, "timeout 30 '%s' node-pid %d 2>/dev/null", h_env("ORS_CLUSTER_SH", "./cluster.sh"),
             port);
    p = popen(cmd, "re");
    if (!p) return 0;
    if (!fgets(out, sizeof out, p)) out[0] = '\0';
    pclose(p);
    pid = strtol(out, NULL, 10);
    return pid > 1 ? pid : 0;
}

/* The state letter of process `pid` in /proc/<pid>/stat ('T' when stopped),
 * or '?' when it cannot be read. */
static inline char chaos_proc_state(long pid)
{
    char path[64], buf[512], *close_paren;
    FILE *f;
    size_t n;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    f = fopen(path, "re");
    if (!f) return '?';
    n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    close_paren = strrchr(buf, ')'); /* the name may hold spaces and parentheses */
    return (close_paren && close_paren[1] == ' ' && close_paren[2]) ? close_paren[2] : '?';
}

/* Sends `sig` to the node with pid `pid` (chaos_node_pid) or on `port` from
 * this process, so that *at_us is the moment of the signal; cluster.sh
 * node-kill would add a shell's start-up time to it. *at_us is taken just
 * before kill(2), except for SIGSTOP: a node running on the other core
 * finishes the reply it is writing before it stops, so *at_us is when
 * /proc shows it stopped (bounded wait), the moment from which it can
 * answer nothing. After SIGKILL, waits (bounded) until the process is gone.
 * Returns 1 on success. */
static inline int chaos_signal_pid(long pid, int sig, int64_t *at_us)
{
    int64_t end;
    if (pid <= 1) return 0;
    *at_us = chaos_now_us();
    if (kill((pid_t)pid, sig) != 0) return 0;
    if (sig == SIGSTOP) {
        end = h_now_ms() + 2000;
        while (chaos_proc_state(pid) != 'T' && h_now_ms() < end) h_sleep_ms(1);
        *at_us = chaos_now_us();
        return chaos_proc_state(pid) == 'T';
    }
    if (sig != SIGKILL) return 1;
    end = h_now_ms() + 10000;
    while (kill((pid_t)pid, 0) == 0 && h_now_ms() < end) h_sleep_ms(5);
    return kill((pid_t)pid, 0) != 0;
}

static inline int chaos_signal_node(int port, int sig, int64_t *at_us)
{
    return chaos_signal_pid(chaos_node_pid(port), sig, at_us);
}

/* A healthy chaos cluster (cluster.sh start reuses a healthy one, and starts
 * a fresh one when the last program left it in a bad state). */
static inline int chaos_cluster_ready(void)
{
    int rc = chaos_ctl("start");
    CHECK(rc == 0, "chaos cluster is up and healthy (cluster.sh start, exit %d)", rc);
    return rc == 0;
}

/* Runs a shell command; its output (truncated to cap-1 bytes, the rest read
 * and dropped) in out; returns its exit status (-1: could not run). */
static inline int chaos_run_capture(char *out, size_t cap, const char *fmt, ...) H_PRINTF(3, 4);
static inline int chaos_run_capture(char *out, size_t cap, const char *fmt, ...)
{
    char cmd[4096], sink[4096];
    va_list ap;
    FILE *p;
    size_t n = 0, got;
    int rc;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    out[0] = '\0';
    p = popen(cmd, "re");
    if (!p) return -1;
    while (n + 1 < cap && (got = fread(out + n, 1, cap - 1 - n, p)) > 0) n += got;
    out[n] = '\0';
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    rc = pclose(p);
    return (rc != -1 && WIFEXITED(rc)) ? WEXITSTATUS(rc) : -1;
}

/* How many times `needle` occurs in `text`. */
static inline long chaos_count(const char *text, const char *needle)
{
    long n = 0;
    size_t len = strlen(needle);
    for (text = strstr(text, needle); text; text = strstr(text + len, needle)) n++;
    return n;
}

/* Prints the last `lines` lines of `text` as "# " lines (diagnostics). */
static inline void chaos_note_tail(const char *text, int lines)
{
    const char *p = text + strlen(text);
    int seen = 0;
    while (p > text && seen <= lines) {
        p--;
        if (*p == '\n') seen++;
    }
    h_note("%s", p);
}

/* ------------------------------------------------------------------ */
/* The cluster's slot map, as its nodes see it                          */
/* ------------------------------------------------------------------ */

struct chaos_topo {
    int n_masters;
    int master_port[CHAOS_MAX_MASTERS];
    char master_id[CHAOS_MAX_MASTERS][48];
    int replicas[CHAOS_MAX_MASTERS]; /* connected, not failed */
    int slots[CHAOS_MAX_MASTERS];    /* how many slots each serves */
    int owner[CHAOS_SLOTS];          /* port of the master of each slot, 0 = none */
    int asked_port;                  /* the node whose view this is */
};

static inline int chaos_master_index_of(const struct chaos_topo *t, int port)
{
    int i;
    for (i = 0; i < t->n_masters; i++)
        if (t->master_port[i] == port) return i;
    return -1;
}

/* Parses CLUSTER NODES as seen by `port` into *t; the number of masters
 * serving slots (-1 when the node does not answer). Masters flagged as
 * failing keep their slots here, as in the nodes' own view. */
static inline int chaos_topology_from(int port, struct chaos_topo *t)
{
    static char out[65536];
    char *line, *save = NULL;
    char replica_of[CHAOS_NODES * 2][48];
    int n_rep = 0, i, j;
    memset(t, 0, sizeof *t);
    t->asked_port = port;
    if (h_cli_capture(out, sizeof out, "-p %d CLUSTER NODES", port) <= 0 || strstr(out, "connected") == NULL)
        return -1;
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *f[64], *fs = NULL, *tok, *colon;
        int nf = 0, p, serves = 0, idx;
        for (tok = strtok_r(line, " \r", &fs); tok && nf < 64; tok = strtok_r(NULL, " \r", &fs)) f[nf++] = tok;
        if (nf < 8) continue;
        colon = strrchr(f[1], ':');
        if (!colon) continue;
        {
            /* "127.0.0.1:7040@17040" */
            char addr[128];
            char *at;
            snprintf(addr, sizeof addr, "%s", f[1]);
            at = strchr(addr, '@');
            if (at) *at = '\0';
            colon = strrchr(addr, ':');
            if (!colon) continue;
            p = atoi(colon + 1);
        }
        if (strstr(f[2], "slave")) {
            if (!strstr(f[2], "fail") && strcmp(f[7], "connected") == 0 && n_rep < CHAOS_NODES * 2)
                snprintf(replica_of[n_rep++], sizeof replica_of[0], "%s", f[3]);
            continue;
        }
        if (!strstr(f[2], "master")) continue;
        for (i = 8; i < nf; i++) {
            long a, b;
            char *dash;
            if (f[i][0] == '[') continue; /* a slot being imported or migrated */
            a = strtol(f[i], NULL, 10);
            dash = strchr(f[i], '-');
            b = dash ? strtol(dash + 1, NULL, 10) : a;
            if (a < 0 || b >= CHAOS_SLOTS || b < a) continue;
            for (j = (int)a; j <= (int)b; j++) t->owner[j] = p;
            serves = 1;
        }
        if (!serves || t->n_masters >= CHAOS_MAX_MASTERS) continue;
        idx = t->n_masters++;
        t->master_port[idx] = p;
        snprintf(t->master_id[idx], sizeof t->master_id[idx], "%s", f[0]);
    }
    for (i = 0; i < t->n_masters; i++)
        for (j = 0; j < n_rep; j++)
            if (strcmp(replica_of[j], t->master_id[i]) == 0) t->replicas[i]++;
    /* Masters in port order: the same choice of victim on every run. */
    for (i = 1; i < t->n_masters; i++)
        for (j = i; j > 0 && t->master_port[j] < t->master_port[j - 1]; j--) {
            char id[48];
            int tp = t->master_port[j], tr = t->replicas[j];
            memcpy(id, t->master_id[j], sizeof id);
            t->master_port[j] = t->master_port[j - 1];
            t->replicas[j] = t->replicas[j - 1];
            memcpy(t->master_id[j], t->master_id[j - 1], sizeof id);
            t->master_port[j - 1] = tp;
            t->replicas[j - 1] = tr;
            memcpy(t->master_id[j - 1], id, sizeof id);
        }
    for (j = 0; j < CHAOS_SLOTS; j++) {
        i = chaos_master_index_of(t, t->owner[j]);
        if (i >= 0) t->slots[i]++;
    }
    return t->n_masters;
}

/* The slot map as seen by the first node (in port order, skipping `avoid`)
 * that answers; -1 when none does. */
static inline int chaos_topology(struct chaos_topo *t, int avoid)
{
    int i, base = chaos_base_port();
    for (i = 0; i < CHAOS_NODES; i++) {
        if (base + i == avoid) continue;
        if (chaos_topology_from(base + i, t) > 0) return t->n_masters;
    }
    return -1;
}

/* The master port index of `port` in *t, or -1. */
static inline int chaos_master_index(const struct chaos_topo *t, int port)
{
    return chaos_master_index_of(t, port);
}

/* The index of the master that serves the most slots (a resharding source
 * that cannot run dry, whatever earlier programs did to the cluster). */
static inline int chaos_richest_master(const struct chaos_topo *t)
{
    int i, best = 0;
    for (i = 1; i < t->n_masters; i++)
        if (t->slots[i] > t->slots[best]) best = i;
    return best;
}

/* "master" / "slave" from ROLE on a node, "" when it does not answer. */
static inline const char *chaos_role(int port)
{
    return redis_cli("-p %d ROLE", port);
}

/* Polls (bounded) until every node sees a map where `port` serves no slot
 * and every slot has a master, i.e. the failover of `port` is done; returns
 * the new master of `slot` (0 on timeout). */
static inline int chaos_wait_failover(int port, int slot, long limit_ms)
{
    static struct chaos_topo t;
    int64_t end = h_now_ms() + limit_ms;
    while (h_now_ms() < end) {
        if (chaos_topology(&t, port) > 0 && t.owner[slot] != 0 && t.owner[slot] != port &&
            strcmp(chaos_role(t.owner[slot]), "master") == 0)
            return t.owner[slot];
        h_sleep_ms(50);
    }
    return 0;
}

/* Waits (bounded) until `redis-cli --cluster check` says every node agrees
 * on the slot map and no slot is open (after a resharding). */
static inline int chaos_wait_agreement(int port)
{
    static char out[1 << 16];
    int64_t end = h_now_ms() + 30000;
    while (h_now_ms() < end) {
        int rc = chaos_run_capture(out, sizeof out, "timeout 30 %s --cluster check 127.0.0.1:%d 2>&1",
                                   h_env("REDIS_CLI", "redis-cli"), port);
        if (rc == 0 && strstr(out, "All nodes agree") && !strstr(out, "[WARNING]") && !strstr(out, "[ERR]"))
            return 1;
        h_sleep_ms(200);
    }
    chaos_note_tail(out, 8);
    return 0;
}

/* `redis-cli --cluster rebalance` (empty masters included) once every node
 * agrees; the number of slots it moved, or -1 when it failed. */
static inline long chaos_rebalance(int port)
{
    static char out[1 << 20];
    const char *p;
    long moved = 0;
    int rc;
    if (!chaos_wait_agreement(port)) return -1;
    rc = chaos_run_capture(out, sizeof out,
                           "timeout 120 %s --cluster rebalance 127.0.0.1:%d --cluster-use-empty-masters 2>&1",
                           h_env("REDIS_CLI", "redis-cli"), port);
    for (p = strstr(out, "Moving "); p; p = strstr(p + 7, "Moving ")) moved += strtol(p + 7, NULL, 10);
    if (rc != 0) {
        chaos_note_tail(out, 10);
        return -1;
    }
    return chaos_wait_agreement(port) ? moved : -1;
}

/* Sum of the calls of one command (INFO commandstats name, e.g.
 * "cluster|slots") over every node; -1 when a node does not answer. */
static inline long long chaos_cmdstat_calls(const char *command)
{
    static char out[65536];
    char field[128];
    int i, base = chaos_base_port();
    long long sum = 0;
    snprintf(field, sizeof field, "cmdstat_%s:calls=", command);
    for (i = 0; i < CHAOS_NODES; i++) {
        const char *hit;
        if (h_cli_capture(out, sizeof out, "-p %d INFO commandstats", base + i) <= 0 ||
            strstr(out, "# Commandstats") == NULL)
            return -1;
        hit = strstr(out, field);
        if (hit) sum += strtoll(hit + strlen(field), NULL, 10);
    }
    return sum;
}

/* ------------------------------------------------------------------ */
/* Slots of session ids (CRC16 of the hash tag, as the server computes) */
/* ------------------------------------------------------------------ */

/* CRC16-CCITT (XModem), the Redis Cluster key hash. */
static inline uint16_t chaos_crc16(const char *buf, size_t len)
{
    uint16_t crc = 0;
    size_t i;
    int j;
    for (i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)(unsigned char)buf[i] << 8);
        for (j = 0; j < 8; j++) crc = (crc & 0x8000) ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

/* The slot of session `id`: its key is ORS:<cluster>:{<id>}, so the hash tag
 * is the id itself. */
static inline int chaos_slot(const char *id)
{
    return chaos_crc16(id, strlen(id)) & (CHAOS_SLOTS - 1);
}

/* Checks chaos_slot against the server's CLUSTER KEYSLOT for one id. */
static inline void chaos_check_slot_function(const char *cluster_name, const char *id)
{
    char key[512], q[1024];
    long long server;
    snprintf(key, sizeof key, "ORS:%s:{%s}", cluster_name, id);
    h_shell_quote(q, sizeof q, key);
    server = strtoll(redis_cli("-p %d CLUSTER KEYSLOT %s", chaos_base_port(), q), NULL, 10);
    CHECK(server == chaos_slot(id), "the test's slot function agrees with CLUSTER KEYSLOT (%lld for %s)", server, key);
}

/* ------------------------------------------------------------------ */
/* Self-checking values                                                */
/* ------------------------------------------------------------------ */

/* A value: "ORSCHAOS", the id's tag, a sequence number, the length, then
 * h_fill(tag, seq). Whatever a get returns can be checked on its own: is it
 * a value written for this id, and which one. */
#define CHAOS_HDR 20
#define CHAOS_VALUE_MAX (CHAOS_HDR + 1500)

static inline uint32_t chaos_tag(const char *id)
{
    uint32_t h = 2166136261u;
    for (; *id; id++) h = (h ^ (unsigned char)*id) * 16777619u;
    return h;
}

/* Values are CHAOS_HDR + 0 .. chaos_value_span-1 bytes (at most 1500); a
 * program that writes many keys makes them smaller before it starts. */
static unsigned chaos_value_span = 1500;

static inline size_t chaos_value_len(uint32_t tag, uint32_t seq)
{
    unsigned span = chaos_value_span >= 1 && chaos_value_span <= 1500 ? chaos_value_span : 1500;
    return CHAOS_HDR + (size_t)((tag ^ (seq * 2654435761u)) % span);
}

static inline void chaos_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static inline uint32_t chaos_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Writes value (tag, seq) into buf (CHAOS_VALUE_MAX bytes); its length. */
static inline size_t chaos_value(uint8_t *buf, uint32_t tag, uint32_t seq)
{
    size_t len = chaos_value_len(tag, seq);
    memcpy(buf, "ORSCHAOS", 8);
    chaos_put_u32(buf + 8, tag);
    chaos_put_u32(buf + 12, seq);
    chaos_put_u32(buf + 16, (uint32_t)len);
    h_fill(buf + CHAOS_HDR, len - CHAOS_HDR, tag, seq);
    return len;
}

/* Is (data, len) exactly a value written for `tag`? Sets *seq. */
static inline int chaos_value_ok(const uint8_t *data, size_t len, uint32_t tag, uint32_t *seq)
{
    uint8_t want[CHAOS_VALUE_MAX];
    uint32_t s;
    if (!data || len < CHAOS_HDR || len > CHAOS_VALUE_MAX) return 0;
    if (memcmp(data, "ORSCHAOS", 8) != 0 || chaos_get_u32(data + 8) != tag) return 0;
    s = chaos_get_u32(data + 12);
    if (chaos_value(want, tag, s) != len || memcmp(want, data, len) != 0) return 0;
    *seq = s;
    return 1;
}

/* Puts value (tag, seq) under id. */
static inline int32_t chaos_put(const char *id, uint32_t tag, uint32_t seq, uint32_t ttl)
{
    uint8_t buf[CHAOS_VALUE_MAX];
    size_t len = chaos_value(buf, tag, seq);
    return ors_session_put(id, buf, len, ttl);
}

/* Gets id; on ORS_OK sets *valid (the bytes are a value of this id) and
 * *seq. */
static inline int32_t chaos_get(const char *id, uint32_t tag, int *valid, uint32_t *seq)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int32_t st = ors_session_get(id, &data, &len);
    *valid = 0;
    *seq = 0;
    if (st == ORS_OK) *valid = chaos_value_ok(data, len, tag, seq);
    ors_free(data);
    return st;
}

/* ------------------------------------------------------------------ */
/* Worker threads that put and get sessions of their own               */
/* ------------------------------------------------------------------ */

/* The most sessions one worker thread calls (a program's IDS). */
#define CHAOS_WORKER_IDS 32

/* Stops the build when a program's n sessions per worker do not fit (C99
 * has no _Static_assert: an array of size -1 is the error). */
#define CHAOS_WORKER_IDS_FIT(n) typedef char chaos_worker_ids_fit[(n) <= CHAOS_WORKER_IDS ? 1 : -1]

/* How many names chaos_worker_place tries for a session on a given master:
 * about one in three lands there, so running out means a wrong map. */
#define CHAOS_PLACE_TRIES 1000000L

/* One call of a worker: when it started, how long it took, its status. */
struct chaos_call {
    int64_t t0;
    int32_t us;
    int8_t status;
};

/* A worker thread: its sessions with, for each, the last sequence number
 * put and the last one acknowledged (a get may return any value between
 * the two), what its gets found, the failures its program counts, and the
 * log of its calls when the program keeps one. */
struct chaos_worker {
    int t; /* its index */
    char ids[CHAOS_WORKER_IDS][64];
    uint32_t tag[CHAOS_WORKER_IDS], last_put[CHAOS_WORKER_IDS], last_ok[CHAOS_WORKER_IDS];
    struct chaos_call *calls; /* NULL: calls not kept */
    int n, max_calls;         /* n is published after its call's fields: main reads while the worker runs */
    long wrong, stale;        /* see enum chaos_read */
    char first_wrong[256];
    long failed; /* chaos_worker_failed */
    char first_failure[512];
};

/* Readies worker t, with room for max_calls calls when max_calls > 0;
 * returns 0 when that room could not be had. */
static inline int chaos_worker_init(struct chaos_worker *w, int t, int max_calls)
{
    memset(w, 0, sizeof *w);
    w->t = t;
    if (max_calls <= 0) return 1;
    w->calls = (struct chaos_call *)calloc((size_t)max_calls, sizeof *w->calls);
    w->max_calls = w->calls ? max_calls : 0;
    return w->calls != NULL;
}

static inline void chaos_worker_free(struct chaos_worker *w)
{
    free(w->calls);
    w->calls = NULL;
    w->max_calls = 0;
}

/* Names session k of worker w "<pid>-<kind>-<t>-<k>-<n>" with the first n
 * whose slot the master on `port` serves in *topo (port 0: n = 0, wherever
 * it lives), so that the program knows which master each session is on;
 * sets its tag. Returns 0 when no n did (the last name tried is kept). */
static inline int chaos_worker_place(struct chaos_worker *w, int k, const char *kind, const struct chaos_topo *topo,
                                     int port)
{
    long n;
    for (n = 0; n < CHAOS_PLACE_TRIES; n++) {
        snprintf(w->ids[k], sizeof w->ids[k], "%ld-%s-%d-%d-%ld", (long)getpid(), kind, w->t, k, n);
        if (!port || topo->owner[chaos_slot(w->ids[k])] == port) break;
    }
    w->tag[k] = chaos_tag(w->ids[k]);
    return n < CHAOS_PLACE_TRIES;
}

static inline void chaos_worker_add_call(struct chaos_worker *w, int64_t t0, int64_t t1, int32_t st)
{
    if (w->n < w->max_calls) {
        struct chaos_call *c = &w->calls[w->n];
        c->t0 = t0;
        c->us = (int32_t)(t1 - t0);
        c->status = (int8_t)st;
        chaos_store(&w->n, w->n + 1); /* published after its fields: main reads while we run */
    }
}

/* What a get of a session returned, against what its worker put. */
enum chaos_read {
    CHAOS_READ_NONE,    /* no get: the put was not acknowledged */
    CHAOS_READ_CURRENT, /* the last acknowledged value, or one put after it */
    CHAOS_READ_WRONG,   /* bytes never written for the session, or a value not put yet */
    CHAOS_READ_STALE,   /* nothing, or a value older than the last acknowledged one */
    CHAOS_READ_FAILED   /* an error */
};

/* One round of a worker on a session: the put of its next value and, when
 * acknowledged, a get; each call's status and times. */
struct chaos_round {
    int32_t put_st, get_st; /* get_st: only when read != CHAOS_READ_NONE */
    int64_t put_t0, put_t1, get_t0, get_t1;
    enum chaos_read read;
};

/* Runs one round on session k of w (values kept `ttl` seconds): counts its
 * wrong and stale gets, and logs both calls when w keeps a log. The caller
 * counts the failures it does not allow (chaos_worker_failed): right after
 * the round, ors_last_error() is the failed call's. */
static inline void chaos_worker_round(struct chaos_worker *w, int k, uint32_t ttl, struct chaos_round *r)
{
    uint32_t seq = ++w->last_put[k], got;
    int valid;
    memset(r, 0, sizeof *r);
    r->put_t0 = chaos_now_us();
    r->put_st = chaos_put(w->ids[k], w->tag[k], seq, ttl);
    r->put_t1 = chaos_now_us();
    chaos_worker_add_call(w, r->put_t0, r->put_t1, r->put_st);
    if (r->put_st != ORS_OK) return;
    w->last_ok[k] = seq;
    r->get_t0 = chaos_now_us();
    r->get_st = chaos_get(w->ids[k], w->tag[k], &valid, &got);
    r->get_t1 = chaos_now_us();
    chaos_worker_add_call(w, r->get_t0, r->get_t1, r->get_st);
    if (r->get_st == ORS_OK && (!valid || got > w->last_put[k])) {
        r->read = CHAOS_READ_WRONG;
        if (w->wrong++ == 0)
            snprintf(w->first_wrong, sizeof w->first_wrong, "get %s: %s value (seq %u, last put %u)", w->ids[k],
                     valid ? "future" : "malformed", got, w->last_put[k]);
    } else if (r->get_st == ORS_NOT_FOUND || (r->get_st == ORS_OK && got < w->last_ok[k])) {
        r->read = CHAOS_READ_STALE;
        w->stale++;
    } else {
        r->read = r->get_st == ORS_OK ? CHAOS_READ_CURRENT : CHAOS_READ_FAILED;
    }
}

/* Counts a failed call (`what`: "put", "get") of w on session k that its
 * program does not allow, and keeps the first one's text. */
static inline void chaos_worker_failed(struct chaos_worker *w, const char *what, int k, int32_t st)
{
    if (w->failed++ == 0)
        snprintf(w->first_failure, sizeof w->first_failure, "%s %s: %s, last_error=\"%s\"", what, w->ids[k],
                 h_code_name(st), ors_last_error());
}

/* The end of the first successful call started at or after `from` among
 * the logged calls of workers w[0 .. n-1]; 0: none yet. The workers may be
 * running: each one's count is read once, and the calls below it are whole. */
static inline int64_t chaos_first_success(const struct chaos_worker *w, int n, int64_t from)
{
    int64_t best = 0;
    int i, j;
    for (i = 0; i < n; i++) {
        int calls = chaos_load(&w[i].n);
        for (j = 0; j < calls; j++) {
            const struct chaos_call *c = &w[i].calls[j];
            if (c->t0 >= from && c->status == ORS_OK) {
                if (!best || c->t0 + c->us < best) best = c->t0 + c->us;
                break;
            }
        }
    }
    return best;
}

/* chaos_first_success, polled until there is one (at most limit_ms). */
static inline int64_t chaos_wait_first_success(const struct chaos_worker *w, int n, int64_t from, long limit_ms)
{
    int64_t end = h_now_ms() + limit_ms, t = 0;
    while (!(t = chaos_first_success(w, n, from)) && h_now_ms() < end) h_sleep_ms(20);
    return t;
}

/* Raises *stop_flag and joins the worker threads that started. */
static inline void chaos_stop_workers(int *stop_flag, const pthread_t *th, const int *started, int n)
{
    int i;
    chaos_store(stop_flag, 1);
    for (i = 0; i < n; i++)
        if (started[i]) pthread_join(th[i], NULL);
}

/* ------------------------------------------------------------------ */
/* Latencies                                                           */
/* ------------------------------------------------------------------ */

/* Call durations in microseconds, kept to compute percentiles. */
struct chaos_lat {
    uint32_t *us;
    size_t n, cap;
    int64_t max_us;
};

#define CHAOS_LAT_CAP (4u * 1024u * 1024u)

static inline void chaos_lat_add(struct chaos_lat *l, int64_t us)
{
    if (us < 0) us = 0;
    if (us > l->max_us) l->max_us = us;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        uint32_t *p;
        if (cap > CHAOS_LAT_CAP) return; /* the max is still kept */
        p = (uint32_t *)realloc(l->us, cap * sizeof *p);
        if (!p) return;
        l->us = p;
        l->cap = cap;
    }
    l->us[l->n++] = us > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static inline void chaos_lat_merge(struct chaos_lat *into, const struct chaos_lat *from)
{
    size_t i;
    for (i = 0; i < from->n; i++) chaos_lat_add(into, from->us[i]);
    if (from->max_us > into->max_us) into->max_us = from->max_us;
}

static inline int chaos_u32_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) in ms, after sorting. */
static inline double chaos_lat_ms(struct chaos_lat *l, double q)
{
    size_t i;
    if (l->n == 0) return 0.0;
    qsort(l->us, l->n, sizeof *l->us, chaos_u32_cmp);
    i = (size_t)(q * (double)(l->n - 1) + 0.5);
    return l->us[i] / 1000.0;
}

static inline void chaos_lat_free(struct chaos_lat *l)
{
    free(l->us);
    memset(l, 0, sizeof *l);
}

/* ------------------------------------------------------------------ */
/* The library's log lines                                             */
/* ------------------------------------------------------------------ */

struct chaos_log {
    pthread_mutex_t lock;
    int lines[6];
    int printed;
    int print_limit;
    int moved, ask; /* debug lines of the router */
};

static struct chaos_log chaos_log_state = {PTHREAD_MUTEX_INITIALIZER, {0}, 0, 20, 0, 0};

/* Prints the first warnings and errors as "# log: ..." and counts the rest
 * (a failover logs a warning per refresh that found no node, by design). */
static inline void chaos_logger(int32_t level, const char *message, void *user_data)
{
    struct chaos_log *s = &chaos_log_state;
    (void)user_data;
    pthread_mutex_lock(&s->lock);
    if (level >= 1 && level <= 5) s->lines[level]++;
    if (strstr(message, ": MOVED")) s->moved++;
    if (strstr(message, ": ASK")) s->ask++;
    if (level <= ORS_LOG_WARN && s->printed < s->print_limit) {
        s->printed++;
        printf("# log: %s\n", message);
        fflush(stdout);
    }
    pthread_mutex_unlock(&s->lock);
}

static inline void chaos_log_counts(int *warn_error, int *moved, int *ask)
{
    struct chaos_log *s = &chaos_log_state;
    pthread_mutex_lock(&s->lock);
    if (warn_error) *warn_error = s->lines[1] + s->lines[2];
    if (moved) *moved = s->moved;
    if (ask) *ask = s->ask;
    pthread_mutex_unlock(&s->lock);
}

/* ------------------------------------------------------------------ */
/* The process                                                         */
/* ------------------------------------------------------------------ */

/* Resident set size in KiB, from /proc/self/statm; -1 on error. */
static inline long chaos_rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "re");
    long size = 0, resident = -1;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static inline ors_redis_stats chaos_stats(void)
{
    ors_redis_stats s;
    memset(&s, 0, sizeof s);
    ors_redis_get_stats(&s);
    return s;
}

#endif /* ORS_CHAOS_H */
