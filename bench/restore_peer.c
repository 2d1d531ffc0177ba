/*
 * restore_peer.c - the hand-written reader the library's restore is measured
 * against: what a C programmer would write on hiredis (the client Debian
 * packages) to read every session of an ORS cluster name at once.
 *
 *   restore_peer read  --port P --cluster NAME --sessions N [options]
 *   restore_peer scan  --port P --cluster NAME --sessions N [options]
 *   restore_peer load  --port P --cluster NAME --sessions N --value-size S [options]
 *   restore_peer clean --port P --cluster NAME [--prefix P]
 *
 * It reads the masters from CLUSTER SLOTS of one seed node and runs one
 * thread per master, each with one connection:
 *   read   SCAN cursor MATCH ORS:<cluster>:{<prefix>* COUNT C, then the
 *          page's GETs pipelined (all sent, then all replies read); every
 *          value is checked (restore_data.h). SCAN may return a key twice:
 *          each return is read and counted, as a plain reader would; the
 *          number of distinct sessions is reported beside it.
 *   scan   the same SCAN, ids only (the hand-written ors_session_scan).
 *   load   the data set (restore_data.h): sessions bench-0 .. bench-N-1,
 *          each sent to the master of its slot as SET key value EX ttl,
 *          pipelined by --batch; any reply but OK stops the load.
 *   clean  SCAN, then EXPIRE key 0 pipelined per page (EXPIRE rather than
 *          DEL, so that a test reading the masters' DEL/UNLINK counts sees
 *          the library's only).
 * The topology must not change during a run: a MOVED or ASK reply is an
 * error here (the library follows redirects; this reader does not need to).
 * Timing (read, scan, load) starts before the threads connect and ends when
 * the last one is done; reading CLUSTER SLOTS is outside it, as the
 * library's slot map is read at init.
 *
 * Options:
 *   --host H          seed node address (127.0.0.1)
 *   --port P          seed node port (7000)
 *   --cluster NAME    ORS cluster name: keys are ORS:NAME:{session id}
 *   --sessions N      sessions in the data set (read/scan check against it)
 *   --value-size S    bytes per value (2048)
 *   --prefix P        read/scan/clean: only ids that start with P ("": all)
 *   --count C         SCAN COUNT (1000)
 *   --ttl S           load: EX seconds (86400)
 *   --batch B         load: SETs per pipeline (1000)
 *   --timeout-ms MS   connect and reply timeout (10000)
 *   --quiet           only the RESULT line (and errors)
 *
 * Output: a summary and one "RESULT key=value ..." line (restore_data.h
 * says which keys). Exit status: 0 when every call succeeded and, for read
 * and scan, every session of the set (under the prefix) was read, with its
 * value, and nothing else; 1 otherwise; 2 for bad usage.
 */
#define _GNU_SOURCE 1

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "restore_data.h"

#define MAX_MASTERS 64
#define N_SLOTS 16384

enum mode { MODE_READ, MODE_SCAN, MODE_LOAD, MODE_CLEAN };

struct options {
    enum mode mode;
    const char *mode_name;
    const char *host;
    int port;
    const char *cluster;
    uint64_t sessions;
    int sessions_given;
    size_t value_size;
    const char *prefix;
    long count;
    long ttl;
    long batch;
    long timeout_ms;
    int quiet;
};

struct master {
    char host[256];
    int port;
};

struct worker {
    pthread_t thread;
    int index; /* into g_masters */
    struct rd_tally tally;
    uint64_t written; /* load and clean: keys written or expired */
    uint64_t pages;
    char error[512];
};

static struct options opt;
static struct master g_masters[MAX_MASTERS];
static int g_n_masters;
static int16_t g_slot_owner[N_SLOTS]; /* index into g_masters, -1 if none */
static struct rd_set g_set;
static char *g_pattern; /* SCAN MATCH pattern */
static size_t g_pattern_len;
static char *g_key_head; /* "ORS:<cluster>:{" */
static size_t g_key_head_len;

/* ------------------------------------------------------------------ */

static void usage_exit(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_exit(const char *fmt, ...)
{
    va_list ap;
    fputs("restore_peer: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nusage: restore_peer read|scan|load|clean --port P --cluster NAME [--sessions N] [--value-size S]"
          " [--prefix P] [--count C] [--ttl S] [--batch B] [--timeout-ms MS] [--host H] [--quiet]\n",
          stderr);
    exit(2);
}

static void set_error(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_error(struct worker *w, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rd_vnote(w->error, sizeof w->error, fmt, ap);
    va_end(ap);
}

static long parse_long(const char *name, const char *value, long lo, long hi)
{
    long long v = 0;
    if (rd_number(value, lo, hi, &v) != 0) {
        usage_exit("%s must be a number from %ld to %ld, not '%s'", name, lo, hi, value);
    }
    return (long)v;
}

static void parse_args(int argc, char **argv)
{
    int i;
    opt.host = "127.0.0.1";
    opt.port = 7000;
    opt.value_size = 2048;
    opt.prefix = "";
    opt.count = 1000;
    opt.ttl = 86400;
    opt.batch = 1000;
    opt.timeout_ms = 10000;
    if (argc < 2) {
        usage_exit("no mode given");
    }
    opt.mode_name = argv[1];
    if (strcmp(argv[1], "read") == 0) {
        opt.mode = MODE_READ;
        opt.mode_name = "peer-read";
    } else if (strcmp(argv[1], "scan") == 0) {
        opt.mode = MODE_SCAN;
        opt.mode_name = "peer-scan";
    } else if (strcmp(argv[1], "load") == 0) {
        opt.mode = MODE_LOAD;
        opt.mode_name = "peer-load";
    } else if (strcmp(argv[1], "clean") == 0) {
        opt.mode = MODE_CLEAN;
        opt.mode_name = "peer-clean";
    } else {
        usage_exit("unknown mode '%s'", argv[1]);
    }
    for (i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--quiet") == 0) {
            opt.quiet = 1;
            continue;
        }
        if (v == NULL) {
            usage_exit("%s needs a value (or is unknown)", a);
        }
        i++;
        if (strcmp(a, "--host") == 0) {
            opt.host = v;
        } else if (strcmp(a, "--port") == 0) {
            opt.port = (int)parse_long(a, v, 1, 65535);
        } else if (strcmp(a, "--cluster") == 0) {
            opt.cluster = v;
        } else if (strcmp(a, "--sessions") == 0) {
            opt.sessions = (uint64_t)parse_long(a, v, 0, 1000000000L);
            opt.sessions_given = 1;
        } else if (strcmp(a, "--value-size") == 0) {
            opt.value_size = (size_t)parse_long(a, v, 0, 64L << 20);
        } else if (strcmp(a, "--prefix") == 0) {
            opt.prefix = v;
        } else if (strcmp(a, "--count") == 0) {
            opt.count = parse_long(a, v, 1, 1000000L);
        } else if (strcmp(a, "--ttl") == 0) {
            opt.ttl = parse_long(a, v, 1, 100000000L);
        } else if (strcmp(a, "--batch") == 0) {
            opt.batch = parse_long(a, v, 1, 1000000L);
        } else if (strcmp(a, "--timeout-ms") == 0) {
            opt.timeout_ms = parse_long(a, v, 1, 3600000L);
        } else {
            usage_exit("unknown option '%s'", a);
        }
    }
    if (opt.cluster == NULL || opt.cluster[0] == '\0') {
        usage_exit("--cluster is required");
    }
    if ((opt.mode == MODE_READ || opt.mode == MODE_SCAN || opt.mode == MODE_LOAD) && !opt.sessions_given) {
        usage_exit("%s needs --sessions", argv[1]);
    }
    if (opt.mode == MODE_LOAD && opt.prefix[0] != '\0') {
        usage_exit("load writes the whole data set: no --prefix");
    }
}

/* ------------------------------------------------------------------ */
/* Keys                                                                 */

/* CRC16-CCITT (XMODEM), the Redis Cluster key hash. */
static uint16_t crc16(const char *p, size_t len)
{
    uint16_t crc = 0;
    size_t i;
    int bit;
    for (i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint8_t)p[i] << 8);
        for (bit = 0; bit < 8; bit++) {
            crc = (uint16_t)((crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1);
        }
    }
    return crc;
}

/* The key of an id is ORS:<cluster>:{<id>}; its hash tag is the id. */
static size_t make_key(const char *id, size_t id_len, char *out, size_t cap)
{
    int len = snprintf(out, cap, "%s%.*s}", g_key_head, (int)id_len, id);
    return len < 0 || (size_t)len >= cap ? 0 : (size_t)len;
}

static void make_patterns(void)
{
    size_t cap = strlen(opt.cluster) + 2 * strlen(opt.prefix) + 16, i, n;
    g_key_head = malloc(strlen(opt.cluster) + 8);
    g_pattern = malloc(cap);
    if (g_key_head == NULL || g_pattern == NULL) {
        fprintf(stderr, "restore_peer: out of memory\n");
        exit(1);
    }
    g_key_head_len = (size_t)sprintf(g_key_head, "ORS:%s:{", opt.cluster);
    /* Cluster names are [A-Za-z0-9_.-], no glob character; the prefix is
     * literal text, so its glob characters are escaped. */
    n = (size_t)sprintf(g_pattern, "%s", g_key_head);
    for (i = 0; opt.prefix[i] != '\0'; i++) {
        if (strchr("*?[]\\", opt.prefix[i]) != NULL) {
            g_pattern[n++] = '\\';
        }
        g_pattern[n++] = opt.prefix[i];
    }
    g_pattern[n++] = '*';
    g_pattern[n] = '\0';
    g_pattern_len = n;
}

/* ------------------------------------------------------------------ */
/* Topology                                                             */

static redisContext *connect_node(const char *host, int port, char *err, size_t err_cap)
{
    struct timeval tv;
    redisContext *c;
    tv.tv_sec = opt.timeout_ms / 1000;
    tv.tv_usec = (opt.timeout_ms % 1000) * 1000;
    c = redisConnectWithTimeout(host, port, tv);
    if (c == NULL || c->err) {
        snprintf(err, err_cap, "connect to %s:%d: %s", host, port, c != NULL ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    if (redisSetTimeout(c, tv) != REDIS_OK) {
        snprintf(err, err_cap, "set timeout on %s:%d: %s", host, port, c->errstr);
        redisFree(c);
        return NULL;
    }
    return c;
}

static int master_index(const char *host, size_t host_len, int port)
{
    int i;
    char name[256];
    if (host_len == 0) {
        /* An empty address means "the address you reached me on". */
        snprintf(name, sizeof name, "%s", opt.host);
    } else {
        snprintf(name, sizeof name, "%.*s", (int)host_len, host);
    }
    for (i = 0; i < g_n_masters; i++) {
        if (g_masters[i].port == port && strcmp(g_masters[i].host, name) == 0) {
            return i;
        }
    }
    if (g_n_masters == MAX_MASTERS) {
        return -1;
    }
    snprintf(g_masters[g_n_masters].host, sizeof g_masters[g_n_masters].host, "%s", name);
    g_masters[g_n_masters].port = port;
    return g_n_masters++;
}

/* Reads the masters and the owner of each slot from the seed's CLUSTER SLOTS. */
static void read_topology(void)
{
    char err[512];
    redisContext *c = connect_node(opt.host, opt.port, err, sizeof err);
    redisReply *r;
    size_t i;
    int s, unserved = 0;
    if (c == NULL) {
        fprintf(stderr, "restore_peer: %s\n", err);
        exit(1);
    }
    for (s = 0; s < N_SLOTS; s++) {
        g_slot_owner[s] = -1;
    }
    r = redisCommand(c, "CLUSTER SLOTS");
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        fprintf(stderr, "restore_peer: CLUSTER SLOTS on %s:%d: %s\n", opt.host, opt.port,
                r == NULL ? c->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "not an array");
        exit(1);
    }
    for (i = 0; i < r->elements; i++) {
        redisReply *e = r->element[i], *node;
        long long lo, hi;
        int m;
        if (e->type != REDIS_REPLY_ARRAY || e->elements < 3 || e->element[0]->type != REDIS_REPLY_INTEGER ||
            e->element[1]->type != REDIS_REPLY_INTEGER || e->element[2]->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "restore_peer: CLUSTER SLOTS entry %zu is not [start, end, [host, port, ...], ...]\n", i);
            exit(1);
        }
        lo = e->element[0]->integer;
        hi = e->element[1]->integer;
        node = e->element[2];
        if (lo < 0 || hi >= N_SLOTS || lo > hi || node->elements < 2 || node->element[0]->type != REDIS_REPLY_STRING ||
            node->element[1]->type != REDIS_REPLY_INTEGER) {
            fprintf(stderr, "restore_peer: CLUSTER SLOTS entry %zu is malformed\n", i);
            exit(1);
        }
        m = master_index(node->element[0]->str, node->element[0]->len, (int)node->element[1]->integer);
        if (m < 0) {
            fprintf(stderr, "restore_peer: more than %d masters\n", MAX_MASTERS);
            exit(1);
        }
        for (s = (int)lo; s <= (int)hi; s++) {
            g_slot_owner[s] = (int16_t)m;
        }
    }
    freeReplyObject(r);
    redisFree(c);
    for (s = 0; s < N_SLOTS; s++) {
        unserved += g_slot_owner[s] < 0;
    }
    if (g_n_masters == 0 || (opt.mode == MODE_LOAD && unserved > 0)) {
        fprintf(stderr, "restore_peer: %d masters, %d slots not served by %s:%d\n", g_n_masters, unserved, opt.host,
                opt.port);
        exit(1);
    }
}

/* ------------------------------------------------------------------ */
/* Reading                                                              */

/* The id inside a key ORS:<cluster>:{<id>}, or NULL if the key is not one. */
static const char *key_id(const char *key, size_t key_len, size_t *id_len)
{
    if (key_len < g_key_head_len + 2 || memcmp(key, g_key_head, g_key_head_len) != 0 || key[key_len - 1] != '}') {
        return NULL;
    }
    *id_len = key_len - g_key_head_len - 1;
    return key + g_key_head_len;
}

/* One page of a read: every GET sent, then every reply read and checked. */
static int read_page(struct worker *w, redisContext *c, redisReply *keys)
{
    size_t i, id_len;
    const char *id;
    for (i = 0; i < keys->elements; i++) {
        if (redisAppendCommand(c, "GET %b", keys->element[i]->str, keys->element[i]->len) != REDIS_OK) {
            set_error(w, "GET on %s:%d: %s", g_masters[w->index].host, g_masters[w->index].port, c->errstr);
            return -1;
        }
    }
    for (i = 0; i < keys->elements; i++) {
        redisReply *v = NULL;
        redisReply *k = keys->element[i];
        if (redisGetReply(c, (void **)&v) != REDIS_OK || v == NULL) {
            set_error(w, "GET reply from %s:%d: %s", g_masters[w->index].host, g_masters[w->index].port, c->errstr);
            return -1;
        }
        id = key_id(k->str, k->len, &id_len);
        if (v->type == REDIS_REPLY_STRING && id != NULL) {
            rd_account(&g_set, &w->tally, id, id_len, (const uint8_t *)v->str, v->len);
        } else if (id == NULL) {
            w->tally.reported++;
            w->tally.foreign++;
        } else {
            /* Gone since SCAN (nil) or an error reply: not its value. */
            w->tally.reported++;
            w->tally.bad_values++;
            set_error(w, "GET %.*s on %s:%d: %s", (int)k->len, k->str, g_masters[w->index].host,
                      g_masters[w->index].port, v->type == REDIS_REPLY_ERROR ? v->str : "no value");
        }
        freeReplyObject(v);
    }
    return 0;
}

/* One page of a clean: EXPIRE key 0 for each key, pipelined. */
static int clean_page(struct worker *w, redisContext *c, redisReply *keys)
{
    size_t i;
    for (i = 0; i < keys->elements; i++) {
        if (redisAppendCommand(c, "EXPIRE %b 0", keys->element[i]->str, keys->element[i]->len) != REDIS_OK) {
            set_error(w, "EXPIRE on %s:%d: %s", g_masters[w->index].host, g_masters[w->index].port, c->errstr);
            return -1;
        }
    }
    for (i = 0; i < keys->elements; i++) {
        redisReply *v = NULL;
        if (redisGetReply(c, (void **)&v) != REDIS_OK || v == NULL) {
            set_error(w, "EXPIRE reply from %s:%d: %s", g_masters[w->index].host, g_masters[w->index].port,
                      c->errstr);
            return -1;
        }
        if (v->type == REDIS_REPLY_INTEGER) {
            w->written += (uint64_t)v->integer;
        } else {
            set_error(w, "EXPIRE on %s:%d: %s", g_masters[w->index].host, g_masters[w->index].port,
                      v->type == REDIS_REPLY_ERROR ? v->str : "unexpected reply");
        }
        freeReplyObject(v);
    }
    return 0;
}

static void scan_master(struct worker *w, redisContext *c)
{
    char cursor[32] = "0";
    size_t i, id_len;
    const char *id;
    do {
        redisReply *r = redisCommand(c, "SCAN %s MATCH %b COUNT %ld", cursor, g_pattern, g_pattern_len, opt.count);
        redisReply *keys;
        int rc = 0;
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING || r->element[0]->len >= sizeof cursor ||
            r->element[1]->type != REDIS_REPLY_ARRAY) {
            set_error(w, "SCAN on %s:%d: %s", g_masters[w->index].host, g_masters[w->index].port,
                      r == NULL ? c->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            freeReplyObject(r);
            return;
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
        keys = r->element[1];
        w->pages++;
        for (i = 0; i < keys->elements; i++) {
            if (keys->element[i]->type != REDIS_REPLY_STRING) {
                set_error(w, "SCAN on %s:%d: a key that is not a string", g_masters[w->index].host,
                          g_masters[w->index].port);
                freeReplyObject(r);
                return;
            }
        }
        if (opt.mode == MODE_READ) {
            rc = read_page(w, c, keys);
        } else if (opt.mode == MODE_CLEAN) {
            rc = clean_page(w, c, keys);
        } else {
            for (i = 0; i < keys->elements; i++) {
                id = key_id(keys->element[i]->str, keys->element[i]->len, &id_len);
                if (id != NULL) {
                    rd_account(&g_set, &w->tally, id, id_len, NULL, 0);
                } else {
                    w->tally.reported++;
                    w->tally.foreign++;
                }
            }
        }
        freeReplyObject(r);
        if (rc != 0) {
            return;
        }
    } while (strcmp(cursor, "0") != 0);
}

/* ------------------------------------------------------------------ */
/* Loading                                                              */

static int read_set_replies(struct worker *w, redisContext *c, long pending)
{
    long i;
    for (i = 0; i < pending; i++) {
        redisReply *v = NULL;
        if (redisGetReply(c, (void **)&v) != REDIS_OK || v == NULL) {
            set_error(w, "SET reply from %s:%d: %s", g_masters[w->index].host, g_masters[w->index].port, c->errstr);
            return -1;
        }
        if (v->type == REDIS_REPLY_STATUS && strcmp(v->str, "OK") == 0) {
            w->written++;
        } else {
            set_error(w, "SET on %s:%d: %s", g_masters[w->index].host, g_masters[w->index].port,
                      v->type == REDIS_REPLY_ERROR ? v->str : "unexpected reply");
        }
        freeReplyObject(v);
    }
    return w->error[0] != '\0' ? -1 : 0;
}

static void load_master(struct worker *w, redisContext *c)
{
    uint8_t *value = malloc(opt.value_size > 0 ? opt.value_size : 1);
    char id[RD_ID_MAX], key[RD_ID_MAX + 160];
    uint64_t n;
    long pending = 0;
    if (value == NULL) {
        set_error(w, "out of memory");
        return;
    }
    for (n = 0; n < opt.sessions; n++) {
        size_t id_len = rd_id(n, id), key_len;
        if (g_slot_owner[crc16(id, id_len) & (N_SLOTS - 1)] != w->index) {
            continue;
        }
        key_len = make_key(id, id_len, key, sizeof key);
        rd_fill(id, id_len, value, opt.value_size);
        if (key_len == 0 || redisAppendCommand(c, "SET %b %b EX %ld", key, key_len, value, opt.value_size,
                                               opt.ttl) != REDIS_OK) {
            set_error(w, "SET on %s:%d: %s", g_masters[w->index].host, g_masters[w->index].port,
                      key_len == 0 ? "key too long" : c->errstr);
            break;
        }
        if (++pending == opt.batch) {
            if (read_set_replies(w, c, pending) != 0) {
                pending = 0;
                break;
            }
            pending = 0;
        }
    }
    if (pending > 0) {
        read_set_replies(w, c, pending);
    }
    free(value);
}

/* ------------------------------------------------------------------ */

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    char err[512];
    redisContext *c = connect_node(g_masters[w->index].host, g_masters[w->index].port, err, sizeof err);
    if (c == NULL) {
        set_error(w, "%s", err);
        return NULL;
    }
    if (opt.mode == MODE_LOAD) {
        load_master(w, c);
    } else {
        scan_master(w, c);
    }
    redisFree(c);
    return NULL;
}

int main(int argc, char **argv)
{
    struct worker workers[MAX_MASTERS];
    struct rd_tally sum;
    uint64_t written = 0, pages = 0;
    double t0, t1, cpu0, cpu1;
    int i, errors = 0, ok;

    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    make_patterns();
    read_topology();
    rd_set_init(&g_set, opt.sessions, opt.value_size, opt.prefix);
    memset(workers, 0, sizeof workers);
    memset(&sum, 0, sizeof sum);

    cpu0 = rd_cpu_s();
    t0 = rd_now();
    for (i = 0; i < g_n_masters; i++) {
        workers[i].index = i;
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            fprintf(stderr, "restore_peer: cannot start a thread\n");
            return 1;
        }
    }
    for (i = 0; i < g_n_masters; i++) {
        pthread_join(workers[i].thread, NULL);
    }
    t1 = rd_now();
    cpu1 = rd_cpu_s();

    for (i = 0; i < g_n_masters; i++) {
        rd_tally_add(&sum, &workers[i].tally);
        written += workers[i].written;
        pages += workers[i].pages;
        if (workers[i].error[0] != '\0') {
            fprintf(stderr, "restore_peer: %s\n", workers[i].error);
            errors++;
        }
    }

    if (opt.mode == MODE_LOAD || opt.mode == MODE_CLEAN) {
        const char *what = opt.mode == MODE_LOAD ? "loaded" : "expired";
        if (!opt.quiet) {
            printf("%s: %" PRIu64 " sessions %s in %.3f s (%.0f/s) over %d masters\n", opt.mode_name, written, what,
                   t1 - t0, t1 > t0 ? (double)written / (t1 - t0) : 0.0, g_n_masters);
        }
        printf("RESULT mode=%s %s=%" PRIu64 " seconds=%.6f masters=%d errors=%d\n", opt.mode_name, what, written,
               t1 - t0, g_n_masters, errors);
        ok = errors == 0 && (opt.mode == MODE_CLEAN || written == opt.sessions);
    } else {
        rd_print_result(opt.mode_name, &g_set, &sum, t1 - t0, cpu1 - cpu0, opt.quiet);
        printf(" masters=%d scan_pages=%" PRIu64 " errors=%d\n", g_n_masters, pages, errors);
        ok = errors == 0 && sum.distinct == rd_expected(g_set.total, g_set.prefix) && sum.foreign == 0 &&
             sum.bad_values == 0;
    }
    rd_set_free(&g_set);
    free(g_pattern);
    free(g_key_head);
    return ok ? 0 : 1;
}
