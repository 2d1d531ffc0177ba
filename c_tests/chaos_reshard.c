/*
 * chaos_reshard.c - live resharding under load: MOVED and ASK.
 *
 * Worker threads put, get and delete their sessions without pause, every
 * value checked exactly, while thousands of slots move between the masters:
 * one slot by hand with its migration held open for a second (so that ASK
 * is certain to be seen), then `redis-cli --cluster reshard` twice and
 * `redis-cli --cluster rebalance`. Background sessions make the migrations
 * move keys. Zero failed calls and zero wrong values are allowed.
 */
#include "chaos.h"

#define CLUSTER "chaos_reshard"
#define THREADS 6
#define IDS 40
#define ASK_IDS 3 /* per thread, all in the slot migrated by hand */
#define BG_SESSIONS 20000
#define BG_THREADS 4
#define RESHARD_SLOTS 2500
#define OP_TIMEOUT_MS 5000
#define MAX_ITERS 50000000L
#define RUN_LIMIT_MS 200000

struct worker {
    int t;
    char ids[IDS + ASK_IDS][64];
    uint32_t tag[IDS + ASK_IDS], seq[IDS + ASK_IDS];
    long calls, failed, wrong;
    char first_failure[512];
    struct chaos_lat lat;
};

static struct worker workers[THREADS];
static int stop_flag;
static int64_t run_end_ms;
static int ask_slot;

static void fail(struct worker *w, long *counter, const char *what, const char *id, int32_t st, const char *detail)
{
    (*counter)++;
    if (w->failed + w->wrong == 1)
        snprintf(w->first_failure, sizeof w->first_failure, "%s %s: %s %s, last_error=\"%s\"", what, id,
                 h_code_name(st), detail, st < 0 ? ors_last_error() : "");
}

static void *work(void *arg)
{
    struct worker *w = (struct worker *)arg;
    long iter;
    for (iter = 0; iter < MAX_ITERS && !chaos_load(&stop_flag) && h_now_ms() < run_end_ms; iter++) {
        /* The ASK ids get every other call: the held migration must see them. */
        int k = (iter % 2) ? (int)(IDS + (iter / 2) % ASK_IDS) : (int)((iter / 2) % IDS), valid;
        uint32_t got;
        int64_t t0, t1;
        int32_t st;
        const char *id = w->ids[k];

        w->seq[k]++;
        t0 = chaos_now_us();
        st = chaos_put(id, w->tag[k], w->seq[k], 600);
        t1 = chaos_now_us();
        w->calls++;
        chaos_lat_add(&w->lat, t1 - t0);
        if (st != ORS_OK) {
            fail(w, &w->failed, "put", id, st, "");
            continue;
        }
        t0 = chaos_now_us();
        st = chaos_get(id, w->tag[k], &valid, &got);
        t1 = chaos_now_us();
        w->calls++;
        chaos_lat_add(&w->lat, t1 - t0);
        if (st != ORS_OK) {
            fail(w, &w->failed, "get", id, st, "");
            continue;
        }
        if (!valid || got != w->seq[k]) {
            fail(w, &w->wrong, "get", id, st, valid ? "(an older value)" : "(bytes never written)");
            continue;
        }
        if (iter % 8 == 7) {
            uint8_t *data = NULL;
            size_t len = 0;
            t0 = chaos_now_us();
            st = ors_session_del(id);
            t1 = chaos_now_us();
            w->calls++;
            chaos_lat_add(&w->lat, t1 - t0);
            if (st != ORS_OK) {
                fail(w, &w->failed, "del", id, st, "(expected ORS_OK)");
                continue;
            }
            st = ors_session_get(id, &data, &len);
            w->calls++;
            if (st != ORS_NOT_FOUND) fail(w, st < 0 ? &w->failed : &w->wrong, "get after del", id, st, "");
            ors_free(data);
        }
    }
    return NULL;
}

/* Background sessions: keys in most slots, so that migrations move data. */
static void *background(void *arg)
{
    long part = (long)(intptr_t)arg, i, *bad = (long *)calloc(1, sizeof(long));
    for (i = part; i < BG_SESSIONS; i += BG_THREADS) {
        char id[64];
        snprintf(id, sizeof id, "%ld-bg-%ld", (long)getpid(), i);
        if (chaos_put(id, chaos_tag(id), 1, 900) != ORS_OK && bad) (*bad)++;
    }
    return bad;
}

static long verify_background(void)
{
    long i, lost = 0;
    for (i = 0; i < BG_SESSIONS; i++) {
        char id[64];
        int valid;
        uint32_t seq;
        snprintf(id, sizeof id, "%ld-bg-%ld", (long)getpid(), i);
        if (chaos_get(id, chaos_tag(id), &valid, &seq) != ORS_OK || !valid || seq != 1) lost++;
    }
    return lost;
}

/* Moves one slot from `from` to `to` by hand, as redis-cli does, but holds
 * the MIGRATING/IMPORTING state for `hold_ms` after its keys have moved: every
 * call on that slot meanwhile gets ASK. */
static int migrate_slot_held(const struct chaos_topo *t, int slot, int from, int to, long hold_ms, long *keys_moved)
{
    static char out[1 << 16];
    char cli[256], cmd[1 << 15];
    const char *from_id = t->master_id[chaos_master_index(t, from)], *to_id = t->master_id[chaos_master_index(t, to)];
    int i, rc, ok = 1;
    char *line, *save = NULL;
    size_t n;
    snprintf(cli, sizeof cli, "timeout 20 %s -h 127.0.0.1", h_env("REDIS_CLI", "redis-cli"));
    ok &= chaos_run_capture(out, sizeof out, "%s -p %d CLUSTER SETSLOT %d IMPORTING %s", cli, to, slot, from_id) == 0 &&
          strstr(out, "OK") != NULL;
    ok &= chaos_run_capture(out, sizeof out, "%s -p %d CLUSTER SETSLOT %d MIGRATING %s", cli, from, slot, to_id) == 0 &&
          strstr(out, "OK") != NULL;
    rc = chaos_run_capture(out, sizeof out, "%s -p %d CLUSTER GETKEYSINSLOT %d 1000", cli, from, slot);
    ok &= rc == 0;
    n = (size_t)snprintf(cmd, sizeof cmd, "%s -p %d MIGRATE 127.0.0.1 %d \"\" 0 5000 KEYS", cli, from, to);
    *keys_moved = 0;
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char q[512];
        if (!*line) continue;
        h_shell_quote(q, sizeof q, line);
        n += (size_t)snprintf(cmd + n, sizeof cmd - n, " %s", q);
        (*keys_moved)++;
    }
    if (*keys_moved > 0) {
        rc = chaos_run_capture(out, sizeof out, "%s", cmd);
        ok &= rc == 0 && strstr(out, "OK") != NULL;
    }
    h_sleep_ms(hold_ms);
    for (i = 0; i < t->n_masters; i++)
        ok &= chaos_run_capture(out, sizeof out, "%s -p %d CLUSTER SETSLOT %d NODE %s", cli, t->master_port[i], slot,
                                to_id) == 0 &&
              strstr(out, "OK") != NULL;
    return ok;
}

int main(void)
{
    static struct chaos_topo topo;
    static char out[1 << 20];
    pthread_t th[THREADS], bg[BG_THREADS];
    int started[THREADS];
    int i, k, a, b, c, rc, moved_ask;
    char extra[256];
    long calls = 0, failed = 0, wrong = 0, bg_bad = 0, bg_lost, ask_keys = 0, slots_moved = 0, rebalanced = 0;
    struct chaos_lat all;
    ors_redis_stats st0, st1;
    int64_t t_start;
    int moved_lines, ask_lines;
    const char *cli = h_env("REDIS_CLI", "redis-cli");

    h_begin("chaos_reshard: thousands of slots moved under load");
    memset(&all, 0, sizeof all);
    if (!chaos_cluster_ready()) return h_done();
    if (!CHECK(chaos_topology(&topo, 0) == 3, "the cluster has 3 masters")) return h_done();
    /* a: the master with the most slots, so that it cannot run dry. */
    i = chaos_richest_master(&topo);
    a = topo.master_port[i];
    b = topo.master_port[(i + 1) % 3];
    c = topo.master_port[(i + 2) % 3];

    /* Debug lines tell MOVED from ASK (the counter of retries does not). */
    snprintf(extra, sizeof extra, "op-timeout=%d log-level=debug", OP_TIMEOUT_MS);
    ors_redis_set_logger(chaos_logger, NULL);
    if (CHECK_STATUS(ors_redis_init(chaos_config(CLUSTER, extra)), ORS_OK, "init (%s)", extra) != ORS_OK)
        return h_done();

    for (i = 0; i < BG_THREADS; i++)
        if (pthread_create(&bg[i], NULL, background, (void *)(intptr_t)i) != 0) bg[i] = pthread_self();
    for (i = 0; i < BG_THREADS; i++) {
        void *r = NULL;
        if (pthread_equal(bg[i], pthread_self())) {
            bg_bad += BG_SESSIONS;
            continue;
        }
        pthread_join(bg[i], &r);
        bg_bad += r ? *(long *)r : BG_SESSIONS;
        free(r);
    }
    CHECK(bg_bad == 0, "%d background sessions written (%ld failed)", BG_SESSIONS, bg_bad);

    /* The slot migrated by hand: the first of a's slots. */
    for (ask_slot = 0; ask_slot < CHAOS_SLOTS && topo.owner[ask_slot] != a; ask_slot++) {
    }
    for (i = 0; i < THREADS; i++) {
        struct worker *w = &workers[i];
        memset(w, 0, sizeof *w);
        w->t = i;
        for (k = 0; k < IDS + ASK_IDS; k++) {
            int n;
            for (n = 0; n < 10000000; n++) {
                snprintf(w->ids[k], sizeof w->ids[k], "%ld-rs-%d-%d-%d", (long)getpid(), i, k, n);
                if (k < IDS || chaos_slot(w->ids[k]) == ask_slot) break;
            }
            w->tag[k] = chaos_tag(w->ids[k]);
        }
    }

    st0 = chaos_stats();
    t_start = h_now_ms();
    run_end_ms = h_now_ms() + RUN_LIMIT_MS;
    for (i = 0; i < THREADS; i++) started[i] = pthread_create(&th[i], NULL, work, &workers[i]) == 0;
    h_sleep_ms(500);

    /* 1. One slot by hand, its migration held open: ASK. */
    rc = migrate_slot_held(&topo, ask_slot, a, b, 1000, &ask_keys);
    CHECK(rc, "slot %d migrated by hand from %d to %d (%ld keys), held in MIGRATING/IMPORTING for 1 s under load",
          ask_slot, a, b, ask_keys);
    slots_moved += 1;
    CHECK(chaos_wait_agreement(a), "all nodes agree on the slot map");

    /* 2. redis-cli --cluster reshard, twice. */
    rc = chaos_run_capture(out, sizeof out,
                           "timeout 120 %s --cluster reshard 127.0.0.1:%d --cluster-from %s --cluster-to %s "
                           "--cluster-slots %d --cluster-yes 2>&1",
                           cli, a, topo.master_id[chaos_master_index(&topo, a)],
                           topo.master_id[chaos_master_index(&topo, c)], RESHARD_SLOTS);
    if (!CHECK(rc == 0 && chaos_count(out, "\nMoving slot ") == RESHARD_SLOTS,
               "redis-cli --cluster reshard moved %ld slots from %d to %d", chaos_count(out, "\nMoving slot "), a, c))
        chaos_note_tail(out, 10);
    slots_moved += chaos_count(out, "\nMoving slot ");
    CHECK(chaos_wait_agreement(a), "all nodes agree on the slot map");
    rc = chaos_run_capture(out, sizeof out,
                           "timeout 120 %s --cluster reshard 127.0.0.1:%d --cluster-from %s --cluster-to %s "
                           "--cluster-slots %d --cluster-yes 2>&1",
                           cli, a, topo.master_id[chaos_master_index(&topo, b)],
                           topo.master_id[chaos_master_index(&topo, a)], RESHARD_SLOTS);
    if (!CHECK(rc == 0 && chaos_count(out, "\nMoving slot ") == RESHARD_SLOTS,
               "redis-cli --cluster reshard moved %ld slots from %d to %d", chaos_count(out, "\nMoving slot "), b, a))
        chaos_note_tail(out, 10);
    slots_moved += chaos_count(out, "\nMoving slot ");
    CHECK(chaos_wait_agreement(a), "all nodes agree on the slot map");

    /* 3. Rebalance back. */
    rebalanced = chaos_rebalance(a);
    CHECK(rebalanced > 0, "redis-cli --cluster rebalance moved %ld slots back, all nodes agree", rebalanced);
    if (rebalanced > 0) slots_moved += rebalanced;
    h_sleep_ms(500);

    chaos_store(&stop_flag, 1);
    for (i = 0; i < THREADS; i++)
        if (started[i]) pthread_join(th[i], NULL);
    st1 = chaos_stats();
    chaos_log_counts(NULL, &moved_lines, &ask_lines);
    moved_ask = moved_lines > 0 && ask_lines > 0;

    for (i = 0; i < THREADS; i++) {
        struct worker *w = &workers[i];
        calls += w->calls;
        failed += w->failed;
        wrong += w->wrong;
        chaos_lat_merge(&all, &w->lat);
        if (w->failed || w->wrong) h_note("thread %d: first problem: %s", i, w->first_failure);
    }
    CHECK(calls > 0 && failed == 0, "no call failed while %ld slots moved (%ld calls)", slots_moved, calls);
    CHECK(wrong == 0, "no get returned a wrong value (%ld)", wrong);
    CHECK(moved_ask, "the library followed MOVED (%d) and ASK (%d) redirections", moved_lines, ask_lines);
    bg_lost = verify_background();
    CHECK(bg_lost == 0, "all %d background sessions read back exactly after the migrations (%ld wrong or missing)",
          BG_SESSIONS, bg_lost);
    h_note("FIGURE reshard: %ld slots moved (1 by hand held open 1 s, 2 x %d by reshard, %ld by rebalance) with %d "
           "background sessions, in %.1f s; %d threads, %ld calls, %ld failed, %ld wrong values; MOVED followed %d, "
           "ASK followed %d; retries %" PRIu64 ", slot-map reloads %" PRIu64 "; longest call %.1f ms, p99 %.2f ms",
           slots_moved, RESHARD_SLOTS, rebalanced, BG_SESSIONS, (h_now_ms() - t_start) / 1000.0, THREADS, calls,
           failed, wrong, moved_lines, ask_lines, st1.retries - st0.retries,
           st1.topology_refreshes - st0.topology_refreshes, all.max_us / 1000.0, chaos_lat_ms(&all, 0.99));
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    for (i = 0; i < THREADS; i++) chaos_lat_free(&workers[i].lat);
    chaos_lat_free(&all);
    return h_done();
}
