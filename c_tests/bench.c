/*
 * bench.c - throughput, latency and client cost of ors-redis, driven the way
 * ORS drives it: T worker threads, each looping over fresh UUID-like session
 * ids: put (an opaque value, with a TTL) -> get (the bytes are checked) ->
 * delete, each call blocking on the thread's own connection.
 *
 *   ors_bench [options]            timed run: warm-up, then a measured window
 *   ors_bench --ops N [options]    fixed count: N session cycles per thread
 *   ors_bench --rss-probe N        RSS cost of one thread's connection set
 *
 * Options:
 *   --config STR      library config string (default $ORS_BENCH_CONFIG, else
 *                     "redis-nodes=127.0.0.1:7000 cluster-name=bench")
 *   --tls DIR         append tls-enabled=true and tls-cacert/tls-cert/tls-key
 *                     from DIR/ca.pem, DIR/client.pem, DIR/client.key
 *   --threads T       worker threads (4)
 *   --value-size B    bytes per value (1024)
 *   --value-file F    the value is F's bytes (a corpus session, for
 *                     bench/compression.py) instead of random bytes; its size
 *                     replaces --value-size. Each put still stamps its first
 *                     16 bytes, so every session's value differs.
 *   --duration S      measured seconds (5; may be fractional)
 *   --warmup S        seconds before measuring (1)
 *   --mix P:G:D       calls per session: P puts (the first creates, the others
 *                     update), G gets, D deletes (0 or 1); default 1:1:1
 *   --get-pct PCT     shorthand for --mix 1:G:1 with PCT% gets (80 -> 1:8:1)
 *   --ttl S           ttl_seconds passed to put (300)
 *   --ops N           fixed-count mode: after --warmup-ops cycles, each thread
 *                     runs N session cycles (for callgrind and strace)
 *   --warmup-ops N    cycles per thread before the counted ones (30)
 *   --slots LO-HI     only use session ids whose hash slot is in LO..HI (a
 *                     diagnostic: e.g. 0-5460 keeps every call on one master,
 *                     as redis-benchmark --cluster does per client)
 *   --rss-every S     timed run: print an "RSS ..." line every S seconds
 *   --rss-probe N     start N threads, let them make their first calls one by
 *                     one and print the RSS each added (from /proc/self/statm)
 *   --probe-cycles N  with --rss-probe: session cycles per thread (30, enough
 *                     to reach every master)
 *   --phase-lines     print "PHASE measure" and "PHASE stop" when the measured
 *                     window opens and closes (for scripts that sample /proc)
 *   --quiet           only the RESULT line (and errors)
 *
 * Output: a human-readable summary and one machine-readable line
 *   RESULT key=value ...
 * Client CPU per operation is getrusage(RUSAGE_SELF) user+system time over
 * the measured window divided by the calls made in it; it includes this
 * program's own work (ids, timestamps, histograms, memcmp of every value).
 * Context switches per call come from the same getrusage (ru_nvcsw +
 * ru_nivcsw).
 * Exit status: 0 when no call failed, 1 otherwise, 2 for bad usage.
 */
#define _GNU_SOURCE 1

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "ors_redis.h"

#define MAX_THREADS 1024
#define OP_PUT 0
#define OP_GET 1
#define OP_DEL 2
#define N_OPS 3

/* Latency histogram: log-linear over nanoseconds, 64 sub-buckets per power
 * of two (relative error below 1.6%), up to 2^40 ns (18 minutes). */
#define SUB_BITS 6
#define SUB_COUNT (1 << SUB_BITS)
#define MAG_COUNT 41
#define N_BUCKETS (MAG_COUNT * SUB_COUNT)

struct hist {
    uint64_t count[N_BUCKETS];
    uint64_t n;
    uint64_t max_ns;
};

static const char *op_name[N_OPS] = {"put", "get", "del"};

enum phase { PHASE_WARMUP = 0, PHASE_MEASURE = 1, PHASE_STOP = 2 };

struct options {
    const char *config;
    const char *tls_dir;
    const char *value_file;
    uint8_t *file_value;
    int threads;
    size_t value_size;
    double duration;
    double warmup;
    int mix_put, mix_get, mix_del;
    uint32_t ttl;
    long long ops;
    long long warmup_ops;
    double rss_every;
    int slot_lo, slot_hi;
    int rss_probe;
    int probe_cycles;
    int quiet;
    int phase_lines;
};

struct worker {
    pthread_t thread;
    int index;
    uint64_t rng;
    uint64_t sessions;
    uint64_t calls[N_OPS];
    uint64_t errors;
    char first_error[512];
    struct hist *hist; /* N_OPS histograms */
    uint8_t *value;
    /* --rss-probe */
    int go, done, leave;
};

static struct options opt;
static int g_phase = PHASE_WARMUP;
static int g_warm; /* fixed-count mode: threads done with their warm-up */
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t probe_cond = PTHREAD_COND_INITIALIZER;

/* ------------------------------------------------------------------ */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(ns / 1000000000u);
    ts.tv_nsec = (long)(ns % 1000000000u);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void cpu_split_us(uint64_t *user, uint64_t *sys, uint64_t *switches)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    *user = (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec;
    *sys = (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
    *switches = (uint64_t)ru.ru_nvcsw + (uint64_t)ru.ru_nivcsw; /* context switches, all threads */
}

/* Resident set size in KiB, from /proc/self/statm (second field, in pages). */
static long rss_kib(void)
{
    long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) {
        return -1;
    }
    if (fscanf(f, "%ld %ld", &size, &resident) != 2) {
        resident = -1;
    }
    fclose(f);
    return resident < 0 ? -1 : resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *s = x;
    return x;
}

/* CRC16-CCITT (XMODEM), the Redis Cluster key hash. */
static uint16_t crc16_table[256];

static void crc16_init(void)
{
    int i, j;
    for (i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)(i << 8);
        for (j = 0; j < 8; j++) {
            c = (uint16_t)((c & 0x8000) ? (c << 1) ^ 0x1021 : c << 1);
        }
        crc16_table[i] = c;
    }
}

static int slot_of(const char *id)
{
    uint16_t crc = 0;
    for (; *id != '\0'; id++) {
        crc = (uint16_t)((crc << 8) ^ crc16_table[((crc >> 8) ^ (uint8_t)*id) & 0xff]);
    }
    return crc & 16383;
}

/* A fresh UUID-like (version 4 layout) session id, 36 characters. The key's
 * hash tag is the id, so its slot is the CRC16 of the id. */
static void make_id(struct worker *w, char *out, size_t cap)
{
    do {
        uint64_t a = xorshift(&w->rng), b = xorshift(&w->rng);
        snprintf(out, cap, "%08" PRIx32 "-%04" PRIx32 "-4%03" PRIx32 "-%04" PRIx32 "-%012" PRIx64,
                 (uint32_t)(a >> 32), (uint32_t)(a >> 16) & 0xffffu, (uint32_t)a & 0xfffu,
                 (uint32_t)(b >> 48 | 0x8000u) & 0xbfffu, b & (uint64_t)0xffffffffffffULL);
    } while ((opt.slot_lo > 0 || opt.slot_hi < 16383) && (slot_of(out) < opt.slot_lo || slot_of(out) > opt.slot_hi));
}

/* ------------------------------------------------------------------ */
/* Histograms                                                          */

static int bucket_of(uint64_t ns)
{
    int mag;
    if (ns < SUB_COUNT) {
        return (int)ns;
    }
    mag = 63 - __builtin_clzll(ns); /* >= SUB_BITS */
    if (mag - SUB_BITS + 1 >= MAG_COUNT) {
        return N_BUCKETS - 1;
    }
    return (mag - SUB_BITS + 1) * SUB_COUNT + (int)((ns >> (mag - SUB_BITS)) & (SUB_COUNT - 1));
}

/* The middle of a bucket, in ns. */
static double bucket_value(int b)
{
    int row = b / SUB_COUNT, sub = b % SUB_COUNT, shift;
    double low, width;
    if (row == 0) {
        return (double)b;
    }
    shift = row - 1;
    low = (double)((uint64_t)(SUB_COUNT + sub) << shift);
    width = (double)((uint64_t)1 << shift);
    return low + width / 2.0;
}

static void hist_add(struct hist *h, uint64_t ns)
{
    h->count[bucket_of(ns)]++;
    h->n++;
    if (ns > h->max_ns) {
        h->max_ns = ns;
    }
}

static void hist_merge(struct hist *into, const struct hist *from)
{
    int i;
    for (i = 0; i < N_BUCKETS; i++) {
        into->count[i] += from->count[i];
    }
    into->n += from->n;
    if (from->max_ns > into->max_ns) {
        into->max_ns = from->max_ns;
    }
}

/* Quantile q (0..1) in microseconds; 0 when empty. */
static double hist_quantile_us(const struct hist *h, double q)
{
    uint64_t want, seen = 0;
    int i;
    if (h->n == 0) {
        return 0.0;
    }
    want = (uint64_t)(q * (double)h->n);
    if (want < 1) {
        want = 1;
    }
    if (want > h->n) {
        want = h->n;
    }
    for (i = 0; i < N_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= want) {
            double v = bucket_value(i);
            if (v > (double)h->max_ns) {
                v = (double)h->max_ns;
            }
            return v / 1000.0;
        }
    }
    return (double)h->max_ns / 1000.0;
}

/* ------------------------------------------------------------------ */
/* One session's life                                                  */

static void failed(struct worker *w, const char *what, const char *id, int32_t st, const char *detail)
{
    w->errors++;
    if (w->first_error[0] == '\0') {
        snprintf(w->first_error, sizeof w->first_error, "%s %s: %s %s", what, id, ors_status_name(st),
                 detail != NULL ? detail : ors_last_error());
    }
}

static void record(struct worker *w, int op, uint64_t t0, int measured)
{
    uint64_t t1 = now_ns();
    if (measured) {
        /* A plain store, atomic only so that --rss-every may read it. */
        __atomic_store_n(&w->calls[op], w->calls[op] + 1, __ATOMIC_RELAXED);
        if (w->hist != NULL) {
            hist_add(&w->hist[op], t1 - t0);
        }
    }
}

/* Stamps the value so that every put of every session writes other bytes. */
static void stamp(struct worker *w, uint64_t version)
{
    uint64_t tag[2];
    tag[0] = w->sessions;
    tag[1] = version ^ ((uint64_t)w->index << 48);
    memcpy(w->value, tag, opt.value_size < sizeof tag ? opt.value_size : sizeof tag);
}

static void do_put(struct worker *w, const char *id, uint64_t version, int measured)
{
    uint64_t t0;
    int32_t st;
    stamp(w, version);
    t0 = now_ns();
    st = ors_session_put(id, w->value, opt.value_size, opt.ttl);
    record(w, OP_PUT, t0, measured);
    if (st != ORS_OK) {
        failed(w, "put", id, st, NULL);
    }
}

static void do_get(struct worker *w, const char *id, int measured)
{
    uint8_t *data = NULL;
    size_t len = 0;
    uint64_t t0 = now_ns();
    int32_t st = ors_session_get(id, &data, &len);
    record(w, OP_GET, t0, measured);
    if (st != ORS_OK) {
        failed(w, "get", id, st, st == ORS_NOT_FOUND ? "the session just stored is missing" : NULL);
    } else if (len != opt.value_size || (len > 0 && memcmp(data, w->value, len) != 0)) {
        char detail[128];
        snprintf(detail, sizeof detail, "%zu bytes that differ from the %zu stored", len, opt.value_size);
        failed(w, "get", id, ORS_OK, detail);
    }
    ors_free(data);
}

static void do_del(struct worker *w, const char *id, int measured)
{
    uint64_t t0 = now_ns();
    int32_t st = ors_session_del(id);
    record(w, OP_DEL, t0, measured);
    if (st != ORS_OK) {
        failed(w, "del", id, st, st == ORS_NOT_FOUND ? "the session just stored was not there" : NULL);
    }
}

/* put, then gets and further puts interleaved, then del. Every call of the
 * cycle counts when the cycle started in the measured phase (a cycle begun
 * before STOP still runs to its delete, so no key outlives the run). */
static void session_cycle(struct worker *w, int measured)
{
    char id[64];
    int i, rounds;
    uint64_t version = 0;
    make_id(w, id, sizeof id);
    w->sessions++;
    do_put(w, id, version++, measured);
    rounds = opt.mix_get > opt.mix_put - 1 ? opt.mix_get : opt.mix_put - 1;
    for (i = 0; i < rounds; i++) {
        if (i < opt.mix_get) {
            do_get(w, id, measured);
        }
        if (i < opt.mix_put - 1) {
            do_put(w, id, version++, measured);
        }
    }
    if (opt.mix_del) {
        do_del(w, id, measured);
    }
}

static void worker_setup(struct worker *w)
{
    size_t i;
    w->rng = 0x9e3779b97f4a7c15ULL ^ now_ns() ^ ((uint64_t)getpid() << 32) ^
             ((uint64_t)(w->index + 1) * 0x2545F4914F6CDD1DULL);
    if (w->rng == 0) {
        w->rng = 1;
    }
    if (opt.file_value != NULL) {
        memcpy(w->value, opt.file_value, opt.value_size);
        return;
    }
    for (i = 0; i < opt.value_size; i++) {
        w->value[i] = (uint8_t)(xorshift(&w->rng) >> 24);
    }
}

static void *timed_worker(void *arg)
{
    struct worker *w = arg;
    int phase;
    worker_setup(w);
    while ((phase = __atomic_load_n(&g_phase, __ATOMIC_ACQUIRE)) != PHASE_STOP) {
        session_cycle(w, phase == PHASE_MEASURE);
    }
    return NULL;
}

static void *counted_worker(void *arg)
{
    struct worker *w = arg;
    long long i;
    worker_setup(w);
    for (i = 0; i < opt.warmup_ops; i++) {
        session_cycle(w, 0);
    }
    __atomic_fetch_add(&g_warm, 1, __ATOMIC_ACQ_REL);
    /* Wait until every thread is warm: the counted part starts together. */
    while (__atomic_load_n(&g_phase, __ATOMIC_ACQUIRE) == PHASE_WARMUP) {
        sleep_ns(1000000);
    }
    for (i = 0; i < opt.ops; i++) {
        session_cycle(w, 1);
    }
    return NULL;
}

static void *probe_worker(void *arg)
{
    struct worker *w = arg;
    int i;
    worker_setup(w);
    pthread_mutex_lock(&probe_lock);
    while (!w->go) {
        pthread_cond_wait(&probe_cond, &probe_lock);
    }
    pthread_mutex_unlock(&probe_lock);
    for (i = 0; i < opt.probe_cycles; i++) {
        session_cycle(w, 1);
    }
    pthread_mutex_lock(&probe_lock);
    w->done = 1;
    pthread_cond_broadcast(&probe_cond);
    while (!w->leave) { /* stay alive: the connections stay open */
        pthread_cond_wait(&probe_cond, &probe_lock);
    }
    pthread_mutex_unlock(&probe_lock);
    return NULL;
}

/* ------------------------------------------------------------------ */
/* Options                                                             */

static void usage(const char *why)
{
    if (why != NULL) {
        fprintf(stderr, "ors_bench: %s\n", why);
    }
    fprintf(stderr,
            "usage: ors_bench [--config STR] [--tls DIR] [--threads T] [--value-size B | --value-file F]\n"
            "                 [--duration S] [--warmup S] [--mix P:G:D | --get-pct PCT] [--ttl S] [--ops N [--warmup-ops N]]\n"
            "                 [--slots LO-HI] [--rss-every S] [--rss-probe N [--probe-cycles N]]\n"
            "                 [--phase-lines] [--quiet]\n"
            "(see the comment at the top of c_tests/bench.c)\n");
    exit(why != NULL ? 2 : 0);
}

static long long parse_int(const char *s, const char *what, long long lo, long long hi)
{
    char *end = NULL;
    long long v;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: '%s' is not a whole number in %lld..%lld", what, s, lo, hi);
        usage(msg);
    }
    return v;
}

static double parse_seconds(const char *s, const char *what, double lo)
{
    char *end = NULL;
    double v;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= lo) || v > 1e6) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s: '%s' is not a number of seconds >= %g", what, s, lo);
        usage(msg);
    }
    return v;
}

static void parse_mix(const char *s)
{
    int p, g, d, n = 0;
    if (sscanf(s, "%d:%d:%d%n", &p, &g, &d, &n) != 3 || s[n] != '\0' || p < 1 || p > 1000 || g < 0 || g > 1000 ||
        d < 0 || d > 1) {
        usage("--mix: want P:G:D with P >= 1 puts, G >= 0 gets, D = 0 or 1 deletes per session (e.g. 1:8:1)");
    }
    opt.mix_put = p;
    opt.mix_get = g;
    opt.mix_del = d;
}

static void load_value_file(const char *path);

static void parse_args(int argc, char **argv)
{
    int i;
    const char *env = getenv("ORS_BENCH_CONFIG");
    opt.config = env != NULL && env[0] != '\0' ? env : "redis-nodes=127.0.0.1:7000 cluster-name=bench";
    opt.threads = 4;
    opt.value_size = 1024;
    opt.duration = 5.0;
    opt.warmup = 1.0;
    opt.mix_put = opt.mix_get = opt.mix_del = 1;
    opt.ttl = 300;
    opt.ops = -1;
    opt.warmup_ops = 30;
    opt.probe_cycles = 30;
    opt.slot_hi = 16383;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define NEED_VALUE()                                                                                                   \
    do {                                                                                                               \
        if (v == NULL) {                                                                                               \
            char msg_[96];                                                                                             \
            snprintf(msg_, sizeof msg_, "%s needs a value", a);                                                        \
            usage(msg_);                                                                                               \
        }                                                                                                              \
        i++;                                                                                                           \
    } while (0)
        if (strcmp(a, "--config") == 0) {
            NEED_VALUE();
            opt.config = v;
        } else if (strcmp(a, "--tls") == 0) {
            NEED_VALUE();
            opt.tls_dir = v;
        } else if (strcmp(a, "--threads") == 0 || strcmp(a, "-t") == 0) {
            NEED_VALUE();
            opt.threads = (int)parse_int(v, a, 1, MAX_THREADS);
        } else if (strcmp(a, "--value-size") == 0 || strcmp(a, "-s") == 0) {
            NEED_VALUE();
            opt.value_size = (size_t)parse_int(v, a, 0, 512LL * 1024 * 1024);
        } else if (strcmp(a, "--value-file") == 0) {
            NEED_VALUE();
            opt.value_file = v;
        } else if (strcmp(a, "--duration") == 0 || strcmp(a, "-d") == 0) {
            NEED_VALUE();
            opt.duration = parse_seconds(v, a, 0.01);
        } else if (strcmp(a, "--warmup") == 0 || strcmp(a, "-w") == 0) {
            NEED_VALUE();
            opt.warmup = parse_seconds(v, a, 0.0);
        } else if (strcmp(a, "--mix") == 0) {
            NEED_VALUE();
            parse_mix(v);
        } else if (strcmp(a, "--get-pct") == 0) {
            long long pct;
            NEED_VALUE();
            pct = parse_int(v, a, 0, 99);
            opt.mix_put = 1;
            opt.mix_del = 1;
            opt.mix_get = (int)((pct * 2 + (100 - pct) / 2) / (100 - pct));
        } else if (strcmp(a, "--ttl") == 0) {
            NEED_VALUE();
            opt.ttl = (uint32_t)parse_int(v, a, 0, 0xffffffffLL);
        } else if (strcmp(a, "--ops") == 0) {
            NEED_VALUE();
            opt.ops = parse_int(v, a, 0, 1000000000LL);
        } else if (strcmp(a, "--warmup-ops") == 0) {
            NEED_VALUE();
            opt.warmup_ops = parse_int(v, a, 0, 1000000000LL);
        } else if (strcmp(a, "--slots") == 0) {
            int lo, hi, n = 0;
            NEED_VALUE();
            if (sscanf(v, "%d-%d%n", &lo, &hi, &n) != 2 || v[n] != '\0' || lo < 0 || hi > 16383 || lo > hi) {
                usage("--slots: want LO-HI within 0-16383");
            }
            opt.slot_lo = lo;
            opt.slot_hi = hi;
        } else if (strcmp(a, "--rss-every") == 0) {
            NEED_VALUE();
            opt.rss_every = parse_seconds(v, a, 0.1);
        } else if (strcmp(a, "--rss-probe") == 0) {
            NEED_VALUE();
            opt.rss_probe = (int)parse_int(v, a, 1, MAX_THREADS);
        } else if (strcmp(a, "--probe-cycles") == 0) {
            NEED_VALUE();
            opt.probe_cycles = (int)parse_int(v, a, 1, 1000000);
        } else if (strcmp(a, "--phase-lines") == 0) {
            opt.phase_lines = 1;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            opt.quiet = 1;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(NULL);
        } else {
            char msg[160];
            snprintf(msg, sizeof msg, "unknown option '%s'", a);
            usage(msg);
        }
#undef NEED_VALUE
    }
    if (opt.value_file != NULL) {
        load_value_file(opt.value_file);
    }
}

/* Reads the --value-file: its bytes become every worker's value. */
static void load_value_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    long size;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "ors_bench: --value-file %s: %s\n", path, strerror(errno));
        exit(2);
    }
    opt.value_size = (size_t)size;
    opt.file_value = malloc(opt.value_size > 0 ? opt.value_size : 1);
    if (opt.file_value == NULL || fread(opt.file_value, 1, opt.value_size, f) != opt.value_size) {
        fprintf(stderr, "ors_bench: --value-file %s: could not read %ld bytes\n", path, size);
        exit(2);
    }
    fclose(f);
}

static char *full_config(void)
{
    size_t cap = strlen(opt.config) + 64 + (opt.tls_dir != NULL ? 3 * strlen(opt.tls_dir) + 128 : 0);
    char *s = malloc(cap);
    if (s == NULL) {
        perror("malloc");
        exit(1);
    }
    if (opt.tls_dir != NULL) {
        if (strchr(opt.tls_dir, '\'') != NULL || strchr(opt.tls_dir, '\\') != NULL ||
            strchr(opt.tls_dir, ' ') != NULL) {
            usage("--tls: the directory name must not hold quotes, backslashes or spaces");
        }
        snprintf(s, cap, "%s tls-enabled=true tls-cacert=%s/ca.pem tls-cert=%s/client.pem tls-key=%s/client.key",
                 opt.config, opt.tls_dir, opt.tls_dir, opt.tls_dir);
    } else {
        snprintf(s, cap, "%s", opt.config);
    }
    return s;
}

/* ------------------------------------------------------------------ */
/* Modes                                                               */

static struct worker *make_workers(int n, int with_hist)
{
    struct worker *ws = calloc((size_t)n, sizeof *ws);
    int i;
    if (ws == NULL) {
        perror("calloc");
        exit(1);
    }
    for (i = 0; i < n; i++) {
        ws[i].index = i;
        ws[i].value = malloc(opt.value_size > 0 ? opt.value_size : 1);
        if (with_hist) {
            ws[i].hist = calloc(N_OPS, sizeof(struct hist));
            /* Touch every page now: the RSS samples should not see them grow. */
            if (ws[i].hist != NULL) {
                volatile uint8_t *page = (volatile uint8_t *)ws[i].hist;
                size_t off;
                for (off = 0; off < N_OPS * sizeof(struct hist); off += 4096) {
                    page[off] = 0;
                }
            }
        }
        if (ws[i].value == NULL || (with_hist && ws[i].hist == NULL)) {
            perror("malloc");
            exit(1);
        }
    }
    return ws;
}

static void start_threads(struct worker *ws, int n, void *(*fn)(void *))
{
    int i, rc;
    for (i = 0; i < n; i++) {
        rc = pthread_create(&ws[i].thread, NULL, fn, &ws[i]);
        if (rc != 0) {
            fprintf(stderr, "ors_bench: pthread_create: %s\n", strerror(rc));
            exit(1);
        }
    }
}

static int report_errors(const struct worker *ws, int n, uint64_t *total)
{
    int i, shown = 0;
    *total = 0;
    for (i = 0; i < n; i++) {
        *total += ws[i].errors;
        if (ws[i].errors > 0 && shown < 5) {
            fprintf(stderr, "ors_bench: thread %d: %" PRIu64 " error(s), first: %s\n", i, ws[i].errors,
                    ws[i].first_error);
            shown++;
        }
    }
    return *total == 0 ? 0 : 1;
}

static int run_load(void)
{
    struct worker *ws = make_workers(opt.threads, 1);
    struct hist *all = calloc(N_OPS + 1, sizeof(struct hist));
    uint64_t t0, t1, cpu_u0, cpu_s0, cpu_u1, cpu_s1, csw0, csw1, calls[N_OPS] = {0, 0, 0}, total_calls, errors;
    long rss_start, rss_end, rss_max = 0;
    double secs, cpu_per_op, user_per_op, sys_per_op, csw_per_op;
    ors_redis_stats st0, st1;
    int i, k, counted = opt.ops >= 0;

    if (all == NULL) {
        perror("calloc");
        return 1;
    }
    memset(&st0, 0, sizeof st0);
    memset(&st1, 0, sizeof st1);
    start_threads(ws, opt.threads, counted ? counted_worker : timed_worker);

    if (counted) {
        /* The counted part starts when every worker is done warming up. */
        while (__atomic_load_n(&g_warm, __ATOMIC_ACQUIRE) < opt.threads) {
            sleep_ns(1000000);
        }
    } else {
        sleep_ns((uint64_t)(opt.warmup * 1e9));
    }
    ors_redis_get_stats(&st0);
    rss_start = rss_kib();
    cpu_split_us(&cpu_u0, &cpu_s0, &csw0);
    t0 = now_ns();
    __atomic_store_n(&g_phase, PHASE_MEASURE, __ATOMIC_RELEASE);
    if (opt.phase_lines) {
        printf("PHASE measure\n");
        fflush(stdout);
    }

    if (counted) {
        for (i = 0; i < opt.threads; i++) {
            pthread_join(ws[i].thread, NULL);
        }
        t1 = now_ns();
        cpu_split_us(&cpu_u1, &cpu_s1, &csw1);
        if (opt.phase_lines) {
            printf("PHASE stop\n");
            fflush(stdout);
        }
    } else {
        uint64_t end = t0 + (uint64_t)(opt.duration * 1e9);
        uint64_t next_rss = opt.rss_every > 0 ? t0 + (uint64_t)(opt.rss_every * 1e9) : UINT64_MAX;
        if (opt.rss_every > 0) {
            printf("RSS t=0 rss_kib=%ld calls=0\n", rss_start);
            fflush(stdout);
        }
        for (;;) {
            uint64_t now = now_ns(), wake = end < next_rss ? end : next_rss;
            if (now >= end) {
                if (opt.rss_every > 0) {
                    long r = rss_kib();
                    if (r > rss_max) {
                        rss_max = r;
                    }
                    printf("RSS t=%.1f rss_kib=%ld\n", (double)(now - t0) / 1e9, r);
                    fflush(stdout);
                }
                break;
            }
            if (now < wake) {
                sleep_ns(wake - now);
                continue;
            }
            if (now >= next_rss) {
                long r = rss_kib();
                uint64_t sofar = 0;
                for (i = 0; i < opt.threads; i++) {
                    for (k = 0; k < N_OPS; k++) {
                        sofar += __atomic_load_n(&ws[i].calls[k], __ATOMIC_RELAXED);
                    }
                }
                if (r > rss_max) {
                    rss_max = r;
                }
                printf("RSS t=%.1f rss_kib=%ld calls=%" PRIu64 "\n", (double)(now - t0) / 1e9, r, sofar);
                fflush(stdout);
                next_rss += (uint64_t)(opt.rss_every * 1e9);
            }
        }
        cpu_split_us(&cpu_u1, &cpu_s1, &csw1);
        t1 = now_ns();
        ors_redis_get_stats(&st1);
        __atomic_store_n(&g_phase, PHASE_STOP, __ATOMIC_RELEASE);
        if (opt.phase_lines) {
            printf("PHASE stop\n");
            fflush(stdout);
        }
        for (i = 0; i < opt.threads; i++) {
            pthread_join(ws[i].thread, NULL);
        }
    }
    rss_end = rss_kib();
    if (rss_end > rss_max) {
        rss_max = rss_end;
    }
    if (counted) {
        ors_redis_get_stats(&st1); /* the workers have exited: no sockets left */
    }

    for (i = 0; i < opt.threads; i++) {
        for (k = 0; k < N_OPS; k++) {
            calls[k] += ws[i].calls[k];
            hist_merge(&all[k], &ws[i].hist[k]);
            hist_merge(&all[N_OPS], &ws[i].hist[k]);
        }
    }
    total_calls = calls[0] + calls[1] + calls[2];
    secs = (double)(t1 - t0) / 1e9;
    cpu_per_op = total_calls ? (double)((cpu_u1 - cpu_u0) + (cpu_s1 - cpu_s0)) / (double)total_calls : 0.0;
    user_per_op = total_calls ? (double)(cpu_u1 - cpu_u0) / (double)total_calls : 0.0;
    sys_per_op = total_calls ? (double)(cpu_s1 - cpu_s0) / (double)total_calls : 0.0;
    csw_per_op = total_calls ? (double)(csw1 - csw0) / (double)total_calls : 0.0;
    report_errors(ws, opt.threads, &errors);

    if (!opt.quiet) {
        printf("ors-redis %s: %d thread(s), %zu-byte values, mix %d:%d:%d (put:get:del per session), %s, %s\n",
               ors_redis_version(), opt.threads, opt.value_size, opt.mix_put, opt.mix_get, opt.mix_del,
               opt.tls_dir != NULL ? "TLS" : "plain TCP",
               counted ? "fixed count" : "timed");
        printf("  %.3f s, %" PRIu64 " calls, %.0f calls/s, %" PRIu64 " errors, %" PRIu64 " retries\n", secs,
               total_calls, secs > 0 ? (double)total_calls / secs : 0.0, errors, st1.retries - st0.retries);
        printf("  latency (us)      p50      p99    p99.9      max    calls\n");
        for (k = 0; k <= N_OPS; k++) {
            const struct hist *h = &all[k];
            printf("  %-10s %9.1f %8.1f %8.1f %8.1f %8" PRIu64 "\n", k < N_OPS ? op_name[k] : "all",
                   hist_quantile_us(h, 0.50), hist_quantile_us(h, 0.99), hist_quantile_us(h, 0.999),
                   (double)h->max_ns / 1000.0, h->n);
        }
        printf("  client CPU: %.2f us/call (user %.2f, system %.2f), %.2f context switches/call; RSS %ld -> %ld KiB;"
               " %" PRIu64 " connection(s) open\n",
               cpu_per_op, user_per_op, sys_per_op, csw_per_op, rss_start, rss_end, st1.connections_open);
    }
    printf("RESULT mode=%s threads=%d value_size=%zu mix=%d:%d:%d tls=%d seconds=%.3f calls=%" PRIu64
           " ops_per_sec=%.1f errors=%" PRIu64 " retries=%" PRIu64,
           counted ? "count" : "timed", opt.threads, opt.value_size, opt.mix_put, opt.mix_get, opt.mix_del,
           opt.tls_dir != NULL, secs, total_calls, secs > 0 ? (double)total_calls / secs : 0.0, errors,
           st1.retries - st0.retries);
    for (k = 0; k <= N_OPS; k++) {
        const struct hist *h = &all[k];
        const char *p = k < N_OPS ? op_name[k] : "all";
        printf(" %s_calls=%" PRIu64 " %s_p50_us=%.1f %s_p99_us=%.1f %s_p999_us=%.1f %s_max_us=%.1f", p, h->n, p,
               hist_quantile_us(h, 0.50), p, hist_quantile_us(h, 0.99), p, hist_quantile_us(h, 0.999), p,
               (double)h->max_ns / 1000.0);
    }
    printf(" cpu_us_per_op=%.3f user_us_per_op=%.3f sys_us_per_op=%.3f csw_per_op=%.3f rss_kib_start=%ld"
           " rss_kib_end=%ld rss_kib_max=%ld connections_open=%" PRIu64 "\n",
           cpu_per_op, user_per_op, sys_per_op, csw_per_op, rss_start, rss_end, rss_max, st1.connections_open);
    fflush(stdout);

    for (i = 0; i < opt.threads; i++) {
        free(ws[i].value);
        free(ws[i].hist);
    }
    free(ws);
    free(all);
    return errors == 0 ? 0 : 1;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static int run_probe(void)
{
    int n = opt.rss_probe, i;
    struct worker *ws = make_workers(n, 0);
    long *delta = calloc((size_t)n, sizeof *delta);
    long rss_idle, rss_all, rss_after_exit, before, after, sum = 0;
    ors_redis_stats st;
    uint64_t errors;
    struct worker main_w;
    uint8_t main_value[64];

    if (delta == NULL) {
        perror("calloc");
        return 1;
    }
    /* The main thread makes the process's first calls, so that one-time
     * costs (lazy statics, code pages) are not charged to thread 0. */
    memset(&main_w, 0, sizeof main_w);
    main_w.index = -1;
    main_w.value = main_value;
    {
        size_t saved = opt.value_size;
        opt.value_size = opt.value_size < sizeof main_value ? opt.value_size : sizeof main_value;
        worker_setup(&main_w);
        for (i = 0; i < opt.probe_cycles; i++) {
            session_cycle(&main_w, 0);
        }
        opt.value_size = saved;
    }
    start_threads(ws, n, probe_worker);
    sleep_ns(200000000); /* let every thread park */
    rss_idle = rss_kib();
    for (i = 0; i < n; i++) {
        before = rss_kib();
        pthread_mutex_lock(&probe_lock);
        ws[i].go = 1;
        pthread_cond_broadcast(&probe_cond);
        while (!ws[i].done) {
            pthread_cond_wait(&probe_cond, &probe_lock);
        }
        pthread_mutex_unlock(&probe_lock);
        after = rss_kib();
        delta[i] = after - before;
        sum += delta[i];
    }
    rss_all = rss_kib();
    ors_redis_get_stats(&st);
    pthread_mutex_lock(&probe_lock);
    for (i = 0; i < n; i++) {
        ws[i].leave = 1;
    }
    pthread_cond_broadcast(&probe_cond);
    pthread_mutex_unlock(&probe_lock);
    for (i = 0; i < n; i++) {
        pthread_join(ws[i].thread, NULL);
    }
    rss_after_exit = rss_kib();
    report_errors(ws, n, &errors);
    if (main_w.errors > 0) {
        fprintf(stderr, "ors_bench: main thread: %s\n", main_w.first_error);
        errors += main_w.errors;
    }

    if (!opt.quiet) {
        printf("RSS probe: %d threads, each made %d session cycle(s) of %zu-byte values, one thread at a time\n", n,
               opt.probe_cycles, opt.value_size);
        printf("  per-thread RSS added (KiB):");
        for (i = 0; i < n; i++) {
            printf(" %ld", delta[i]);
        }
        printf("\n");
    }
    {
        long median;
        qsort(delta, (size_t)n, sizeof *delta, cmp_long);
        median = delta[n / 2];
        if (!opt.quiet) {
            printf("  mean %.1f KiB, median %ld KiB, min %ld, max %ld; RSS %ld KiB with idle threads, %ld with "
                   "%d connection sets (%" PRIu64 " sockets, the main thread's included), %ld after the "
                   "threads exited\n",
                   (double)sum / n, median, delta[0], delta[n - 1], rss_idle, rss_all, n,
                   st.connections_open, rss_after_exit);
        }
        printf("RESULT mode=rss-probe threads=%d value_size=%zu tls=%d probe_cycles=%d per_thread_kib_mean=%.1f "
               "per_thread_kib_median=%ld per_thread_kib_min=%ld per_thread_kib_max=%ld rss_kib_idle=%ld "
               "rss_kib_all=%ld rss_kib_after_exit=%ld sockets_with_all=%" PRIu64 " errors=%" PRIu64 "\n",
               n, opt.value_size, opt.tls_dir != NULL, opt.probe_cycles, (double)sum / n, median, delta[0],
               delta[n - 1], rss_idle, rss_all, rss_after_exit, st.connections_open, errors);
    }
    for (i = 0; i < n; i++) {
        free(ws[i].value);
    }
    free(ws);
    free(delta);
    return errors == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    char *config;
    int32_t st;
    int rc;

    parse_args(argc, argv);
    crc16_init();
    config = full_config();
    st = ors_redis_init(config);
    if (st != ORS_OK) {
        fprintf(stderr, "ors_bench: ors_redis_init: %s: %s\n", ors_status_name(st), ors_last_error());
        free(config);
        return 1;
    }
    rc = opt.rss_probe > 0 ? run_probe() : run_load();
    ors_redis_shutdown();
    free(config);
    return rc;
}
