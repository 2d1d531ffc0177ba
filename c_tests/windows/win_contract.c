/*
 * win_contract.c - the C contract of ors_redis.dll on Windows, run under wine
 * by run-wine-tests.sh against Redis servers on the Linux side. A portable
 * subset of the Linux harness (which needs /proc, popen and redis-cli), with
 * Win32 native threads (CreateThread), as a Windows ORS has them.
 *
 * Prints "ok - ..." / "FAIL - ..." per check and "N passed, M failed" last.
 * Environment (set by run-wine-tests.sh):
 *   ORS_TEST_NODES        seed nodes of the plain cluster
 *   ORS_WIN_CLUSTER       cluster name the script prepared (a WRONGTYPE key)
 *   ORS_STANDALONE_PORT   a non-cluster redis-server
 *   ORS_WIN_CLOSED_PORT   a port nothing listens on
 *   ORS_WIN_NOSLOTS_PORT  a cluster-enabled node that serves no slot
 *   ORS_WIN_SIGNALS       folder for the stop-node handshake with the script
 *   ORS_WIN_TLS_NODES, ORS_WIN_TLS_BAD_PORT, ORS_WIN_TLS_CERTS  the TLS servers
 */
#include <windows.h>

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ors_redis.h"

static int passed, failed;
static CRITICAL_SECTION out_lock;

static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    EnterCriticalSection(&out_lock);
    if (ok) passed++;
    else failed++;
    fputs(ok ? "ok - " : "FAIL - ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    LeaveCriticalSection(&out_lock);
}

static void status_is(int32_t got, int32_t want, const char *what)
{
    check(got == want, "%s -> %s (got %s: %s)", what, ors_status_name(want), ors_status_name(got),
          got < 0 ? ors_last_error() : "");
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0') {
        fprintf(stderr, "win_contract: %s is not set (run me through run-wine-tests.sh)\n", name);
        exit(2);
    }
    return v;
}

static char config_buf[4096];
static const char *config(const char *nodes, const char *extra)
{
    snprintf(config_buf, sizeof config_buf, "redis-nodes=%s cluster-name=%s %s", nodes, env("ORS_WIN_CLUSTER"),
             extra);
    return config_buf;
}

static int64_t now_ms(void)
{
    return (int64_t)GetTickCount64();
}

static void fill(uint8_t *buf, size_t len, unsigned a, unsigned b)
{
    size_t i;
    for (i = 0; i < len; i++) buf[i] = (uint8_t)(a * 131u + b * 31u + i * 7u + (i >> 8));
}

static ors_redis_stats stats(void)
{
    ors_redis_stats s;
    memset(&s, 0, sizeof s);
    if (ors_redis_get_stats(&s) != ORS_OK) memset(&s, 0xff, sizeof s);
    return s;
}

/* Signals with run-wine-tests.sh: files in ORS_WIN_SIGNALS. */
static void signal_make(const char *name)
{
    char path[1024];
    FILE *f;
    snprintf(path, sizeof path, "%s/%s", env("ORS_WIN_SIGNALS"), name);
    f = fopen(path, "w");
    if (f) fclose(f);
}

static int signal_wait(const char *name, int64_t limit_ms)
{
    char path[1024];
    int64_t end = now_ms() + limit_ms;
    snprintf(path, sizeof path, "%s/%s", env("ORS_WIN_SIGNALS"), name);
    while (now_ms() < end) {
        if (GetFileAttributesA(path) != INVALID_FILE_ATTRIBUTES) return 1;
        Sleep(50);
    }
    return 0;
}

/* ---------------------------------------------------------------- */

struct scan_count { int seen, stop_after; };
static int32_t count_ids(const char *id, void *user_data)
{
    struct scan_count *c = (struct scan_count *)user_data;
    (void)id;
    c->seen++;
    return c->stop_after > 0 && c->seen >= c->stop_after;
}

static int log_lines;
static void count_log(int32_t level, const char *message, void *user_data)
{
    (void)message;
    if (level >= ORS_LOG_ERROR && level <= ORS_LOG_TRACE) InterlockedIncrement((volatile LONG *)user_data);
}

static void test_exports(void)
{
    static const char *const names[] = {"ors_redis_init", "ors_redis_shutdown", "ors_session_put",
                                        "ors_session_get", "ors_session_del", "ors_free", "ors_last_error",
                                        "ors_status_name", "ors_redis_version", "ors_session_scan",
                                        "ors_session_restore", "ors_redis_set_logger", "ors_redis_get_stats",
                                        "ors_redis_reconfigure", "ors_redis_get_node_stats"};
    static const struct { int32_t code; const char *name; } codes[] = {
        {ORS_OK, "ORS_OK"}, {ORS_NOT_FOUND, "ORS_NOT_FOUND"}, {ORS_ERR_INVALID_ARGUMENT, "ORS_ERR_INVALID_ARGUMENT"},
        {ORS_ERR_CONFIG, "ORS_ERR_CONFIG"}, {ORS_ERR_NOT_INITIALIZED, "ORS_ERR_NOT_INITIALIZED"},
        {ORS_ERR_ALREADY_INITIALIZED, "ORS_ERR_ALREADY_INITIALIZED"}, {ORS_ERR_CONNECTION, "ORS_ERR_CONNECTION"},
        {ORS_ERR_TIMEOUT, "ORS_ERR_TIMEOUT"}, {ORS_ERR_AUTH, "ORS_ERR_AUTH"}, {ORS_ERR_TLS, "ORS_ERR_TLS"},
        {ORS_ERR_CLUSTER, "ORS_ERR_CLUSTER"}, {ORS_ERR_TOO_LARGE, "ORS_ERR_TOO_LARGE"},
        {ORS_ERR_NOT_DURABLE, "ORS_ERR_NOT_DURABLE"}, {ORS_ERR_SERVER, "ORS_ERR_SERVER"},
        {ORS_ERR_UNAVAILABLE, "ORS_ERR_UNAVAILABLE"},
        {ORS_ERR_INTERNAL, "ORS_ERR_INTERNAL"}};
    HMODULE dll = GetModuleHandleA("ors_redis.dll");
    char want[32];
    uint8_t *data = (uint8_t *)1;
    size_t len = 1, i;
    int found = 0;
    ors_redis_stats s;

    check(dll != NULL, "ors_redis.dll is loaded");
    for (i = 0; dll && i < sizeof names / sizeof names[0]; i++)
        if (GetProcAddress(dll, names[i]) != NULL) found++;
    check(found == (int)(sizeof names / sizeof names[0]), "GetProcAddress finds all %d exports (%d)",
          (int)(sizeof names / sizeof names[0]), found);
    snprintf(want, sizeof want, "%d.%d.%d", ORS_REDIS_VERSION_MAJOR, ORS_REDIS_VERSION_MINOR,
             ORS_REDIS_VERSION_PATCH);
    check(strcmp(ors_redis_version(), want) == 0, "ors_redis_version() %s == header %s", ors_redis_version(), want);
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++)
        check(strcmp(ors_status_name(codes[i].code), codes[i].name) == 0, "ors_status_name(%d) is %s",
              (int)codes[i].code, codes[i].name);
    check(strcmp(ors_status_name(12345), "ORS_UNKNOWN_STATUS") == 0, "ors_status_name(12345) is ORS_UNKNOWN_STATUS");
    check(ors_last_error() != NULL && ors_last_error()[0] == '\0', "ors_last_error() empty before any error");
    ors_free(NULL);
    check(1, "ors_free(NULL) returns");
    status_is(ors_session_put("x", (const uint8_t *)"v", 1, 10), ORS_ERR_NOT_INITIALIZED, "put before init");
    status_is(ors_session_get("x", &data, &len), ORS_ERR_NOT_INITIALIZED, "get before init");
    check(data == NULL && len == 0, "get before init leaves data NULL and len 0");
    status_is(ors_session_del("x"), ORS_ERR_NOT_INITIALIZED, "del before init");
    status_is(ors_session_scan(NULL, count_ids, NULL), ORS_ERR_NOT_INITIALIZED, "scan before init");
    status_is(ors_redis_get_stats(&s), ORS_ERR_NOT_INITIALIZED, "get_stats before init");
    status_is(ors_redis_shutdown(), ORS_ERR_NOT_INITIALIZED, "shutdown before init");
    status_is(ors_redis_reconfigure("redis-nodes=h:1 cluster-name=x"), ORS_ERR_NOT_INITIALIZED,
              "reconfigure before init");
    check(ors_last_error()[0] != '\0',
          "ors_last_error() says why: %s", ors_last_error());
    status_is(ors_redis_set_logger(count_log, &log_lines), ORS_OK, "set_logger before init");
}

static void test_init_errors(void)
{
    char extra[256];
    const char *closed = env("ORS_WIN_CLOSED_PORT");
    status_is(ors_redis_init(NULL), ORS_ERR_INVALID_ARGUMENT, "init(NULL)");
    status_is(ors_redis_init(config(env("ORS_TEST_NODES"), "bogus-key=1")), ORS_ERR_CONFIG, "init with an unknown key");
    check(strstr(ors_last_error(), "bogus-key") != NULL, "the error names the key: %s", ors_last_error());
    snprintf(extra, sizeof extra, "127.0.0.1:%s", env("ORS_STANDALONE_PORT"));
    status_is(ors_redis_init(config(extra, "")), ORS_ERR_CONFIG, "init against a standalone (non-cluster) Redis");
    snprintf(extra, sizeof extra, "127.0.0.1:%s", closed);
    status_is(ors_redis_init(config(extra, "redis-connect-timeout=300")), ORS_ERR_CONNECTION,
              "init against a closed port");
    snprintf(extra, sizeof extra, "127.0.0.1:%s", env("ORS_WIN_NOSLOTS_PORT"));
    status_is(ors_redis_init(config(extra, "")), ORS_ERR_CLUSTER, "init against a cluster node with no slots");
    status_is(ors_redis_init(config(env("ORS_TEST_NODES"), "password='not-set s3cret'")), ORS_ERR_AUTH,
              "init with a password the server does not have");
    check(strstr(ors_last_error(), "s3cret") == NULL, "the message never carries the password");
}

static void test_roundtrip(void)
{
    uint8_t all[256], *big, *data = NULL;
    size_t len = 0, i;
    const size_t big_len = 1024 * 1024;
    int same;

    for (i = 0; i < sizeof all; i++) all[i] = (uint8_t)i;
    status_is(ors_session_put("win-bin", all, sizeof all, 600), ORS_OK, "put of the 256 byte values (NUL included)");
    status_is(ors_session_get("win-bin", &data, &len), ORS_OK, "get it back");
    check(data != NULL && len == sizeof all && memcmp(data, all, len) == 0, "the same 256 bytes (len %u)",
          (unsigned)len);
    ors_free(data);
    status_is(ors_session_put("win-empty", NULL, 0, 600), ORS_OK, "put of an empty value (data NULL, len 0)");
    data = NULL;
    len = 99;
    status_is(ors_session_get("win-empty", &data, &len), ORS_OK, "get of the empty value");
    check(data != NULL && len == 0, "non-NULL buffer of 0 bytes");
    ors_free(data);

    big = (uint8_t *)malloc(big_len);
    if (big == NULL) exit(3);
    fill(big, big_len, 5, 7);
    status_is(ors_session_put("win-big", big, big_len, 600), ORS_OK, "put of 1 MiB (= max-value-bytes)");
    status_is(ors_session_get("win-big", &data, &len), ORS_OK, "get of 1 MiB");
    same = data != NULL && len == big_len && memcmp(data, big, big_len) == 0;
    check(same, "1 MiB read back byte for byte");
    ors_free(data);
    free(big);
    big = (uint8_t *)calloc(1, big_len + 1);
    if (big == NULL) exit(3);
    status_is(ors_session_put("win-too-large", big, big_len + 1, 600), ORS_ERR_TOO_LARGE,
              "put of max-value-bytes + 1");
    free(big);

    status_is(ors_session_put(NULL, all, 1, 10), ORS_ERR_INVALID_ARGUMENT, "put with id NULL");
    status_is(ors_session_put("a{b}", all, 1, 10), ORS_ERR_INVALID_ARGUMENT, "put with a '{' in the id");
    status_is(ors_session_put("win-x", NULL, 5, 10), ORS_ERR_INVALID_ARGUMENT, "put with data NULL, len 5");
    status_is(ors_session_get("win-bin", NULL, &len), ORS_ERR_INVALID_ARGUMENT, "get with data NULL");
    status_is(ors_redis_get_stats(NULL), ORS_ERR_INVALID_ARGUMENT, "get_stats(NULL)");
    {
        ors_node_stats nodes[16];
        size_t count = 0, i, masters = 0;
        status_is(ors_redis_get_node_stats(NULL, 0, NULL), ORS_ERR_INVALID_ARGUMENT, "get_node_stats(count NULL)");
        status_is(ors_redis_get_node_stats(nodes, 16, &count), ORS_OK, "get_node_stats");
        for (i = 0; i < count && i < 16; i++) masters += nodes[i].is_master && nodes[i].state == ORS_NODE_WELL;
        check(masters >= 3, "node stats list the 3 masters, well");
    }

    status_is(ors_session_del("win-bin"), ORS_OK, "del of a stored session");
    status_is(ors_session_del("win-bin"), ORS_NOT_FOUND, "del again");
    data = (uint8_t *)1;
    len = 1;
    status_is(ors_session_get("win-bin", &data, &len), ORS_NOT_FOUND, "get of the deleted session");
    check(data == NULL && len == 0, "NOT_FOUND leaves data NULL and len 0");
    status_is(ors_session_get("win-wrongtype", &data, &len), ORS_ERR_SERVER,
              "get of a key that is a hash (WRONGTYPE, made by the script)");
}

static void test_ttl(void)
{
    uint8_t *data = NULL;
    size_t len = 0;
    status_is(ors_session_put("win-ttl-1", (const uint8_t *)"short", 5, 1), ORS_OK, "put with a TTL of 1 s");
    status_is(ors_session_get("win-ttl-1", &data, &len), ORS_OK, "readable at once");
    ors_free(data);
    Sleep(2200);
    status_is(ors_session_get("win-ttl-1", &data, &len), ORS_NOT_FOUND, "expired 2.2 s later");
    /* The script reads this key's TTL from the Linux side: default-ttl=7777. */
    status_is(ors_session_put("win-ttl-default", (const uint8_t *)"d", 1, 0), ORS_OK, "put with ttl 0 (default-ttl)");
    status_is(ors_session_put("win-ttl-300", (const uint8_t *)"d", 1, 300), ORS_OK, "put with ttl 300");
}

static void test_scan(void)
{
    char id[64];
    int i, ok = 0;
    struct scan_count c = {0, 0};
    for (i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "win-scan-%02d", i);
        ok += ors_session_put(id, (const uint8_t *)id, strlen(id), 600) == ORS_OK;
    }
    check(ok == 30, "30 sessions put for scan (%d)", ok);
    status_is(ors_session_scan("win-scan-", count_ids, &c), ORS_OK, "scan of prefix win-scan-");
    check(c.seen == 30, "scan reports each of the 30 once (%d)", c.seen);
    c.seen = 0;
    c.stop_after = 1;
    status_is(ors_session_scan("win-scan-", count_ids, &c), ORS_OK, "scan stopped early by fn");
    check(c.seen == 1, "fn called once before stopping (%d)", c.seen);
}

/* The restore's callback: each session's value is its own id. */
static int32_t check_values(const char *id, const uint8_t *data, size_t len, void *user_data)
{
    struct scan_count *c = (struct scan_count *)user_data;
    if (len == strlen(id) && memcmp(data, id, len) == 0) c->seen++;
    return 0;
}

static void test_restore(void)
{
    struct scan_count c = {0, 0};
    ors_redis_stats before, after;
    status_is(ors_redis_get_stats(&before), ORS_OK, "stats before the restore");
    status_is(ors_session_restore("win-scan-", check_values, &c), ORS_OK, "restore of prefix win-scan-");
    check(c.seen == 30, "restore reports each of the 30 with its value (%d)", c.seen);
    status_is(ors_redis_get_stats(&after), ORS_OK, "stats after the restore");
    check(after.restored - before.restored == 30, "stats: restored counts them (%d)",
          (int)(after.restored - before.restored));
}

/* 16 threads, each its own ids and values, every value read back and compared. */
#define WORKERS 16
#define WORKER_OPS 150
struct worker { int index; int ops, mismatches, errors; int32_t last_error; };

static DWORD WINAPI worker_run(LPVOID arg)
{
    struct worker *w = (struct worker *)arg;
    uint8_t value[2048], *data;
    size_t len;
    char id[64];
    int i;
    for (i = 0; i < WORKER_OPS; i++) {
        size_t vlen = (size_t)(i * 13 + w->index) % sizeof value;
        int32_t st;
        snprintf(id, sizeof id, "win-t%02d-%03d", w->index, i);
        fill(value, vlen, (unsigned)w->index, (unsigned)i);
        st = ors_session_put(id, value, vlen, 600);
        if (st != ORS_OK) { w->errors++; w->last_error = st; continue; }
        data = NULL;
        len = 0;
        st = ors_session_get(id, &data, &len);
        if (st != ORS_OK) { w->errors++; w->last_error = st; continue; }
        if (len != vlen || memcmp(data, value, vlen) != 0) w->mismatches++;
        ors_free(data);
        if (i % 2 == 0 && ors_session_del(id) != ORS_OK) w->errors++;
        w->ops++;
    }
    return 0;
}

static void test_threads(void)
{
    struct worker w[WORKERS];
    HANDLE h[WORKERS];
    int i, ops = 0, mismatches = 0, errors = 0, started = 0;
    ors_redis_stats before = stats(), after;
    int64_t end;
    memset(w, 0, sizeof w);
    for (i = 0; i < WORKERS; i++) {
        w[i].index = i;
        h[i] = CreateThread(NULL, 0, worker_run, &w[i], 0, NULL);
        started += h[i] != NULL;
    }
    check(started == WORKERS, "%d native threads started", started);
    WaitForMultipleObjects((DWORD)started, h, TRUE, 120000);
    for (i = 0; i < started; i++) {
        CloseHandle(h[i]);
        ops += w[i].ops;
        mismatches += w[i].mismatches;
        errors += w[i].errors;
    }
    check(ops == WORKERS * WORKER_OPS && errors == 0, "%d threads x %d put/get: %d done, %d errors", WORKERS,
          WORKER_OPS, ops, errors);
    check(mismatches == 0, "every value read back equals the one written (%d mismatches)", mismatches);
    /* Their connection sets close when the threads exit (TLS destructor). */
    end = now_ms() + 3000;
    do {
        after = stats();
        if (after.threads_connected == before.threads_connected && after.connections_open == before.connections_open)
            break;
        Sleep(20);
    } while (now_ms() < end);
    check(after.threads_connected == before.threads_connected,
          "threads_connected back to %llu after the 16 threads exited (%llu)",
          (unsigned long long)before.threads_connected, (unsigned long long)after.threads_connected);
    check(after.connections_open == before.connections_open, "connections_open back to %llu (%llu)",
          (unsigned long long)before.connections_open, (unsigned long long)after.connections_open);
}

/* One native thread opens connections to every master, then exits. */
struct holder { HANDLE go_on; int puts; };
static DWORD WINAPI holder_run(LPVOID arg)
{
    struct holder *hd = (struct holder *)arg;
    char id[32];
    int i;
    for (i = 0; i < 40; i++) {
        snprintf(id, sizeof id, "win-holder-%d", i);
        hd->puts += ors_session_put(id, (const uint8_t *)"h", 1, 60) == ORS_OK;
    }
    WaitForSingleObject(hd->go_on, 30000);
    return 0;
}

static void test_exited_thread(void)
{
    struct holder hd;
    HANDLE t;
    ors_redis_stats before = stats(), during, after;
    int64_t end;
    hd.puts = 0;
    hd.go_on = CreateEventA(NULL, TRUE, FALSE, NULL);
    t = CreateThread(NULL, 0, holder_run, &hd, 0, NULL);
    end = now_ms() + 10000;
    do {
        during = stats();
        Sleep(20);
    } while (hd.puts < 40 && now_ms() < end);
    during = stats();
    check(hd.puts == 40, "a native thread put 40 sessions (%d)", hd.puts);
    check(during.threads_connected == before.threads_connected + 1,
          "while it lives: threads_connected %llu (one more than %llu)", (unsigned long long)during.threads_connected,
          (unsigned long long)before.threads_connected);
    check(during.connections_open >= before.connections_open + 3,
          "while it lives: connections_open %llu (at least 3 more, one per master)",
          (unsigned long long)during.connections_open);
    SetEvent(hd.go_on);
    WaitForSingleObject(t, 30000);
    CloseHandle(t);
    CloseHandle(hd.go_on);
    end = now_ms() + 3000;
    do {
        after = stats();
        if (after.threads_connected == before.threads_connected) break;
        Sleep(20);
    } while (now_ms() < end);
    check(after.threads_connected == before.threads_connected && after.connections_open == before.connections_open,
          "after it exited: threads_connected %llu, connections_open %llu (as before: %llu, %llu)",
          (unsigned long long)after.threads_connected, (unsigned long long)after.connections_open,
          (unsigned long long)before.threads_connected, (unsigned long long)before.connections_open);
}

/* Threads calling in a loop while the main thread shuts the library down. */
#define CALLERS 8
struct caller { int index; long calls, not_init, bad; };
static DWORD WINAPI caller_run(LPVOID arg)
{
    struct caller *c = (struct caller *)arg;
    char id[32];
    uint8_t *data;
    size_t len;
    int64_t end = now_ms() + 20000;
    snprintf(id, sizeof id, "win-busy-%d", c->index);
    while (now_ms() < end && c->calls < 200000) {
        int32_t st = (c->calls % 2) ? ors_session_put(id, (const uint8_t *)"busy", 4, 60)
                                    : ors_session_get(id, &data, &len);
        if (st == ORS_OK && (c->calls % 2) == 0) ors_free(data);
        c->calls++;
        if (st == ORS_ERR_NOT_INITIALIZED) {
            if (++c->not_init >= 3) break;
        } else if (st != ORS_OK && st != ORS_NOT_FOUND && (st >= 0 || st == ORS_ERR_INTERNAL || st < -12)) {
            c->bad++;
        }
    }
    return 0;
}

static void test_shutdown_while_calling(void)
{
    struct caller c[CALLERS];
    HANDLE h[CALLERS];
    int i, all_stopped = 1;
    long calls = 0, bad = 0;
    memset(c, 0, sizeof c);
    for (i = 0; i < CALLERS; i++) {
        c[i].index = i;
        h[i] = CreateThread(NULL, 0, caller_run, &c[i], 0, NULL);
    }
    Sleep(500);
    status_is(ors_redis_shutdown(), ORS_OK, "shutdown while 8 threads call");
    WaitForMultipleObjects(CALLERS, h, TRUE, 60000);
    for (i = 0; i < CALLERS; i++) {
        CloseHandle(h[i]);
        calls += c[i].calls;
        bad += c[i].bad;
        if (c[i].not_init < 3) all_stopped = 0;
    }
    check(calls > CALLERS, "the threads made %ld calls", calls);
    check(all_stopped, "every thread then got ORS_ERR_NOT_INITIALIZED");
    check(bad == 0, "no status outside the contract and no ORS_ERR_INTERNAL (%ld)", bad);
    status_is(ors_redis_shutdown(), ORS_ERR_NOT_INITIALIZED, "shutdown again");
}

static void test_not_durable(void)
{
    status_is(ors_redis_init(config(env("ORS_TEST_NODES"), "wait-replicas=3 wait-timeout=50")), ORS_OK,
              "init with wait-replicas=3 (each master has 1 replica)");
    status_is(ors_session_put("win-durable", (const uint8_t *)"x", 1, 60), ORS_ERR_NOT_DURABLE,
              "put that fewer replicas than asked acknowledge");
    status_is(ors_redis_shutdown(), ORS_OK, "shutdown");
}

/* The script SIGSTOPs one master from the Linux side between "ready" and
 * "stopped"; every call must return within op-timeout + 250 ms. */
static void test_stopped_node(void)
{
    char id[32];
    int i, ok = 0, timeouts = 0, other = 0, warm = 0;
    int64_t worst = 0;
    ors_redis_stats before, after;
    /* Each call waits for the stopped master (node-fail-fast=false): the
     * node health tests (c_tests/netfault/nf_health.c) cover fail-fast. */
    status_is(ors_redis_init(config(env("ORS_TEST_NODES"), "op-timeout=500 redis-socket-timeout=400 node-fail-fast=false")),
              ORS_OK, "init with op-timeout=500");
    for (i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "win-stop-%d", i);
        warm += ors_session_put(id, (const uint8_t *)"w", 1, 60) == ORS_OK;
    }
    check(warm == 30, "30 puts over every master before the stop (%d)", warm);
    before = stats();
    signal_make("ready");
    if (!signal_wait("stopped", 30000)) {
        check(0, "the script stopped a master");
        return;
    }
    for (i = 0; i < 30; i++) {
        int64_t t0 = now_ms(), took;
        int32_t st;
        snprintf(id, sizeof id, "win-stop-%d", i);
        st = ors_session_put(id, (const uint8_t *)"s", 1, 60);
        took = now_ms() - t0;
        if (took > worst) worst = took;
        if (st == ORS_OK) ok++;
        else if (st == ORS_ERR_TIMEOUT) timeouts++;
        else other++;
    }
    after = stats();
    signal_make("timed-out");
    check(timeouts > 0 && other == 0, "against a stopped master: %d OK, %d ORS_ERR_TIMEOUT, %d other", ok, timeouts,
          other);
    check(worst <= 750, "no call longer than op-timeout + 250 ms (longest %lld ms)", (long long)worst);
    check(after.connections_open < before.connections_open,
          "the connection to the stopped master was dropped (connections_open %llu -> %llu)",
          (unsigned long long)before.connections_open, (unsigned long long)after.connections_open);
    if (!signal_wait("resumed", 30000)) {
        check(0, "the script resumed the master");
        return;
    }
    {
        int64_t end = now_ms() + 10000;
        int32_t st;
        do {
            st = ors_session_put("win-stop-0", (const uint8_t *)"r", 1, 60);
            if (st == ORS_OK) break;
            Sleep(100);
        } while (now_ms() < end);
        status_is(st, ORS_OK, "put on a fresh connection once the master runs again");
    }
    status_is(ors_redis_shutdown(), ORS_OK, "shutdown");
}

static void test_tls(void)
{
    char extra[2048], nodes[64];
    const char *certs = env("ORS_WIN_TLS_CERTS");
    uint8_t *data = NULL;
    size_t len = 0;
    snprintf(extra, sizeof extra,
             "tls-enabled=true tls-cacert='%s/ca.pem' tls-cert='%s/client.pem' tls-key='%s/client.key'", certs, certs,
             certs);
    status_is(ors_redis_init(config(env("ORS_WIN_TLS_NODES"), extra)), ORS_OK, "init over TLS with tls-cacert");
    status_is(ors_session_put("win-tls", (const uint8_t *)"secret\0bytes", 12, 60), ORS_OK, "put over TLS");
    status_is(ors_session_get("win-tls", &data, &len), ORS_OK, "get over TLS");
    check(len == 12 && data && memcmp(data, "secret\0bytes", 12) == 0, "the 12 bytes read back over TLS");
    ors_free(data);
    status_is(ors_session_del("win-tls"), ORS_OK, "del over TLS");
    status_is(ors_redis_shutdown(), ORS_OK, "shutdown");
    snprintf(nodes, sizeof nodes, "127.0.0.1:%s", env("ORS_WIN_TLS_BAD_PORT"));
    snprintf(extra, sizeof extra, "tls-enabled=true tls-cacert='%s/ca.pem' redis-connect-timeout=2000", certs);
    status_is(ors_redis_init(config(nodes, extra)), ORS_ERR_TLS, "init against a node with an expired certificate");
}

int main(void)
{
    const char *config_main;
    InitializeCriticalSection(&out_lock);
    setvbuf(stdout, NULL, _IONBF, 0);
    test_exports();
    test_init_errors();

    config_main = config(env("ORS_TEST_NODES"), "default-ttl=7777 max-value-bytes=1048576 log-level=info");
    status_is(ors_redis_init(config_main), ORS_OK, "init");
    check(log_lines > 0, "the logger got the init's lines (%d)", log_lines);
    status_is(ors_redis_set_logger(NULL, NULL), ORS_OK, "set_logger(NULL) restores stderr");
    status_is(ors_redis_init(config_main), ORS_ERR_ALREADY_INITIALIZED, "init while initialized");
    status_is(ors_redis_reconfigure(NULL), ORS_ERR_INVALID_ARGUMENT, "reconfigure(NULL)");
    status_is(ors_redis_reconfigure(config_main), ORS_OK, "reconfigure with the config in use");
    {
        char renamed[1024];
        snprintf(renamed, sizeof renamed, "redis-nodes=%s cluster-name=win-other", env("ORS_TEST_NODES"));
        status_is(ors_redis_reconfigure(renamed), ORS_ERR_CONFIG, "reconfigure of cluster-name is refused");
        check(strstr(ors_last_error(), "'cluster-name'") != NULL, "the message names it: %s", ors_last_error());
    }
    status_is(ors_redis_reconfigure(config(env("ORS_TEST_NODES"),
                                           "default-ttl=7777 max-value-bytes=1048576 log-level=info op-timeout=4000")),
              ORS_OK, "reconfigure of op-timeout");
    test_roundtrip();
    test_ttl();
    test_scan();
    test_restore();
    test_threads();
    test_exited_thread();
    test_shutdown_while_calling();
    test_not_durable();
    test_stopped_node();
    test_tls();

    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
