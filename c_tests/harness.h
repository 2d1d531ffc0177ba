/*
 * harness.h - header-only helpers for the C test programs in c_tests/.
 *
 * Every test_*.c is its own executable built from one file, so everything
 * here is `static inline` (no "defined but not used" warnings under -Werror).
 * Include this header first: it sets the feature-test macro that popen(),
 * clock_gettime() and readlinkat() need under -std=c99.
 *
 * A test prints one line per check ("ok - ..." or "FAIL - ..."), lines of
 * information start with "# ", and the last line is "N passed, M failed".
 *
 * Environment (set by ctest, defaults for running by hand):
 *   ORS_TEST_NODES       seed nodes for the library (127.0.0.1:7000;...:7002)
 *   ORS_TEST_PORT        a cluster node for redis-cli (7000)
 *   ORS_STANDALONE_PORT  a plain, non-cluster redis-server (7010)
 *   REDIS_CLI            the redis-cli binary (redis-cli)
 */
#ifndef ORS_TEST_HARNESS_H
#define ORS_TEST_HARNESS_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "ors_redis.h"

#if defined(__GNUC__)
#define H_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define H_PRINTF(fmt_index, first_arg)
#endif

/* ------------------------------------------------------------------ */
/* Counting and printing checks                                        */
/* ------------------------------------------------------------------ */

static int h_passed;
static int h_failed;
/* Checks may be made from several threads: one lock for counters and output. */
static pthread_mutex_t h_lock = PTHREAD_MUTEX_INITIALIZER;
/* Copy of ors_last_error() taken by the last CHECK_STATUS (main thread). */
static char *h_err_copy;

/* The contract's names, kept here so that printing a failure never depends on
 * (or disturbs) the library under test. */
static inline const char *h_code_name(int32_t status)
{
    switch (status) {
    case 0: return "ORS_OK";
    case 1: return "ORS_NOT_FOUND";
    case -1: return "ORS_ERR_INVALID_ARGUMENT";
    case -2: return "ORS_ERR_CONFIG";
    case -3: return "ORS_ERR_NOT_INITIALIZED";
    case -4: return "ORS_ERR_ALREADY_INITIALIZED";
    case -5: return "ORS_ERR_CONNECTION";
    case -6: return "ORS_ERR_TIMEOUT";
    case -7: return "ORS_ERR_AUTH";
    case -8: return "ORS_ERR_TLS";
    case -9: return "ORS_ERR_CLUSTER";
    case -10: return "ORS_ERR_TOO_LARGE";
    case -11: return "ORS_ERR_NOT_DURABLE";
    case -12: return "ORS_ERR_SERVER";
    case -99: return "ORS_ERR_INTERNAL";
    default: return "ORS_UNKNOWN_STATUS";
    }
}

/* Is this one of the status values the contract defines? */
static inline int h_is_contract_code(int32_t status)
{
    return strcmp(h_code_name(status), "ORS_UNKNOWN_STATUS") != 0;
}

static inline void h_begin(const char *name)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("# %s (pid %ld, library %s)\n", name, (long)getpid(), ors_redis_version() ? ors_redis_version() : "(null)");
}

/* Prints "# ..." information lines (no check). */
static inline void h_note(const char *fmt, ...) H_PRINTF(1, 2);
static inline void h_note(const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&h_lock);
    fputs("# ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&h_lock);
}

static inline int h_check(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
    H_PRINTF(5, 6);
static inline int h_check(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&h_lock);
    fputs(ok ? "ok - " : "FAIL - ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (ok) {
        h_passed++;
    } else {
        h_failed++;
        printf(" (%s:%d) [%s]", file, line, expr);
    }
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&h_lock);
    return ok;
}

/* Keeps a copy of ors_last_error(): the library's pointer is only valid until
 * its next call on this thread (ors_status_name included). */
static inline const char *h_save_error(void)
{
    const char *le = ors_last_error();
    free(h_err_copy);
    h_err_copy = strdup(le ? le : "(ors_last_error returned NULL)");
    return h_err_copy ? h_err_copy : "";
}

/* The ors_last_error() text saved by the last CHECK_STATUS. */
static inline const char *h_saved_error(void)
{
    return h_err_copy ? h_err_copy : "";
}

static inline int32_t h_check_status(int32_t got, int32_t want, const char *file, int line, const char *fmt, ...)
    H_PRINTF(5, 6);
static inline int32_t h_check_status(int32_t got, int32_t want, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    const char *le = h_save_error(); /* before any other library call */
    pthread_mutex_lock(&h_lock);
    fputs(got == want ? "ok - " : "FAIL - ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    if (got == want) {
        h_passed++;
        printf(" -> %s", h_code_name(got));
    } else {
        h_failed++;
        printf(" (%s:%d) status=%s (%d) expected=%s last_error=\"%s\"", file, line, h_code_name(got), (int)got,
               h_code_name(want), le);
    }
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&h_lock);
    return got;
}

/* CHECK(cond, fmt, ...): one check line. */
#define CHECK(cond, ...) h_check((cond) ? 1 : 0, __FILE__, __LINE__, #cond, __VA_ARGS__)
/* CHECK_STATUS(call, expected, fmt, ...): runs the call, compares its status,
 * saves ors_last_error() (see h_saved_error), evaluates to the status. */
#define CHECK_STATUS(expr, expected, ...) \
    h_check_status((int32_t)(expr), (int32_t)(expected), __FILE__, __LINE__, __VA_ARGS__)
/* The last error text, saved by CHECK_STATUS, contains `needle`. */
#define CHECK_ERROR_MENTIONS(needle, ...) \
    h_check(strstr(h_saved_error(), (needle)) != NULL, __FILE__, __LINE__, "last_error mentions " #needle, __VA_ARGS__)

/* Prints the summary line and gives the exit status. */
static inline int h_done(void)
{
    int failed;
    pthread_mutex_lock(&h_lock);
    printf("%d passed, %d failed\n", h_passed, h_failed);
    fflush(stdout);
    failed = h_failed;
    pthread_mutex_unlock(&h_lock);
    free(h_err_copy);
    h_err_copy = NULL;
    return failed > 0 ? 1 : 0;
}

/* ------------------------------------------------------------------ */
/* Environment, clock                                                  */
/* ------------------------------------------------------------------ */

static inline const char *h_env(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return (v && *v) ? v : fallback;
}

static inline const char *h_nodes(void)
{
    return h_env("ORS_TEST_NODES", "127.0.0.1:7000;127.0.0.1:7001;127.0.0.1:7002");
}

static inline int h_port(void)
{
    return atoi(h_env("ORS_TEST_PORT", "7000"));
}

static inline int h_standalone_port(void)
{
    return atoi(h_env("ORS_STANDALONE_PORT", "7010"));
}

static inline int64_t h_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void h_sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------------ */
/* Config strings, session ids, keys                                   */
/* ------------------------------------------------------------------ */

/* "redis-nodes=<ORS_TEST_NODES> cluster-name=<name> <ORS_TEST_AUTH> <extra>",
 * in a static buffer (use it before the next call). ORS_TEST_AUTH holds the
 * credentials when the tests run as an ACL user (ctest label acl). */
static inline const char *config_for(const char *cluster_name, const char *extra)
{
    static char buf[4096];
    const char *auth = h_env("ORS_TEST_AUTH", "");
    snprintf(buf, sizeof buf, "redis-nodes=%s cluster-name=%s%s%s%s%s", h_nodes(), cluster_name, *auth ? " " : "",
             auth, (extra && *extra) ? " " : "", extra ? extra : "");
    return buf;
}

/* A session-like value (JSON of a shared vocabulary, figures that vary
 * with i) in `out`; its length (0 when it does not fit). */
static inline size_t h_session_like(int i, char *out, size_t cap)
{
    int n = snprintf(out, cap,
                     "{\"sid\":\"%08x-77a1\",\"state\":\"routing\",\"queue\":\"VQ_Sales_%d\",\"events\":["
                     "{\"name\":\"interaction.added\",\"at\":%d},{\"name\":\"target.selected\",\"agent\":"
                     "\"Agent_%d@StatServer\"}],\"attached\":{\"Language\":\"en-US\",\"CallerId\":\"+1555%07d\"}}",
                     (unsigned)i * 2654435761u, i % 7, 1700000000 + i * 37, i % 50, i * 7919 % 10000000);
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Trains a compression dictionary on 80 session-like values with the
 * operator command ($ORS_CLI, which CMake sets): the library, initialized
 * for cluster name `cluster`, puts them, `ors-redis dictionary train`
 * trains and stores the dictionary, they are deleted again. Its id (8 hex
 * digits) in `id`; 0 when it could not. The dictionary's key
 * (ORS:<cluster>:dict:<id>) is the caller's to delete. */
static inline int h_train_dictionary(const char *cluster, char id[9])
{
    char value[512], command[4096], out[8192], sid[64];
    const char *cli = getenv("ORS_CLI"), *at;
    size_t n, len;
    FILE *p;
    int i, put = 0;
    if (!cli || !*cli) return 0;
    for (i = 0; i < 80; i++) {
        snprintf(sid, sizeof sid, "train-%ld-%d", (long)getpid(), i);
        len = h_session_like(i, value, sizeof value);
        put += ors_session_put(sid, (const uint8_t *)value, len, 600) == ORS_OK;
    }
    setenv("ORS_REDIS_CONFIG", config_for(cluster, NULL), 1);
    /* --prefix: these 80 alone, whatever else the cluster name holds. */
    snprintf(command, sizeof command, "'%s' --json dictionary train --sample 80 --prefix train-%ld- 2>&1", cli,
             (long)getpid());
    p = put == 80 ? popen(command, "r") : NULL;
    n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = '\0';
    if (p) pclose(p);
    for (i = 0; i < 80; i++) {
        snprintf(sid, sizeof sid, "train-%ld-%d", (long)getpid(), i);
        ors_session_del(sid);
    }
    at = strstr(out, "\"id\":");
    if (at) at += 5;
    while (at && (*at == ' ' || *at == '"')) at++;
    if (!at || strlen(at) < 8) {
        h_note("ors-redis dictionary train (%d of 80 sessions put): %s", put, out);
        return 0;
    }
    memcpy(id, at, 8);
    id[8] = '\0';
    return 1;
}

/* "<pid>-<suffix>": session ids that a rerun or a crashed earlier run cannot
 * collide with. Rotating static buffers: up to 16 live at a time. */
static inline const char *h_id(const char *suffix)
{
    static char bufs[16][512];
    static unsigned next;
    char *b;
    pthread_mutex_lock(&h_lock);
    b = bufs[next++ % 16];
    pthread_mutex_unlock(&h_lock);
    snprintf(b, 512, "%ld-%s", (long)getpid(), suffix);
    return b;
}

/* The key the contract says a session lives under: ORS:<cluster>:{<id>}. */
static inline const char *h_key(const char *cluster_name, const char *session_id)
{
    static char bufs[8][1400];
    static unsigned next;
    char *b;
    pthread_mutex_lock(&h_lock);
    b = bufs[next++ % 8];
    pthread_mutex_unlock(&h_lock);
    snprintf(b, 1400, "ORS:%s:{%s}", cluster_name, session_id);
    return b;
}

/* ------------------------------------------------------------------ */
/* redis-cli through popen                                             */
/* ------------------------------------------------------------------ */

/* Single-quotes s for the shell into dst. */
static inline void h_shell_quote(char *dst, size_t cap, const char *s)
{
    size_t n = 0;
    if (cap < 3) {
        if (cap) dst[0] = '\0';
        return;
    }
    dst[n++] = '\'';
    for (; *s && n + 6 < cap; s++) {
        if (*s == '\'') {
            memcpy(dst + n, "'\\''", 4);
            n += 4;
        } else {
            dst[n++] = *s;
        }
    }
    dst[n++] = '\'';
    dst[n] = '\0';
}

/* Runs `timeout 20 $REDIS_CLI -h 127.0.0.1 <args>` and reads all of its
 * standard output (NUL-terminated, truncated to cap-1). Returns the bytes
 * read, or -1 when the command could not be run. */
static inline long h_cli_vcapture(char *out, size_t cap, const char *fmt, va_list ap)
{
    char args[8192], cmd[9000];
    FILE *p;
    size_t n = 0, got;
    vsnprintf(args, sizeof args, fmt, ap);
    snprintf(cmd, sizeof cmd, "timeout 20 %s -h 127.0.0.1 %s", h_env("REDIS_CLI", "redis-cli"), args);
    out[0] = '\0';
    p = popen(cmd, "r");
    if (!p) return -1;
    while (n + 1 < cap && (got = fread(out + n, 1, cap - 1 - n, p)) > 0) n += got;
    out[n] = '\0';
    /* drain anything past cap so that the child can exit */
    {
        char sink[4096];
        while (fread(sink, 1, sizeof sink, p) > 0) {
        }
    }
    pclose(p);
    return (long)n;
}

static inline long h_cli_capture(char *out, size_t cap, const char *fmt, ...) H_PRINTF(3, 4);
static inline long h_cli_capture(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    long n;
    va_start(ap, fmt);
    n = h_cli_vcapture(out, cap, fmt, ap);
    va_end(ap);
    return n;
}

/* redis_cli("-c -p %d TTL %s", ...): the first line of redis-cli's output,
 * without its line end, in a static buffer ("" when there is none). */
static inline const char *redis_cli(const char *fmt, ...) H_PRINTF(1, 2);
static inline const char *redis_cli(const char *fmt, ...)
{
    static char out[65536];
    va_list ap;
    char *nl;
    va_start(ap, fmt);
    h_cli_vcapture(out, sizeof out, fmt, ap);
    va_end(ap);
    nl = strchr(out, '\n');
    if (nl) *nl = '\0';
    nl = strchr(out, '\r');
    if (nl) *nl = '\0';
    return out;
}

/* `redis-cli -c -p ORS_TEST_PORT <command> '<key>'`, first line. */
static inline const char *redis_cli_key(const char *command, const char *key)
{
    char q[4096];
    h_shell_quote(q, sizeof q, key);
    return redis_cli("-c -p %d %s %s", h_port(), command, q);
}

/* An integer reply of redis-cli_key (TTL, STRLEN, EXISTS, CLUSTER KEYSLOT);
 * LLONG_MIN when the output is not a number. */
static inline long long redis_cli_key_int(const char *command, const char *key)
{
    const char *s = redis_cli_key(command, key);
    char *end;
    long long v;
    if (!*s) return LLONG_MIN;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end) return LLONG_MIN;
    return v;
}

/* The CLUSTER KEYSLOT of any string, as the server computes it. */
static inline long long h_keyslot(const char *s)
{
    return redis_cli_key_int("CLUSTER KEYSLOT", s);
}

/* Ports of the masters that serve slots, from CLUSTER NODES on ORS_TEST_PORT.
 * When owner_of_slot >= 0, only the master serving that slot. */
static inline int h_masters(int *ports, int max, int owner_of_slot)
{
    static char out[65536];
    char *line, *save = NULL;
    int n = 0;
    h_cli_capture(out, sizeof out, "-p %d CLUSTER NODES", h_port());
    for (line = strtok_r(out, "\n", &save); line && n < max; line = strtok_r(NULL, "\n", &save)) {
        char *f[64], *fs = NULL, *tok;
        int nf = 0, i, port, serves = 0;
        char *colon, *at;
        for (tok = strtok_r(line, " \r", &fs); tok && nf < 64; tok = strtok_r(NULL, " \r", &fs)) f[nf++] = tok;
        if (nf < 8) continue;
        if (!strstr(f[2], "master") || strstr(f[2], "fail")) continue;
        colon = strrchr(f[1], ':');
        at = strchr(f[1], '@');
        if (!colon) continue;
        if (at && at < colon) continue;
        port = atoi(colon + 1);
        for (i = 8; i < nf; i++) {
            long a, b;
            char *dash;
            if (f[i][0] == '[') continue; /* importing/migrating marker */
            a = strtol(f[i], NULL, 10);
            dash = strchr(f[i], '-');
            b = dash ? strtol(dash + 1, NULL, 10) : a;
            if (owner_of_slot < 0 || (owner_of_slot >= a && owner_of_slot <= b)) serves = 1;
        }
        if (serves) ports[n++] = port;
    }
    return n;
}

/* Calls fn(port, key, ud) for every key matching the glob `pattern` on every
 * master (redis-cli --scan). At most `max_keys` keys. Returns the number of
 * keys visited, or -1 when no master could be found. */
static inline int h_for_each_key(const char *pattern, int max_keys, void (*fn)(int port, const char *key, void *ud),
                                 void *ud)
{
    int ports[32], n, i, count = 0;
    char q[2048];
    n = h_masters(ports, 32, -1);
    if (n <= 0) return -1;
    h_shell_quote(q, sizeof q, pattern);
    for (i = 0; i < n && count < max_keys; i++) {
        char cmd[4096], line[4096];
        FILE *p;
        snprintf(cmd, sizeof cmd, "timeout 60 %s -h 127.0.0.1 -p %d --scan --pattern %s",
                 h_env("REDIS_CLI", "redis-cli"), ports[i], q);
        p = popen(cmd, "r");
        if (!p) return -1;
        while (fgets(line, sizeof line, p)) {
            size_t len = strlen(line);
            while (len && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
            if (!len || count >= max_keys) continue; /* keep reading so that redis-cli can exit */
            count++;
            if (fn) fn(ports[i], line, ud);
        }
        pclose(p);
    }
    return count;
}

struct h_ttl_scan {
    int without_ttl;
    char example[2048];
};

static inline void h_ttl_visit(int port, const char *key, void *ud)
{
    struct h_ttl_scan *s = (struct h_ttl_scan *)ud;
    char q[4096];
    const char *ttl;
    h_shell_quote(q, sizeof q, key);
    ttl = redis_cli("-c -p %d TTL %s", port, q);
    if (strcmp(ttl, "-1") == 0) {
        if (!s->without_ttl) snprintf(s->example, sizeof s->example, "%s", key);
        s->without_ttl++;
    }
}

/* Checks (one line) that every key under ORS:<cluster_name>: on every master
 * has a TTL. */
static inline void h_check_all_keys_have_ttl(const char *cluster_name)
{
    char pattern[512];
    struct h_ttl_scan s;
    int n;
    memset(&s, 0, sizeof s);
    snprintf(pattern, sizeof pattern, "ORS:%s:*", cluster_name);
    n = h_for_each_key(pattern, 5000, h_ttl_visit, &s);
    CHECK(n >= 0 && s.without_ttl == 0, "every key matching %s has a TTL (%d keys scanned on all masters, %d without TTL%s%s)",
          pattern, n, s.without_ttl, s.without_ttl ? ", e.g. " : "", s.example);
}

/* Number of keys matching `pattern` over all masters (-1: no master found). */
static inline int h_count_keys(const char *pattern)
{
    return h_for_each_key(pattern, 100000, NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* Sockets of this process                                             */
/* ------------------------------------------------------------------ */

/* Entries of /proc/self/fd whose link reads "socket:[...]"; -1 on error. */
static inline int h_count_sockets(void)
{
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    int n = 0;
    if (!d) return -1;
    while ((e = readdir(d)) != NULL) {
        char target[256];
        ssize_t len;
        if (e->d_name[0] == '.') continue;
        len = readlinkat(dirfd(d), e->d_name, target, sizeof target - 1);
        if (len <= 0) continue;
        target[len] = '\0';
        if (strncmp(target, "socket:", 7) == 0) n++;
    }
    closedir(d);
    return n;
}

/* Polls h_count_sockets() until it is <= want or timeout_ms passed (closing
 * may finish a moment after the call that causes it returns); the last count. */
static inline int h_wait_sockets_at_most(int want, long timeout_ms)
{
    int64_t end = h_now_ms() + timeout_ms;
    int n = h_count_sockets();
    while (n > want && h_now_ms() < end) {
        h_sleep_ms(20);
        n = h_count_sockets();
    }
    return n;
}

/* ------------------------------------------------------------------ */
/* Values                                                              */
/* ------------------------------------------------------------------ */

/* Fills buf with a pattern derived from (a, b): what a later get must return. */
static inline void h_fill(uint8_t *buf, size_t len, unsigned a, unsigned b)
{
    size_t i;
    uint32_t x = (2166136261u ^ (a * 16777619u) ^ (b * 2654435761u)) | 1u;
    for (i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (uint8_t)(x >> 11);
    }
}

#endif /* ORS_TEST_HARNESS_H */
