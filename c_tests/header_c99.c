/*
 * header_c99.c - include/ors_redis.h compiles as C99 under -Wall -Wextra
 * -Wpedantic -Werror (plus -Wstrict-prototypes) and exposes the names, values
 * and signatures of the C contract (shared/API.md). A mismatch is a build
 * error; the program itself only links and prints the version.
 */
#include "ors_redis.h"
#include "ors_redis.h" /* the include guard works */

#include <stdio.h>
#include <string.h>

/* C99 has no static_assert: a negative array size fails the build. */
#define EXPECT(name, cond) typedef char expect_##name[(cond) ? 1 : -1]

EXPECT(ok, ORS_OK == 0);
EXPECT(not_found, ORS_NOT_FOUND == 1);
EXPECT(invalid_argument, ORS_ERR_INVALID_ARGUMENT == -1);
EXPECT(config, ORS_ERR_CONFIG == -2);
EXPECT(not_initialized, ORS_ERR_NOT_INITIALIZED == -3);
EXPECT(already_initialized, ORS_ERR_ALREADY_INITIALIZED == -4);
EXPECT(connection, ORS_ERR_CONNECTION == -5);
EXPECT(timeout, ORS_ERR_TIMEOUT == -6);
EXPECT(auth, ORS_ERR_AUTH == -7);
EXPECT(tls, ORS_ERR_TLS == -8);
EXPECT(cluster, ORS_ERR_CLUSTER == -9);
EXPECT(too_large, ORS_ERR_TOO_LARGE == -10);
EXPECT(not_durable, ORS_ERR_NOT_DURABLE == -11);
EXPECT(server, ORS_ERR_SERVER == -12);
EXPECT(unavailable, ORS_ERR_UNAVAILABLE == -13);
EXPECT(node_well, ORS_NODE_WELL == 0);
EXPECT(node_unavailable, ORS_NODE_UNAVAILABLE == 1);
EXPECT(internal, ORS_ERR_INTERNAL == -99);
EXPECT(log_error, ORS_LOG_ERROR == 1);
EXPECT(log_warn, ORS_LOG_WARN == 2);
EXPECT(log_info, ORS_LOG_INFO == 3);
EXPECT(log_debug, ORS_LOG_DEBUG == 4);
EXPECT(log_trace, ORS_LOG_TRACE == 5);
EXPECT(stats_size, sizeof(ors_redis_stats) == 15 * sizeof(uint64_t));
EXPECT(node_stats_size, sizeof(ors_node_stats) == 264 + 2 * sizeof(int32_t) + 11 * sizeof(uint64_t));

/* Initialising these pointers checks every signature exactly
 * (-Werror turns incompatible pointer types into errors). */
static int32_t (*const p_init)(const char *) = ors_redis_init;
static int32_t (*const p_shutdown)(void) = ors_redis_shutdown;
static int32_t (*const p_put)(const char *, const uint8_t *, size_t, uint32_t) = ors_session_put;
static int32_t (*const p_get)(const char *, uint8_t **, size_t *) = ors_session_get;
static int32_t (*const p_del)(const char *) = ors_session_del;
static void (*const p_free)(uint8_t *) = ors_free;
static const char *(*const p_last_error)(void) = ors_last_error;
static const char *(*const p_status_name)(int32_t) = ors_status_name;
static const char *(*const p_version)(void) = ors_redis_version;
static int32_t (*const p_scan)(const char *, ors_scan_fn, void *) = ors_session_scan;
static int32_t (*const p_set_logger)(ors_log_fn, void *) = ors_redis_set_logger;
static int32_t (*const p_get_stats)(ors_redis_stats *) = ors_redis_get_stats;
static int32_t (*const p_restore)(const char *, ors_restore_fn, void *) = ors_session_restore;
static int32_t (*const p_reconfigure)(const char *) = ors_redis_reconfigure;
static int32_t (*const p_get_node_stats)(ors_node_stats *, size_t, size_t *) = ors_redis_get_node_stats;

static int32_t on_session(const char *session_id, void *user_data)
{
    (void)session_id;
    (void)user_data;
    return 0;
}

static int32_t on_restored(const char *session_id, const uint8_t *data, size_t len, void *user_data)
{
    (void)session_id;
    (void)data;
    (void)len;
    (void)user_data;
    return 0;
}

static void on_log(int32_t level, const char *message, void *user_data)
{
    (void)level;
    (void)message;
    (void)user_data;
}

/* Any function pointer converts to another function pointer type and back;
 * void (*)(void) is the generic one -Wcast-function-type accepts. */
typedef void (*any_fn)(void);

int main(void)
{
    ors_scan_fn scan_fn = on_session;
    ors_restore_fn restore_fn = on_restored;
    ors_log_fn log_fn = on_log;
    ors_redis_stats stats;
    ors_node_stats node;
    uint64_t *fields[15];
    uint64_t *node_fields[11];
    /* volatile: every export must really resolve at link time. */
    any_fn volatile keep[15];
    size_t i;

    keep[0] = (any_fn)p_init;
    keep[1] = (any_fn)p_shutdown;
    keep[2] = (any_fn)p_put;
    keep[3] = (any_fn)p_get;
    keep[4] = (any_fn)p_del;
    keep[5] = (any_fn)p_free;
    keep[6] = (any_fn)p_last_error;
    keep[7] = (any_fn)p_status_name;
    keep[8] = (any_fn)p_version;
    keep[9] = (any_fn)p_scan;
    keep[10] = (any_fn)p_set_logger;
    keep[11] = (any_fn)p_get_stats;
    keep[12] = (any_fn)p_restore;
    keep[13] = (any_fn)p_reconfigure;
    keep[14] = (any_fn)p_get_node_stats;
    for (i = 0; i < 15; i++) {
        if (keep[i] == NULL) return 1;
    }

    memset(&stats, 0, sizeof stats);
    fields[0] = &stats.puts;
    fields[1] = &stats.gets;
    fields[2] = &stats.dels;
    fields[3] = &stats.hits;
    fields[4] = &stats.misses;
    fields[5] = &stats.errors;
    fields[6] = &stats.retries;
    fields[7] = &stats.topology_refreshes;
    fields[8] = &stats.connections_open;
    fields[9] = &stats.threads_connected;
    fields[10] = &stats.restored;
    fields[11] = &stats.restore_pages;
    fields[12] = &stats.restore_retries;
    fields[13] = &stats.fast_failures;
    fields[14] = &stats.node_trips;
    for (i = 0; i < 15; i++) {
        if (*fields[i] != 0) return 1;
    }
    memset(&node, 0, sizeof node);
    node_fields[0] = &node.unavailable_since_ms;
    node_fields[1] = &node.requests;
    node_fields[2] = &node.errors;
    node_fields[3] = &node.fast_failures;
    node_fields[4] = &node.trips;
    node_fields[5] = &node.probes;
    node_fields[6] = &node.window_ms;
    node_fields[7] = &node.window_requests;
    node_fields[8] = &node.latency_p50_us;
    node_fields[9] = &node.latency_p99_us;
    node_fields[10] = &node.latency_p999_us;
    for (i = 0; i < 11; i++) {
        if (*node_fields[i] != 0) return 1;
    }
    if (node.node[0] != 0 || node.state != ORS_NODE_WELL || node.is_master != 0 || sizeof node.node != 264) return 1;
    if (scan_fn == NULL || log_fn == NULL || restore_fn == NULL) return 1;

    printf("header_c99: ors_redis.h %s compiles as C99, %s = %d\n", ors_redis_version(),
           ors_status_name(ORS_NOT_FOUND), ORS_NOT_FOUND);
    return 0;
}
