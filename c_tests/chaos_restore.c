/*
 * chaos_restore.c - ors_session_restore while the cluster changes under it,
 * as at a real takeover: every session reported exactly once with its
 * value, or the restore fails; never a session twice, never one missing.
 *
 * 1. A master is killed (SIGKILL) a fifth of the way through a restore, and
 *    its replica is promoted while the restore waits.
 * 2. A slot is held half-migrated (MIGRATING/IMPORTING, half of its keys on
 *    each node) when a restore starts, and the migration is finished during
 *    it.
 * 3. `redis-cli --cluster reshard` moves slots while a restore runs.
 *
 * The callback is paced so that each restore lasts seconds, long enough for
 * the cluster to change during it.
 */
#include "chaos.h"

#define CLUSTER "chaos_restore"
#define N 30000
#define HELD_N 24
#define TOTAL (N + HELD_N)
#define OP_TIMEOUT_MS 10000
#define RESHARD_SLOTS 1500

static char ids[TOTAL][64];
static int held_slot = -1;

struct tally {
    int calls;    /* atomic: read by the helper threads */
    int pace_us;
    int reported[TOTAL];
    int twice, wrong, unknown;
};
static struct tally tally;

/* Which session an id is, or -1. */
static int index_of(const char *id)
{
    const char *dash = strrchr(id, '-');
    int i;
    if (!dash) return -1;
    i = atoi(dash + 1);
    if (strncmp(id + (dash - id) - 2, "cr", 2) == 0 && i >= 0 && i < N && strcmp(ids[i], id) == 0) return i;
    for (i = N; i < TOTAL; i++)
        if (strcmp(ids[i], id) == 0) return i;
    return -1;
}

static int32_t restore_cb(const char *id, const uint8_t *data, size_t len, void *user_data)
{
    int i = index_of(id);
    uint32_t seq = 0;
    (void)user_data;
    if (i < 0) {
        tally.unknown++;
    } else {
        if (tally.reported[i]++) tally.twice++;
        if (!chaos_value_ok(data, len, chaos_tag(id), &seq) || seq != 1) tally.wrong++;
    }
    chaos_store(&tally.calls, chaos_load(&tally.calls) + 1);
    if (tally.pace_us) usleep((useconds_t)tally.pace_us);
    return 0;
}

/* Restores the sessions whose id starts with "<pid>-<kind>" (ids[0..count)
 * have it); checks each once with its value. */
static int32_t restore_all(const char *what, const char *kind, int count, int pace_us)
{
    int32_t st;
    int i, missing = 0;
    char prefix[32];
    memset(&tally, 0, sizeof tally);
    tally.pace_us = pace_us;
    snprintf(prefix, sizeof prefix, "%ld-%s", (long)getpid(), kind);
    st = ors_session_restore(prefix, restore_cb, NULL);
    for (i = 0; i < count; i++)
        if (!tally.reported[i]) missing++;
    CHECK(st == ORS_OK, "%s: restore -> %s (%s)", what, h_code_name(st), st ? ors_last_error() : "");
    CHECK(missing == 0 && tally.twice == 0 && tally.unknown == 0,
          "%s: each of the %d sessions reported exactly once (%d missing, %d twice, %d unknown)", what, count, missing,
          tally.twice, tally.unknown);
    CHECK(tally.wrong == 0, "%s: every value exact (%d wrong)", what, tally.wrong);
    return st;
}

/* ---- 1. A master killed during the restore ------------------------- */

static int victim_port;
static int calls_at_kill;

static void *killer(void *arg)
{
    int64_t end = h_now_ms() + 60000, at = 0;
    (void)arg;
    while (chaos_load(&tally.calls) < N / 5 && h_now_ms() < end) h_sleep_ms(2);
    calls_at_kill = chaos_load(&tally.calls);
    chaos_signal_node(victim_port, SIGKILL, &at);
    return NULL;
}

static void failover_during_restore(void)
{
    static struct chaos_topo topo;
    pthread_t th;
    ors_redis_stats s0, s1;
    int new_master, k;
    if (!CHECK(chaos_topology(&topo, 0) == 3, "the cluster has 3 masters")) return;
    victim_port = topo.master_port[0];
    s0 = chaos_stats();
    if (pthread_create(&th, NULL, killer, NULL) != 0) {
        CHECK(0, "killer thread started");
        return;
    }
    restore_all("failover", "cr-", N, 100);
    pthread_join(th, NULL);
    s1 = chaos_stats();
    CHECK(calls_at_kill >= N / 5 && calls_at_kill < N,
          "master %d was killed during the restore (after %d of %d sessions)", victim_port, calls_at_kill, N);
    CHECK(s1.restore_retries > s0.restore_retries, "the restore read the killed master's slots again (%" PRIu64
          " batches)", s1.restore_retries - s0.restore_retries);
    h_note("FIGURE restore under failover: %d sessions, master %d killed after %d; %" PRIu64
           " batches read again, %" PRIu64 " slot listings, %" PRIu64 " slot-map reloads",
           N, victim_port, calls_at_kill, s1.restore_retries - s0.restore_retries,
           s1.restore_pages - s0.restore_pages, s1.topology_refreshes - s0.topology_refreshes);
    for (k = 0; k < CHAOS_SLOTS && topo.owner[k] != victim_port; k++) {
    }
    new_master = chaos_wait_failover(victim_port, k, 30000);
    CHECK(new_master != 0, "a replica took over the killed master's slots (%d)", new_master);
    CHECK(chaos_ctl("node-start %d", victim_port) == 0, "node %d restarted from its data", victim_port);
    CHECK(chaos_ctl("wait-healthy 60") == 0, "cluster healthy again");
    CHECK(chaos_wait_agreement(new_master ? new_master : topo.master_port[1]), "all nodes agree on the slot map");
}

/* ---- 2. A held migration, then a reshard, during the restore -------- */

static struct chaos_topo topo2;
static int from_port, to_port, reshard_from, reshard_to;
static long reshard_moved;
static int held_finished;
static pthread_mutex_t migrated_lock = PTHREAD_MUTEX_INITIALIZER;
static int migrated_lines;

static void logger(int32_t level, const char *message, void *user_data)
{
    if (strstr(message, "slot being migrated")) {
        pthread_mutex_lock(&migrated_lock);
        migrated_lines++;
        pthread_mutex_unlock(&migrated_lock);
    }
    chaos_logger(level, message, user_data);
}

static const char *cli(void)
{
    static char buf[256];
    snprintf(buf, sizeof buf, "timeout 30 %s -h 127.0.0.1", h_env("REDIS_CLI", "redis-cli"));
    return buf;
}

/* Migrates keys of `slot` from from_port to to_port: every other one
 * (`every` 2) or all (-1); how many moved, -1 on an error. */
static int move_keys(int slot, int every)
{
    static char out[1 << 16];
    char cmd[1 << 15], q[512];
    char *line, *save = NULL;
    size_t n;
    int keys = 0, moved = 0;
    if (chaos_run_capture(out, sizeof out, "%s -p %d CLUSTER GETKEYSINSLOT %d 1000", cli(), from_port, slot) != 0)
        return -1;
    n = (size_t)snprintf(cmd, sizeof cmd, "%s -p %d MIGRATE 127.0.0.1 %d \"\" 0 5000 KEYS", cli(), from_port,
                         to_port);
    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!*line) continue;
        if (every > 0 && keys++ % every) continue;
        h_shell_quote(q, sizeof q, line);
        n += (size_t)snprintf(cmd + n, sizeof cmd - n, " %s", q);
        moved++;
    }
    if (moved > 0 && (chaos_run_capture(out, sizeof out, "%s", cmd) != 0 || !strstr(out, "OK"))) return -1;
    return moved;
}

/* Hashes under session keys of the held slot, on from_port: how many. */
#define FOREIGN_N 6
static int put_foreign_keys(void)
{
    static char out[4096];
    char id[64], key[160], q[200];
    int n, put = 0;
    for (n = 0; put < FOREIGN_N && n < 50000000; n++) {
        snprintf(id, sizeof id, "%ld-crx-%d", (long)getpid(), n);
        if (chaos_slot(id) != held_slot) continue;
        snprintf(key, sizeof key, "ORS:%s:{%s}", CLUSTER, id);
        h_shell_quote(q, sizeof q, key);
        if (chaos_run_capture(out, sizeof out, "%s -p %d HSET %s f v", cli(), from_port, q) != 0 ||
            chaos_run_capture(out, sizeof out, "%s -p %d EXPIRE %s 900", cli(), from_port, q) != 0)
            break;
        put++;
    }
    return put;
}

/* Moves half of the held slot's keys to to_port, its state left open. */
static int hold_migration(void)
{
    static char out[4096];
    const char *from_id = topo2.master_id[chaos_master_index(&topo2, from_port)];
    const char *to_id = topo2.master_id[chaos_master_index(&topo2, to_port)];
    int ok = 1, moved;
    ok &= chaos_run_capture(out, sizeof out, "%s -p %d CLUSTER SETSLOT %d IMPORTING %s", cli(), to_port, held_slot,
                            from_id) == 0 && strstr(out, "OK");
    ok &= chaos_run_capture(out, sizeof out, "%s -p %d CLUSTER SETSLOT %d MIGRATING %s", cli(), from_port, held_slot,
                            to_id) == 0 && strstr(out, "OK");
    moved = move_keys(held_slot, 2);
    ok &= moved >= HELD_N / 2;
    CHECK(ok, "slot %d held half-migrated from %d to %d (%d of its %d sessions moved)", held_slot, from_port, to_port,
          moved, HELD_N);
    return ok;
}

/* Finishes the held migration once a tenth of the sessions were reported. */
static void *finisher(void *arg)
{
    static char out[4096];
    int64_t end = h_now_ms() + 60000;
    int i, ok = 1;
    (void)arg;
    while (chaos_load(&tally.calls) < N / 10 && h_now_ms() < end) h_sleep_ms(2);
    /* The rest of the slot's keys, then the slot itself. */
    ok &= move_keys(held_slot, -1) >= 0;
    for (i = 0; i < topo2.n_masters; i++)
        ok &= chaos_run_capture(out, sizeof out, "%s -p %d CLUSTER SETSLOT %d NODE %s", cli(), topo2.master_port[i],
                                held_slot, topo2.master_id[chaos_master_index(&topo2, to_port)]) == 0 &&
              strstr(out, "OK") != NULL;
    chaos_store(&held_finished, ok ? 1 : -1);
    return NULL;
}

static void held_migration_during_restore(void)
{
    pthread_t th;
    int i, n;
    char id[64];
    if (!CHECK(chaos_topology(&topo2, 0) == 3, "the cluster has 3 masters")) return;
    i = chaos_richest_master(&topo2);
    from_port = topo2.master_port[i];
    to_port = topo2.master_port[(i + 1) % 3];
    /* The held slot: the first of from_port's, with HELD_N sessions. */
    for (held_slot = 0; held_slot < CHAOS_SLOTS && topo2.owner[held_slot] != from_port; held_slot++) {
    }
    for (i = N, n = 0; i < TOTAL && n < 50000000; n++) {
        snprintf(id, sizeof id, "%ld-crh-%d", (long)getpid(), n);
        if (chaos_slot(id) != held_slot) continue;
        snprintf(ids[i], sizeof ids[i], "%s", id);
        if (chaos_put(id, chaos_tag(id), 1, 900) != ORS_OK) break;
        i++;
    }
    if (!CHECK(i == TOTAL, "%d sessions put in slot %d", HELD_N, held_slot)) return;
    /* Keys under session names that are not strings (not written by ORS):
     * each is skipped with a warning, and the slot's sessions listed with
     * them, on either node, are all read. */
    if (!CHECK(put_foreign_keys() == FOREIGN_N, "%d hashes under session keys in slot %d", FOREIGN_N, held_slot))
        return;
    if (!hold_migration()) return;
    if (pthread_create(&th, NULL, finisher, NULL) != 0) {
        CHECK(0, "finisher thread started");
        return;
    }
    restore_all("held migration", "cr", TOTAL, 100);
    pthread_join(th, NULL);
    CHECK(migrated_lines > 0, "the held slot was read from both nodes (%d debug lines)", migrated_lines);
    CHECK(held_finished == 1, "the held migration was finished during the restore");
    CHECK(chaos_wait_agreement(from_port), "all nodes agree on the slot map");
}

/* ---- 3. A reshard under way during the restore --------------------- */

static int64_t reshard_started_ms, reshard_ended_ms;

static void *resharder(void *arg)
{
    static char out[1 << 20];
    (void)arg;
    chaos_store64(&reshard_started_ms, h_now_ms());
    if (chaos_run_capture(out, sizeof out,
                          "timeout 120 %s --cluster reshard 127.0.0.1:%d --cluster-from %s --cluster-to %s "
                          "--cluster-slots %d --cluster-yes 2>&1",
                          h_env("REDIS_CLI", "redis-cli"), reshard_from,
                          topo2.master_id[chaos_master_index(&topo2, reshard_from)],
                          topo2.master_id[chaos_master_index(&topo2, reshard_to)], RESHARD_SLOTS) == 0)
        reshard_moved = chaos_count(out, "\nMoving slot ");
    else
        chaos_note_tail(out, 10);
    chaos_store64(&reshard_ended_ms, h_now_ms());
    return NULL;
}

static void reshard_during_restore(void)
{
    pthread_t th;
    ors_redis_stats s0, s1;
    int64_t restore_started, restore_ended;
    int i;
    if (!CHECK(chaos_topology(&topo2, 0) == 3, "the cluster has 3 masters")) return;
    i = chaos_richest_master(&topo2);
    reshard_from = topo2.master_port[i];
    reshard_to = topo2.master_port[(i + 1) % 3];
    s0 = chaos_stats();
    if (pthread_create(&th, NULL, resharder, NULL) != 0) {
        CHECK(0, "resharder thread started");
        return;
    }
    /* Once slots are moving: the restore reads the source's slots in the
     * order the reshard moves them, and catches up with it. */
    h_sleep_ms(700);
    restore_started = h_now_ms();
    restore_all("reshard", "cr", TOTAL, 100);
    restore_ended = h_now_ms();
    pthread_join(th, NULL);
    s1 = chaos_stats();
    CHECK(reshard_moved == RESHARD_SLOTS, "redis-cli --cluster reshard moved %ld slots from %d to %d", reshard_moved,
          reshard_from, reshard_to);
    CHECK(chaos_load64(&reshard_started_ms) < restore_started && chaos_load64(&reshard_ended_ms) > restore_started,
          "the reshard was under way when the restore started (reshard %.1f s, restore %.1f s, %.1f s apart)",
          (reshard_ended_ms - reshard_started_ms) / 1000.0, (restore_ended - restore_started) / 1000.0,
          (restore_started - reshard_started_ms) / 1000.0);
    CHECK(chaos_wait_agreement(reshard_from), "all nodes agree on the slot map");
    h_note("FIGURE restore under resharding: %d sessions while %ld slots moved from %d to %d; %" PRIu64
           " batches read again, %" PRIu64 " slot-map reloads",
           TOTAL, reshard_moved, reshard_from, reshard_to, s1.restore_retries - s0.restore_retries,
           s1.topology_refreshes - s0.topology_refreshes);
    chaos_rebalance(reshard_from);
}

int main(void)
{
    static uint8_t buf[CHAOS_VALUE_MAX];
    char extra[128];
    int i, failed = 0;
    h_begin("chaos_restore: restores while a master fails over and slots migrate");
    if (!chaos_cluster_ready()) return h_done();
    snprintf(extra, sizeof extra, "op-timeout=%d log-level=debug", OP_TIMEOUT_MS);
    ors_redis_set_logger(logger, NULL);
    if (CHECK_STATUS(ors_redis_init(chaos_config(CLUSTER, extra)), ORS_OK, "init (%s)", extra) != ORS_OK)
        return h_done();
    for (i = 0; i < N; i++) {
        size_t len;
        snprintf(ids[i], sizeof ids[i], "%ld-cr-%d", (long)getpid(), i);
        len = chaos_value(buf, chaos_tag(ids[i]), 1);
        if (ors_session_put(ids[i], buf, len, 900) != ORS_OK) failed++;
    }
    /* Until part 2 puts them: placeholders no session has. */
    for (i = N; i < TOTAL; i++) snprintf(ids[i], sizeof ids[i], "-");
    CHECK(failed == 0, "%d sessions written (%d failed)", N, failed);

    failover_during_restore();
    held_migration_during_restore();
    reshard_during_restore();

    for (i = 0; i < TOTAL; i++)
        if (ids[i][0] != '-') ors_session_del(ids[i]);
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    return h_done();
}
