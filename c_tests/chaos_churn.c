/*
 * chaos_churn.c - thousands of short-lived threads.
 *
 * ORS runs its SCXML sessions on worker threads that come and go. Here 4000
 * threads, at most 16 alive at a time, each make a few calls (put, get, del
 * on two sessions) and exit. A sampler thread reads the process's sockets
 * (/proc/self/fd) and resident memory (/proc/self/statm) all along: sockets
 * must stay within live threads x masters plus a small constant (a thread's
 * connections close when it exits), and memory must stay flat once warm.
 */
#include "chaos.h"

#define CLUSTER "chaos_churn"
#define TOTAL 4000
#define LIVE 16
#define MASTERS 3
#define SOCKET_SLACK 4
#define WARM_THREADS 1000      /* RSS is compared from here to the end */
#define RSS_GROWTH_MAX_KIB 2048 /* a leak of ~0.7 KiB per thread would exceed it */

static int stop_sampler, threads_done, failures;
static int max_sockets, samples;
static long rss_max_kib;
static pthread_mutex_t fail_lock = PTHREAD_MUTEX_INITIALIZER;
static char first_failure[512];

static void fail(const char *what, const char *id, int32_t st)
{
    const char *le = ors_last_error();
    pthread_mutex_lock(&fail_lock);
    if (failures++ == 0)
        snprintf(first_failure, sizeof first_failure, "%s %s: %s, last_error=\"%s\"", what, id, h_code_name(st), le);
    pthread_mutex_unlock(&fail_lock);
}

static void *short_lived(void *arg)
{
    long n = (long)(intptr_t)arg;
    int k;
    for (k = 0; k < 2; k++) {
        char id[64];
        int valid;
        uint32_t seq;
        int32_t st;
        snprintf(id, sizeof id, "%ld-ch-%ld-%d", (long)getpid(), n, k);
        st = chaos_put(id, chaos_tag(id), (uint32_t)n, 300);
        if (st != ORS_OK) fail("put", id, st);
        st = chaos_get(id, chaos_tag(id), &valid, &seq);
        if (st != ORS_OK || !valid || seq != (uint32_t)n) fail("get", id, st);
        st = ors_session_del(id);
        if (st != ORS_OK) fail("del", id, st);
    }
    __atomic_add_fetch(&threads_done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void *sampler(void *arg)
{
    int64_t end = h_now_ms() + 600000;
    (void)arg;
    while (!chaos_load(&stop_sampler) && h_now_ms() < end) {
        int s = h_count_sockets();
        long rss = chaos_rss_kib();
        if (s > max_sockets) max_sockets = s;
        if (rss > rss_max_kib) rss_max_kib = rss;
        samples++;
        h_sleep_ms(2);
    }
    return NULL;
}

int main(void)
{
    pthread_t ring[LIVE], sampler_th;
    int created[LIVE];
    long n, rss_start, rss_warm = -1, rss_end, sockets_before, sockets_after, not_started = 0;
    int sampler_ok, i;
    int64_t t0;
    ors_redis_stats st;

    h_begin("chaos_churn: thousands of short-lived threads");
    if (!chaos_cluster_ready()) return h_done();
    if (CHECK_STATUS(ors_redis_init(chaos_config(CLUSTER, "log-level=warn")), ORS_OK, "init") != ORS_OK)
        return h_done();
    sockets_before = h_count_sockets();
    rss_start = chaos_rss_kib();
    memset(created, 0, sizeof created);
    sampler_ok = pthread_create(&sampler_th, NULL, sampler, NULL) == 0;
    t0 = h_now_ms();

    /* A sliding window: thread n replaces thread n - LIVE. */
    for (n = 0; n < TOTAL; n++) {
        int slot = (int)(n % LIVE);
        if (created[slot]) pthread_join(ring[slot], NULL);
        created[slot] = pthread_create(&ring[slot], NULL, short_lived, (void *)(intptr_t)n) == 0;
        if (!created[slot]) not_started++;
        if (n == WARM_THREADS) rss_warm = chaos_rss_kib();
    }
    for (i = 0; i < LIVE; i++)
        if (created[i]) pthread_join(ring[i], NULL);
    chaos_store(&stop_sampler, 1);
    if (sampler_ok) pthread_join(sampler_th, NULL);
    rss_end = chaos_rss_kib();
    sockets_after = h_wait_sockets_at_most(sockets_before, 2000);
    st = chaos_stats();

    CHECK(not_started == 0 && chaos_load(&threads_done) == TOTAL, "%d threads ran (%d finished, %ld not started)",
          TOTAL, chaos_load(&threads_done), not_started);
    if (failures) h_note("first failure: %s", first_failure);
    CHECK(failures == 0, "every call of every thread succeeded (%d failures in %d calls)", failures, TOTAL * 6);
    CHECK(sampler_ok && samples > 10, "sockets and memory sampled %d times", samples);
    CHECK(max_sockets <= LIVE * MASTERS + SOCKET_SLACK,
          "open sockets stayed within %d live threads x %d masters + %d: at most %d", LIVE, MASTERS, SOCKET_SLACK,
          max_sockets);
    CHECK(sockets_after <= sockets_before && st.connections_open == 0 && st.threads_connected == 0,
          "after the last thread exited: %ld sockets (%ld before), connections_open %" PRIu64
          ", threads_connected %" PRIu64,
          sockets_after, sockets_before, st.connections_open, st.threads_connected);
    CHECK(rss_warm > 0 && rss_end > 0 && rss_end - rss_warm <= RSS_GROWTH_MAX_KIB,
          "resident memory flat: %ld KiB after %d threads, %ld KiB after %d (%+ld KiB, at most +%d)", rss_warm,
          WARM_THREADS, rss_end, TOTAL, rss_end - rss_warm, RSS_GROWTH_MAX_KIB);
    h_note("FIGURE churn: %d threads (at most %d alive) x 6 calls in %.1f s, %d failed; open sockets at most %d "
           "(bound %d); RSS %ld KiB at start, %ld KiB after %d threads, %ld KiB after %d (max %ld KiB); sockets "
           "after the last exit %ld",
           TOTAL, LIVE, (h_now_ms() - t0) / 1000.0, failures, max_sockets, LIVE * MASTERS + SOCKET_SLACK, rss_start,
           rss_warm, WARM_THREADS, rss_end, TOTAL, rss_max_kib, sockets_after);
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    return h_done();
}
