/*
 * restore_data.h - the data set of the restore benchmark, shared by
 * restore_bench.c (the library) and restore_peer.c (the hiredis reader), so
 * that both write, read and check it the same way.
 *
 * Session ids are "bench-<n>" for n = 0 .. N-1 (decimal, no leading zeros).
 * The value of a session is S bytes computed from its id alone (splitmix64
 * words seeded with the FNV-1a hash of the id), so a reader checks every
 * value it is handed by recomputing it, without a copy of the data set; a
 * value under another id, truncated or changed fails the check.
 *
 * A reader accounts for each session it is handed with rd_account(): the id
 * must be one of the data set and start with the prefix read, the value
 * must be right, and a bitmap of N bits (shared by a reader's threads, set
 * atomically) tells a session reported again from the first report.
 *
 * Also the plumbing both programs share: option numbers, the first problem
 * met, time and CPU, the RESULT line.
 *
 * Header-only (static inline), C99 with GNU atomics builtins.
 */
#ifndef ORS_RESTORE_DATA_H
#define ORS_RESTORE_DATA_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define RD_ID_PREFIX "bench-"
#define RD_ID_PREFIX_LEN (sizeof(RD_ID_PREFIX) - 1)
/* "bench-" and the 20 digits of the largest uint64_t, NUL. */
#define RD_ID_MAX 32

/* Writes the id of session n to out (RD_ID_MAX bytes); returns its length. */
static inline size_t rd_id(uint64_t n, char *out)
{
    int len = snprintf(out, RD_ID_MAX, RD_ID_PREFIX "%" PRIu64, n);
    return len < 0 ? 0 : (size_t)len;
}

static inline uint64_t rd_seed(const char *id, size_t id_len)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
    size_t i;
    for (i = 0; i < id_len; i++) {
        h = (h ^ (uint8_t)id[i]) * 0x100000001b3ULL;
    }
    return h;
}

/* Word i of the value of the id whose seed is given (splitmix64's output). */
static inline uint64_t rd_word(uint64_t seed, uint64_t i)
{
    uint64_t x = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Fills out[0 .. len) with the value of this id. */
static inline void rd_fill(const char *id, size_t id_len, uint8_t *out, size_t len)
{
    uint64_t seed = rd_seed(id, id_len), i, w;
    size_t words = len / 8;
    for (i = 0; i < words; i++) {
        w = rd_word(seed, i);
        memcpy(out + i * 8, &w, 8);
    }
    if (len % 8 != 0) {
        w = rd_word(seed, words);
        memcpy(out + words * 8, &w, len % 8);
    }
}

/* Is data[0 .. len) the value of this id? */
static inline int rd_value_ok(const char *id, size_t id_len, const uint8_t *data, size_t len)
{
    uint64_t seed = rd_seed(id, id_len), i, w, got;
    size_t words = len / 8;
    for (i = 0; i < words; i++) {
        w = rd_word(seed, i);
        memcpy(&got, data + i * 8, 8);
        if (got != w) {
            return 0;
        }
    }
    if (len % 8 != 0) {
        w = rd_word(seed, words);
        return memcmp(data + words * 8, &w, len % 8) == 0;
    }
    return 1;
}

/* The n of an id "bench-<n>" (canonical decimal), or -1 for any other id. */
static inline int rd_parse(const char *id, size_t id_len, uint64_t *n)
{
    uint64_t v = 0;
    size_t i;
    if (id_len <= RD_ID_PREFIX_LEN || id_len > RD_ID_PREFIX_LEN + 20 ||
        memcmp(id, RD_ID_PREFIX, RD_ID_PREFIX_LEN) != 0) {
        return -1;
    }
    if (id[RD_ID_PREFIX_LEN] == '0' && id_len > RD_ID_PREFIX_LEN + 1) {
        return -1;
    }
    for (i = RD_ID_PREFIX_LEN; i < id_len; i++) {
        if (id[i] < '0' || id[i] > '9' || v > (UINT64_MAX - 9) / 10) {
            return -1;
        }
        v = v * 10 + (uint64_t)(id[i] - '0');
    }
    *n = v;
    return 0;
}

/* Does the id of session n start with prefix? */
static inline int rd_has_prefix(uint64_t n, const char *prefix)
{
    char id[RD_ID_MAX];
    size_t len = rd_id(n, id), plen = strlen(prefix);
    return plen <= len && memcmp(id, prefix, plen) == 0;
}

/* How many of sessions 0 .. total-1 have an id that starts with prefix. */
static inline uint64_t rd_expected(uint64_t total, const char *prefix)
{
    uint64_t n, count = 0;
    for (n = 0; n < total; n++) {
        count += (uint64_t)rd_has_prefix(n, prefix);
    }
    return count;
}

/* What a reader was handed. Each thread keeps its own; rd_tally_add sums them. */
struct rd_tally {
    uint64_t reported;   /* sessions handed to the reader, repeats included */
    uint64_t distinct;   /* sessions of the data set handed at least once */
    uint64_t repeats;    /* reports of a session already reported */
    uint64_t foreign;    /* ids outside the data set or the prefix */
    uint64_t bad_values; /* values that are not the id's */
    uint64_t bytes;      /* value bytes handed */
};

static inline void rd_tally_add(struct rd_tally *sum, const struct rd_tally *t)
{
    sum->reported += t->reported;
    sum->distinct += t->distinct;
    sum->repeats += t->repeats;
    sum->foreign += t->foreign;
    sum->bad_values += t->bad_values;
    sum->bytes += t->bytes;
}

/* The data set a reader expects, and which of its sessions it has seen. */
struct rd_set {
    uint64_t total;       /* N: sessions loaded */
    size_t value_size;    /* S */
    const char *prefix;   /* the prefix read ("" for all) */
    size_t prefix_len;
    uint64_t *seen;       /* N bits */
};

/* Allocates and touches the bitmap (so that it is resident before anything
 * measures RSS). Exits the process when out of memory. */
static inline void rd_set_init(struct rd_set *s, uint64_t total, size_t value_size, const char *prefix)
{
    size_t words = (size_t)(total / 64 + 1);
    s->total = total;
    s->value_size = value_size;
    s->prefix = prefix != NULL ? prefix : "";
    s->prefix_len = strlen(s->prefix);
    s->seen = calloc(words, sizeof(uint64_t));
    if (s->seen == NULL) {
        fprintf(stderr, "out of memory for a bitmap of %" PRIu64 " sessions\n", total);
        exit(1);
    }
    memset(s->seen, 0, words * sizeof(uint64_t));
}

static inline void rd_set_free(struct rd_set *s)
{
    free(s->seen);
    s->seen = NULL;
}

/* Accounts for one session handed to a reader: its id (not NUL-terminated)
 * and, unless data is NULL (a reader of ids only), its value. Thread-safe
 * across threads that each have their own tally. Returns 0 when the session
 * is one of the set, first reported, with the right value. */
static inline int rd_account(const struct rd_set *s, struct rd_tally *t, const char *id, size_t id_len,
                             const uint8_t *data, size_t len)
{
    uint64_t n, bit, old;
    int ok = 1;
    t->reported++;
    /* A parsed id is exactly rd_id(n): its prefix is checked on the id itself. */
    if (rd_parse(id, id_len, &n) != 0 || n >= s->total || id_len < s->prefix_len ||
        memcmp(id, s->prefix, s->prefix_len) != 0) {
        t->foreign++;
        return -1;
    }
    bit = (uint64_t)1 << (n % 64);
    old = __atomic_fetch_or(&s->seen[n / 64], bit, __ATOMIC_RELAXED);
    if (old & bit) {
        t->repeats++;
        ok = 0;
    } else {
        t->distinct++;
    }
    if (data != NULL) {
        t->bytes += len;
        if (len != s->value_size || !rd_value_ok(id, id_len, data, len)) {
            t->bad_values++;
            ok = 0;
        }
    }
    return ok ? 0 : -1;
}

/* Parses a decimal option value within lo .. hi into *out; 0 on success. */
static inline int rd_number(const char *value, long long lo, long long hi, long long *out)
{
    char *end;
    long long v;
    errno = 0;
    v = strtoll(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

/* Keeps the first problem met in buf (the one that matters); later ones are dropped. */
static inline void rd_vnote(char *buf, size_t cap, const char *fmt, va_list ap)
{
    if (buf[0] == '\0') {
        vsnprintf(buf, cap, fmt, ap);
    }
}

static inline void rd_note(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static inline void rd_note(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    rd_vnote(buf, cap, fmt, ap);
    va_end(ap);
}

static inline double rd_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* user + system CPU seconds of this process so far (all threads). */
static inline double rd_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           (double)ru.ru_stime.tv_usec / 1e6;
}

/* The figures every reader prints, human-readable and as the start of its
 * machine-readable line (the caller ends that line, after fields of its own):
 *   RESULT mode=M expected=E reported=R distinct=D repeats=P foreign=F
 *          bad_values=B missing=X seconds=T sessions_per_sec=Q cpu_s=C */
static inline void rd_print_result(const char *mode, const struct rd_set *s, const struct rd_tally *t,
                                   double seconds, double cpu_s, int quiet)
{
    uint64_t expected = rd_expected(s->total, s->prefix);
    uint64_t missing = expected > t->distinct ? expected - t->distinct : 0;
    double rate = seconds > 0 ? (double)t->reported / seconds : 0.0;
    if (!quiet) {
        printf("%s: %" PRIu64 " sessions in %.3f s, %.0f sessions/s, %.1f MiB/s of values, client CPU %.3f s\n",
               mode, t->reported, seconds, rate, seconds > 0 ? (double)t->bytes / seconds / 1048576.0 : 0.0,
               cpu_s);
        printf("%s: expected %" PRIu64 " (prefix '%s'), distinct %" PRIu64 ", repeats %" PRIu64
               ", foreign %" PRIu64 ", bad values %" PRIu64 ", missing %" PRIu64 "\n",
               mode, expected, s->prefix, t->distinct, t->repeats, t->foreign, t->bad_values, missing);
    }
    printf("RESULT mode=%s expected=%" PRIu64 " reported=%" PRIu64 " distinct=%" PRIu64 " repeats=%" PRIu64
           " foreign=%" PRIu64 " bad_values=%" PRIu64 " missing=%" PRIu64 " seconds=%.6f sessions_per_sec=%.1f"
           " cpu_s=%.3f",
           mode, expected, t->reported, t->distinct, t->repeats, t->foreign, t->bad_values, missing, seconds, rate,
           cpu_s);
}

#endif /* ORS_RESTORE_DATA_H */
