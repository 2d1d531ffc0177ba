/*
 * restore_bench.c - the library's bulk reads, timed and checked, on the data
 * set of restore_data.h (sessions bench-0 .. bench-N-1, values computed
 * from the ids). bench/restore.sh runs it beside restore_peer.c, the
 * hand-written hiredis reader.
 *
 *   restore_bench restore  --sessions N [options]   ors_session_restore
 *   restore_bench scan-get --sessions N --threads T  ors_session_scan for the
 *                          ids, then T threads ors_session_get their share
 *                          (the way to read everything before the restore)
 *   restore_bench scan     --sessions N [options]   ors_session_scan, ids only
 *   restore_bench load     --sessions N --threads T  the data set, by T
 *                          threads of ors_session_put
 *
 * Every session handed over is checked: an id of the data set under the
 * prefix, reported once, and (restore, scan-get) with its value. The time
 * of a read is that of the library call(s) after ors_redis_init; scan-get's
 * includes its scan. restore also reports the growth of the process's RSS
 * over the call: the peak (VmHWM of /proc/self/status, reset through
 * /proc/self/clear_refs just before) less VmRSS just before; the bitmap of
 * seen ids is resident before that, so the growth is the library's.
 *
 * ors_session_restore is declared weak here, so that this program builds
 * and runs (scan, scan-get, load) against a library without it; restore
 * then exits 3.
 *
 * Options:
 *   --config STR      library config string (default $ORS_BENCH_CONFIG, else
 *                     "redis-nodes=127.0.0.1:7000 cluster-name=bench")
 *   --sessions N      sessions in the data set (required)
 *   --value-size S    bytes per value (2048)
 *   --prefix P        restore/scan/scan-get: only ids that start with P ("")
 *   --threads T       scan-get: threads of gets (1); load: threads of puts (8)
 *   --ttl S           load: ttl_seconds (86400)
 *   --stop-after K    restore/scan: the callback asks to stop at the K-th
 *                     session (checks that exactly K are handed over)
 *   --quiet           only the RESULT line (and errors)
 *
 * Output: a summary and one "RESULT key=value ..." line (restore_data.h
 * says which keys; restore adds rss_*, scan-get scan_seconds and threads;
 * every read ends with lib=<the libors_redis file that ran>).
 * Exit status: 0 when every call returned ORS_OK and every session of the
 * set (under the prefix) was handed over exactly once with its value, and
 * nothing else; 1 otherwise; 2 for bad usage; 3 when the library has no
 * ors_session_restore.
 */
#define _GNU_SOURCE 1

#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ors_redis.h"
#include "restore_data.h"

/* Weak, with the function type written out (not the header's typedef, which
 * C99 does not allow twice): NULL at run time when the library lacks it. */
int32_t ors_session_restore(const char *id_prefix,
                            int32_t (*fn)(const char *session_id, const uint8_t *data, size_t len, void *user_data),
                            void *user_data) __attribute__((weak));

#define MAX_THREADS 256

enum mode { MODE_RESTORE, MODE_SCAN_GET, MODE_SCAN, MODE_LOAD };

struct options {
    enum mode mode;
    const char *mode_name;
    const char *config;
    uint64_t sessions;
    int sessions_given;
    size_t value_size;
    const char *prefix;
    int threads;
    int threads_given;
    uint32_t ttl;
    uint64_t stop_after;
    int quiet;
};

/* What a callback (restore, scan) accounts into. */
struct reader {
    struct rd_tally tally;
    uint64_t calls;
    char first_problem[512];
};

/* The ids ors_session_scan found, for scan-get: NUL-terminated, back to back. */
struct id_list {
    char *text;
    size_t used, cap;
    size_t *start; /* offset of each id in text */
    size_t count, count_cap;
};

struct worker {
    pthread_t thread;
    int index;
    size_t first, last; /* scan-get: ids [first, last) of the list */
    struct rd_tally tally;
    uint64_t ok_calls;
    uint64_t errors;
    char first_error[512];
};

static struct options opt;
static struct rd_set g_set;
static struct id_list g_ids;

/* ------------------------------------------------------------------ */

static void usage_exit(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_exit(const char *fmt, ...)
{
    va_list ap;
    fputs("restore_bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nusage: restore_bench restore|scan-get|scan|load --sessions N [--config STR] [--value-size S]"
          " [--prefix P] [--threads T] [--ttl S] [--stop-after K] [--quiet]\n",
          stderr);
    exit(2);
}

static long long parse_num(const char *name, const char *value, long long lo, long long hi)
{
    long long v = 0;
    if (rd_number(value, lo, hi, &v) != 0) {
        usage_exit("%s must be a number from %lld to %lld, not '%s'", name, lo, hi, value);
    }
    return v;
}

static void parse_args(int argc, char **argv)
{
    int i;
    opt.config = getenv("ORS_BENCH_CONFIG");
    if (opt.config == NULL || opt.config[0] == '\0') {
        opt.config = "redis-nodes=127.0.0.1:7000 cluster-name=bench";
    }
    opt.value_size = 2048;
    opt.prefix = "";
    opt.ttl = 86400;
    if (argc < 2) {
        usage_exit("no mode given");
    }
    if (strcmp(argv[1], "restore") == 0) {
        opt.mode = MODE_RESTORE;
    } else if (strcmp(argv[1], "scan-get") == 0) {
        opt.mode = MODE_SCAN_GET;
    } else if (strcmp(argv[1], "scan") == 0) {
        opt.mode = MODE_SCAN;
    } else if (strcmp(argv[1], "load") == 0) {
        opt.mode = MODE_LOAD;
    } else {
        usage_exit("unknown mode '%s'", argv[1]);
    }
    opt.mode_name = argv[1];
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
        if (strcmp(a, "--config") == 0) {
            opt.config = v;
        } else if (strcmp(a, "--sessions") == 0) {
            opt.sessions = (uint64_t)parse_num(a, v, 0, 1000000000LL);
            opt.sessions_given = 1;
        } else if (strcmp(a, "--value-size") == 0) {
            opt.value_size = (size_t)parse_num(a, v, 0, 64LL << 20);
        } else if (strcmp(a, "--prefix") == 0) {
            opt.prefix = v;
        } else if (strcmp(a, "--threads") == 0) {
            opt.threads = (int)parse_num(a, v, 1, MAX_THREADS);
            opt.threads_given = 1;
        } else if (strcmp(a, "--ttl") == 0) {
            opt.ttl = (uint32_t)parse_num(a, v, 1, 100000000LL);
        } else if (strcmp(a, "--stop-after") == 0) {
            opt.stop_after = (uint64_t)parse_num(a, v, 1, 1000000000LL);
        } else {
            usage_exit("unknown option '%s'", a);
        }
    }
    if (!opt.sessions_given) {
        usage_exit("--sessions is required");
    }
    if (!opt.threads_given) {
        opt.threads = opt.mode == MODE_LOAD ? 8 : 1;
    }
    if (opt.stop_after > 0 && opt.mode != MODE_RESTORE && opt.mode != MODE_SCAN) {
        usage_exit("--stop-after is for restore and scan");
    }
    if (opt.mode == MODE_LOAD && opt.prefix[0] != '\0') {
        usage_exit("load writes the whole data set: no --prefix");
    }
}

/* VmRSS and VmHWM of /proc/self/status, in KiB (-1 when unreadable). */
static void read_rss(long *rss_kib, long *hwm_kib)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    *rss_kib = -1;
    *hwm_kib = -1;
    if (f == NULL) {
        return;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            *rss_kib = strtol(line + 6, NULL, 10);
        } else if (strncmp(line, "VmHWM:", 6) == 0) {
            *hwm_kib = strtol(line + 6, NULL, 10);
        }
    }
    fclose(f);
}

/* Resets VmHWM to the current RSS (Linux 4.0+); 0 on success. */
static int reset_hwm(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int rc;
    if (f == NULL) {
        return -1;
    }
    rc = fputs("5", f) < 0 ? -1 : 0;
    if (fclose(f) != 0) {
        rc = -1;
    }
    return rc;
}

/* ------------------------------------------------------------------ */
/* restore and scan: callbacks on the calling thread                    */

static int32_t restore_cb(const char *session_id, const uint8_t *data, size_t len, void *user_data)
{
    struct reader *r = user_data;
    if (rd_account(&g_set, &r->tally, session_id, strlen(session_id), data, len) != 0) {
        rd_note(r->first_problem, sizeof r->first_problem, "session '%s' (%zu bytes): %s", session_id, len,
                     "foreign, repeated or with a wrong value");
    }
    r->calls++;
    return opt.stop_after > 0 && r->calls >= opt.stop_after ? 1 : 0;
}

static int32_t scan_cb(const char *session_id, void *user_data)
{
    struct reader *r = user_data;
    if (rd_account(&g_set, &r->tally, session_id, strlen(session_id), NULL, 0) != 0) {
        rd_note(r->first_problem, sizeof r->first_problem, "session '%s': foreign or repeated", session_id);
    }
    r->calls++;
    return opt.stop_after > 0 && r->calls >= opt.stop_after ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* scan-get                                                             */

static int32_t collect_cb(const char *session_id, void *user_data)
{
    struct id_list *l = user_data;
    size_t len = strlen(session_id) + 1;
    if (l->used + len > l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1 << 20;
        char *p;
        while (cap < l->used + len) {
            cap *= 2;
        }
        p = realloc(l->text, cap);
        if (p == NULL) {
            return 1;
        }
        l->text = p;
        l->cap = cap;
    }
    if (l->count == l->count_cap) {
        size_t cap = l->count_cap ? l->count_cap * 2 : 1 << 16;
        size_t *p = realloc(l->start, cap * sizeof *p);
        if (p == NULL) {
            return 1;
        }
        l->start = p;
        l->count_cap = cap;
    }
    memcpy(l->text + l->used, session_id, len);
    l->start[l->count++] = l->used;
    l->used += len;
    return 0;
}

static void *get_worker(void *arg)
{
    struct worker *w = arg;
    size_t i;
    for (i = w->first; i < w->last; i++) {
        const char *id = g_ids.text + g_ids.start[i];
        uint8_t *data = NULL;
        size_t len = 0;
        int32_t rc = ors_session_get(id, &data, &len);
        if (rc == ORS_OK) {
            w->ok_calls++;
            if (rd_account(&g_set, &w->tally, id, strlen(id), data, len) != 0) {
                rd_note(w->first_error, sizeof w->first_error, "get '%s' (%zu bytes): %s", id, len,
                             "foreign, repeated or with a wrong value");
            }
        } else {
            w->errors++;
            rd_note(w->first_error, sizeof w->first_error, "get '%s': %s: %s", id, ors_status_name(rc),
                         ors_last_error());
        }
        ors_free(data);
    }
    return NULL;
}

/* ------------------------------------------------------------------ */
/* load                                                                 */

static void *put_worker(void *arg)
{
    struct worker *w = arg;
    uint8_t *value = malloc(opt.value_size > 0 ? opt.value_size : 1);
    char id[RD_ID_MAX];
    uint64_t n;
    if (value == NULL) {
        w->errors++;
        rd_note(w->first_error, sizeof w->first_error, "out of memory");
        return NULL;
    }
    for (n = (uint64_t)w->index; n < opt.sessions; n += (uint64_t)opt.threads) {
        size_t id_len = rd_id(n, id);
        int32_t rc;
        rd_fill(id, id_len, value, opt.value_size);
        rc = ors_session_put(id, value, opt.value_size, opt.ttl);
        if (rc == ORS_OK) {
            w->ok_calls++;
        } else {
            w->errors++;
            rd_note(w->first_error, sizeof w->first_error, "put '%s': %s: %s", id, ors_status_name(rc),
                         ors_last_error());
        }
    }
    free(value);
    return NULL;
}

/* Starts opt.threads workers on fn and waits for them; returns the sum. */
static void run_workers(struct worker *workers, void *(*fn)(void *), struct rd_tally *sum, uint64_t *ok_calls,
                        uint64_t *errors)
{
    int i;
    for (i = 0; i < opt.threads; i++) {
        workers[i].index = i;
        if (pthread_create(&workers[i].thread, NULL, fn, &workers[i]) != 0) {
            fprintf(stderr, "restore_bench: cannot start a thread\n");
            exit(1);
        }
    }
    for (i = 0; i < opt.threads; i++) {
        pthread_join(workers[i].thread, NULL);
        rd_tally_add(sum, &workers[i].tally);
        *ok_calls += workers[i].ok_calls;
        *errors += workers[i].errors;
        if (workers[i].first_error[0] != '\0') {
            fprintf(stderr, "restore_bench: thread %d: %s\n", i, workers[i].first_error);
        }
    }
}

/* ------------------------------------------------------------------ */

/* Did a read hand over exactly the sessions it should, each once, right? */
/* The file the library was loaded from (LD_LIBRARY_PATH can change it). */
static const char *library_file(void)
{
    Dl_info info;
    if (dladdr((void *)(uintptr_t)ors_redis_init, &info) != 0 && info.dli_fname != NULL) {
        return info.dli_fname;
    }
    return "?";
}

static int read_ok(const struct rd_tally *t, int32_t status)
{
    uint64_t want = rd_expected(g_set.total, g_set.prefix);
    if (opt.stop_after > 0 && opt.stop_after < want) {
        want = opt.stop_after;
    }
    return status == ORS_OK && t->reported == want && t->distinct == want && t->repeats == 0 && t->foreign == 0 &&
           t->bad_values == 0;
}

static int run_callback_read(void)
{
    struct reader r;
    long rss0, hwm0, rss1, hwm1;
    int hwm_reset;
    double t0, t1, cpu0, cpu1;
    int32_t rc;

    memset(&r, 0, sizeof r);
    if (opt.mode == MODE_RESTORE && ors_session_restore == NULL) {
        fprintf(stderr, "restore_bench: this libors_redis has no ors_session_restore\n");
        return 3;
    }
    hwm_reset = reset_hwm() == 0;
    read_rss(&rss0, &hwm0);
    cpu0 = rd_cpu_s();
    t0 = rd_now();
    if (opt.mode == MODE_RESTORE) {
        rc = ors_session_restore(opt.prefix, restore_cb, &r);
    } else {
        rc = ors_session_scan(opt.prefix, scan_cb, &r);
    }
    t1 = rd_now();
    cpu1 = rd_cpu_s();
    read_rss(&rss1, &hwm1);
    if (rc != ORS_OK) {
        fprintf(stderr, "restore_bench: %s: %s: %s\n",
                opt.mode == MODE_RESTORE ? "ors_session_restore" : "ors_session_scan", ors_status_name(rc),
                ors_last_error());
    }
    if (r.first_problem[0] != '\0') {
        fprintf(stderr, "restore_bench: first problem: %s\n", r.first_problem);
    }
    rd_print_result(opt.mode_name, &g_set, &r.tally, t1 - t0, cpu1 - cpu0, opt.quiet);
    printf(" status=%s", ors_status_name(rc));
    if (opt.mode == MODE_RESTORE) {
        printf(" rss_before_kib=%ld rss_peak_kib=%ld rss_after_kib=%ld rss_growth_kib=%ld hwm_reset=%d", rss0, hwm1,
               rss1, hwm_reset && rss0 >= 0 && hwm1 >= 0 ? hwm1 - rss0 : -1, hwm_reset);
    }
    printf(" lib=%s\n", library_file());
    if (opt.mode == MODE_RESTORE && !opt.quiet) {
        if (hwm_reset) {
            printf("restore: RSS %ld KiB before, peak %ld KiB during (growth %.1f MiB), %ld KiB after\n", rss0, hwm1,
                   (double)(hwm1 - rss0) / 1024.0, rss1);
        } else {
            printf("restore: RSS %ld KiB before, %ld KiB after (peak unknown: /proc/self/clear_refs refused)\n", rss0,
                   rss1);
        }
    }
    return read_ok(&r.tally, rc) ? 0 : 1;
}

static int run_scan_get(void)
{
    struct worker workers[MAX_THREADS];
    struct rd_tally sum;
    uint64_t ok_calls = 0, errors = 0;
    double t0, t_scan, t1, cpu0, cpu1;
    int32_t rc;
    int i;

    memset(workers, 0, sizeof workers);
    memset(&sum, 0, sizeof sum);
    cpu0 = rd_cpu_s();
    t0 = rd_now();
    rc = ors_session_scan(opt.prefix, collect_cb, &g_ids);
    t_scan = rd_now();
    if (rc != ORS_OK) {
        fprintf(stderr, "restore_bench: ors_session_scan: %s: %s\n", ors_status_name(rc), ors_last_error());
    }
    for (i = 0; i < opt.threads; i++) {
        workers[i].first = g_ids.count * (size_t)i / (size_t)opt.threads;
        workers[i].last = g_ids.count * (size_t)(i + 1) / (size_t)opt.threads;
    }
    run_workers(workers, get_worker, &sum, &ok_calls, &errors);
    t1 = rd_now();
    cpu1 = rd_cpu_s();
    if (!opt.quiet) {
        printf("scan-get: scan %.3f s (%zu ids), then %d thread(s) of gets %.3f s, %" PRIu64 " errors\n",
               t_scan - t0, g_ids.count, opt.threads, t1 - t_scan, errors);
    }
    rd_print_result(opt.mode_name, &g_set, &sum, t1 - t0, cpu1 - cpu0, opt.quiet);
    printf(" status=%s threads=%d scan_seconds=%.6f errors=%" PRIu64 " lib=%s\n", ors_status_name(rc), opt.threads,
           t_scan - t0, errors, library_file());
    free(g_ids.text);
    free(g_ids.start);
    return errors == 0 && read_ok(&sum, rc) ? 0 : 1;
}

static int run_load(void)
{
    struct worker workers[MAX_THREADS];
    struct rd_tally sum;
    uint64_t ok_calls = 0, errors = 0;
    double t0, t1;

    memset(workers, 0, sizeof workers);
    memset(&sum, 0, sizeof sum);
    t0 = rd_now();
    run_workers(workers, put_worker, &sum, &ok_calls, &errors);
    t1 = rd_now();
    if (!opt.quiet) {
        printf("load: %" PRIu64 " sessions of %zu bytes put in %.3f s (%.0f/s) by %d threads, %" PRIu64 " errors\n",
               ok_calls, opt.value_size, t1 - t0, t1 > t0 ? (double)ok_calls / (t1 - t0) : 0.0, opt.threads, errors);
    }
    printf("RESULT mode=load loaded=%" PRIu64 " seconds=%.6f threads=%d errors=%" PRIu64 "\n", ok_calls, t1 - t0,
           opt.threads, errors);
    return errors == 0 && ok_calls == opt.sessions ? 0 : 1;
}

int main(int argc, char **argv)
{
    int32_t rc;
    int result;

    parse_args(argc, argv);
    setvbuf(stdout, NULL, _IOLBF, 0);
    rd_set_init(&g_set, opt.sessions, opt.value_size, opt.prefix);
    rc = ors_redis_init(opt.config);
    if (rc != ORS_OK) {
        fprintf(stderr, "restore_bench: ors_redis_init: %s: %s\n", ors_status_name(rc), ors_last_error());
        return 1;
    }
    switch (opt.mode) {
    case MODE_RESTORE:
    case MODE_SCAN:
        result = run_callback_read();
        break;
    case MODE_SCAN_GET:
        result = run_scan_get();
        break;
    default:
        result = run_load();
        break;
    }
    ors_redis_shutdown();
    rd_set_free(&g_set);
    return result;
}
