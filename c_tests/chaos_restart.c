/*
 * chaos_restart.c - the whole cluster down, then back from its AOF files.
 *
 * Sessions are written, then every node is stopped (SIGTERM: Redis writes
 * and syncs its AOF on the way down) while worker threads keep calling. Each
 * call during the outage must fail within op-timeout (plus a margin) with
 * ORS_ERR_CONNECTION, ORS_ERR_CLUSTER or ORS_ERR_TIMEOUT. The cluster is then
 * started again from its data (cluster.sh resume): the same process, without
 * re-init, must recover by itself, and every session written before the
 * outage must be back with exactly its bytes.
 */
#include "chaos.h"

#define CLUSTER "chaos_restart"
#define THREADS 4
#define IDS 24
#define KEEP 3000
#define OP_TIMEOUT_MS 3000
#define MARGIN_MS 1500
#define MAX_CALLS 2000000
#define RUN_LIMIT_MS 150000

CHAOS_WORKER_IDS_FIT(IDS);

static struct chaos_worker workers[THREADS];
static int stop_flag;
static int64_t run_end_ms;

static void *work(void *arg)
{
    struct chaos_worker *w = (struct chaos_worker *)arg;
    long iter;
    for (iter = 0; !chaos_load(&stop_flag) && w->n < MAX_CALLS - 2 && h_now_ms() < run_end_ms; iter++) {
        struct chaos_round r;
        chaos_worker_round(w, (int)(iter % IDS), 900, &r);
    }
    return NULL;
}

int main(void)
{
    pthread_t th[THREADS];
    int started[THREADS];
    int i, k, rc;
    char extra[256];
    long keep_ok = 0, keep_back = 0, down_calls = 0, down_conn = 0, down_cluster = 0, down_timeout = 0,
         down_other = 0, over = 0, after_calls = 0, after_ok = 0, wrong = 0, stale = 0;
    int64_t longest_us = 0, down_longest_us = 0, stop_begin, down_at, resume_begin, healthy_at, first_ok = 0, t0;
    int32_t probe;
    ors_redis_stats st1;

    h_begin("chaos_restart: whole cluster stopped, then restarted from AOF");
    if (!chaos_cluster_ready()) return h_done();
    snprintf(extra, sizeof extra, "op-timeout=%d log-level=warn", OP_TIMEOUT_MS);
    ors_redis_set_logger(chaos_logger, NULL);
    if (CHECK_STATUS(ors_redis_init(chaos_config(CLUSTER, extra)), ORS_OK, "init (%s)", extra) != ORS_OK)
        return h_done();

    for (i = 0; i < KEEP; i++) {
        char id[64];
        snprintf(id, sizeof id, "%ld-keep-%d", (long)getpid(), i);
        keep_ok += chaos_put(id, chaos_tag(id), 1, 3600) == ORS_OK;
    }
    CHECK(keep_ok == KEEP, "%d sessions written before the outage (%ld OK)", KEEP, keep_ok);

    /* Where the sessions live does not matter: every node goes down. */
    for (i = 0; i < THREADS; i++) {
        chaos_worker_init(&workers[i], i, MAX_CALLS);
        for (k = 0; k < IDS; k++) chaos_worker_place(&workers[i], k, "rs", NULL, 0);
    }
    run_end_ms = h_now_ms() + RUN_LIMIT_MS;
    for (i = 0; i < THREADS; i++) started[i] = workers[i].calls && pthread_create(&th[i], NULL, work, &workers[i]) == 0;
    h_sleep_ms(700);

    /* Down: every node, gracefully (the AOF is written and synced). */
    stop_begin = chaos_now_us();
    rc = chaos_ctl("stop-all");
    down_at = chaos_now_us();
    CHECK(rc == 0, "every node of the cluster stopped (cluster.sh stop-all, %.1f s)", (down_at - stop_begin) / 1e6);
    t0 = chaos_now_us();
    {
        uint8_t *data = NULL;
        size_t len = 0;
        probe = ors_session_get(workers[0].ids[0], &data, &len);
        ors_free(data);
    }
    {
        char err[1024];
        snprintf(err, sizeof err, "%s", ors_last_error());
        CHECK(probe == ORS_ERR_CONNECTION || probe == ORS_ERR_CLUSTER || probe == ORS_ERR_TIMEOUT,
              "a get with the cluster down fails: %s after %.0f ms (\"%s\")", h_code_name(probe),
              (chaos_now_us() - t0) / 1000.0, err);
        CHECK(chaos_count(err, "node 127.0.0.1:") == 1, "the error names the node once");
    }
    h_sleep_ms(OP_TIMEOUT_MS + 1000);

    /* Back: every node from its own data. */
    resume_begin = chaos_now_us();
    rc = chaos_ctl("resume");
    healthy_at = chaos_now_us();
    CHECK(rc == 0, "cluster restarted from its data and healthy again (cluster.sh resume, %.1f s)",
          (healthy_at - resume_begin) / 1e6);
    first_ok = chaos_wait_first_success(workers, THREADS, resume_begin, 30000);
    CHECK(first_ok != 0, "the same library instance works again without re-init (first success %.0f ms after the "
                         "restart began)",
          (first_ok - resume_begin) / 1000.0);
    h_sleep_ms(1500);
    chaos_stop_workers(&stop_flag, th, started, THREADS);
    st1 = chaos_stats();

    for (i = 0; i < THREADS; i++) {
        struct chaos_worker *w = &workers[i];
        int j;
        wrong += w->wrong;
        stale += w->stale;
        if (w->wrong) h_note("thread %d: %s", i, w->first_wrong);
        for (j = 0; j < w->n; j++) {
            struct chaos_call *c = &w->calls[j];
            if (c->us > longest_us) longest_us = c->us;
            if (c->us > (OP_TIMEOUT_MS + MARGIN_MS) * 1000L) over++;
            /* Started after the last node stopped, due before the restart began. */
            if (c->t0 >= down_at && c->t0 + OP_TIMEOUT_MS * 1000L < resume_begin) {
                down_calls++;
                if (c->us > down_longest_us) down_longest_us = c->us;
                if (c->status == ORS_ERR_CONNECTION) down_conn++;
                else if (c->status == ORS_ERR_CLUSTER) down_cluster++;
                else if (c->status == ORS_ERR_TIMEOUT) down_timeout++;
                else down_other++;
            }
            if (c->t0 >= healthy_at) {
                after_calls++;
                after_ok += c->status == ORS_OK;
            }
        }
    }
    CHECK(down_calls > 0 && down_other == 0,
          "during the outage every call failed with CONNECTION, CLUSTER or TIMEOUT (%ld calls: %ld CONNECTION, %ld "
          "CLUSTER, %ld TIMEOUT, %ld other)",
          down_calls, down_conn, down_cluster, down_timeout, down_other);
    CHECK(over == 0, "no call took longer than op-timeout %d + %d ms (longest %.0f ms)", OP_TIMEOUT_MS, MARGIN_MS,
          longest_us / 1000.0);
    CHECK(after_calls > 0 && after_ok == after_calls, "once healthy again, every call succeeded (%ld of %ld)", after_ok,
          after_calls);
    CHECK(wrong == 0, "no get returned bytes never written (%ld)", wrong);
    CHECK(stale == 0, "no acknowledged write of the workers was lost across the restart (%ld stale reads)", stale);
    for (i = 0; i < KEEP; i++) {
        char id[64];
        int valid;
        uint32_t seq;
        snprintf(id, sizeof id, "%ld-keep-%d", (long)getpid(), i);
        keep_back += chaos_get(id, chaos_tag(id), &valid, &seq) == ORS_OK && valid && seq == 1;
    }
    CHECK(keep_back == KEEP, "all %d sessions written before the outage are back from the AOF, exactly (%ld)", KEEP,
          keep_back);
    h_note("FIGURE restart: all 6 nodes stopped for %.1f s; %ld calls due during the outage all failed (%ld "
           "CONNECTION, %ld CLUSTER, %ld TIMEOUT), longest %.0f ms (op-timeout %d); cluster.sh resume took %.1f s; "
           "first success %.0f ms after the restart began, without re-init; %ld/%d sessions back from AOF; %ld "
           "calls after recovery all OK; slot-map reloads %" PRIu64,
           (resume_begin - down_at) / 1e6, down_calls, down_conn, down_cluster, down_timeout,
           down_longest_us / 1000.0, OP_TIMEOUT_MS, (healthy_at - resume_begin) / 1e6,
           (first_ok - resume_begin) / 1000.0, keep_back, KEEP, after_calls, st1.topology_refreshes);
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    for (i = 0; i < THREADS; i++) chaos_worker_free(&workers[i]);
    return h_done();
}
