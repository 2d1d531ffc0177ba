/*
 * header_cxx11.cpp - include/ors_redis.h compiles as C++11 under -Wall
 * -Wextra -Wpedantic -Werror, with C linkage, and exposes the names, values
 * and signatures of the C contract (shared/API.md). A mismatch is a build
 * error; the program itself only links and prints the version.
 */
#include "ors_redis.h"
#include "ors_redis.h" // the include guard works

#include <cstdio>
#include <type_traits>

static_assert(ORS_OK == 0, "ORS_OK");
static_assert(ORS_NOT_FOUND == 1, "ORS_NOT_FOUND");
static_assert(ORS_ERR_INVALID_ARGUMENT == -1, "ORS_ERR_INVALID_ARGUMENT");
static_assert(ORS_ERR_CONFIG == -2, "ORS_ERR_CONFIG");
static_assert(ORS_ERR_NOT_INITIALIZED == -3, "ORS_ERR_NOT_INITIALIZED");
static_assert(ORS_ERR_ALREADY_INITIALIZED == -4, "ORS_ERR_ALREADY_INITIALIZED");
static_assert(ORS_ERR_CONNECTION == -5, "ORS_ERR_CONNECTION");
static_assert(ORS_ERR_TIMEOUT == -6, "ORS_ERR_TIMEOUT");
static_assert(ORS_ERR_AUTH == -7, "ORS_ERR_AUTH");
static_assert(ORS_ERR_TLS == -8, "ORS_ERR_TLS");
static_assert(ORS_ERR_CLUSTER == -9, "ORS_ERR_CLUSTER");
static_assert(ORS_ERR_TOO_LARGE == -10, "ORS_ERR_TOO_LARGE");
static_assert(ORS_ERR_NOT_DURABLE == -11, "ORS_ERR_NOT_DURABLE");
static_assert(ORS_ERR_SERVER == -12, "ORS_ERR_SERVER");
static_assert(ORS_ERR_UNAVAILABLE == -13, "ORS_ERR_UNAVAILABLE");
static_assert(ORS_NODE_WELL == 0 && ORS_NODE_UNAVAILABLE == 1, "ors_node_stats states");
static_assert(ORS_ERR_INTERNAL == -99, "ORS_ERR_INTERNAL");
static_assert(ORS_LOG_ERROR == 1 && ORS_LOG_WARN == 2 && ORS_LOG_INFO == 3 && ORS_LOG_DEBUG == 4 &&
                  ORS_LOG_TRACE == 5,
              "ORS_LOG_*");

// Exact signatures, C linkage included only as far as C++ can see it: the
// program links against the Rust library, so unmangled symbols are checked too.
static_assert(std::is_same<decltype(&ors_redis_init), int32_t (*)(const char *)>::value, "ors_redis_init");
static_assert(std::is_same<decltype(&ors_redis_shutdown), int32_t (*)()>::value, "ors_redis_shutdown");
static_assert(std::is_same<decltype(&ors_redis_reconfigure), int32_t (*)(const char *)>::value,
              "ors_redis_reconfigure");
static_assert(std::is_same<decltype(&ors_session_put),
                           int32_t (*)(const char *, const uint8_t *, size_t, uint32_t)>::value,
              "ors_session_put");
static_assert(std::is_same<decltype(&ors_session_get), int32_t (*)(const char *, uint8_t **, size_t *)>::value,
              "ors_session_get");
static_assert(std::is_same<decltype(&ors_session_del), int32_t (*)(const char *)>::value, "ors_session_del");
static_assert(std::is_same<decltype(&ors_free), void (*)(uint8_t *)>::value, "ors_free");
static_assert(std::is_same<decltype(&ors_last_error), const char *(*)()>::value, "ors_last_error");
static_assert(std::is_same<decltype(&ors_status_name), const char *(*)(int32_t)>::value, "ors_status_name");
static_assert(std::is_same<decltype(&ors_redis_version), const char *(*)()>::value, "ors_redis_version");
static_assert(std::is_same<ors_scan_fn, int32_t (*)(const char *, void *)>::value, "ors_scan_fn");
static_assert(std::is_same<decltype(&ors_session_scan), int32_t (*)(const char *, ors_scan_fn, void *)>::value,
              "ors_session_scan");
static_assert(std::is_same<ors_restore_fn, int32_t (*)(const char *, const uint8_t *, size_t, void *)>::value,
              "ors_restore_fn");
static_assert(std::is_same<decltype(&ors_session_restore), int32_t (*)(const char *, ors_restore_fn, void *)>::value,
              "ors_session_restore");
static_assert(std::is_same<ors_log_fn, void (*)(int32_t, const char *, void *)>::value, "ors_log_fn");
static_assert(std::is_same<decltype(&ors_redis_set_logger), int32_t (*)(ors_log_fn, void *)>::value,
              "ors_redis_set_logger");
static_assert(std::is_same<decltype(&ors_redis_get_stats), int32_t (*)(ors_redis_stats *)>::value,
              "ors_redis_get_stats");

static_assert(std::is_standard_layout<ors_redis_stats>::value, "ors_redis_stats is a plain C struct");
static_assert(sizeof(ors_redis_stats) == 15 * sizeof(uint64_t), "ors_redis_stats has 15 counters");
static_assert(std::is_same<decltype(&ors_redis_get_node_stats), int32_t (*)(ors_node_stats *, size_t, size_t *)>::value,
              "ors_redis_get_node_stats");
static_assert(std::is_standard_layout<ors_node_stats>::value, "ors_node_stats is a plain C struct");
static_assert(sizeof(ors_node_stats::node) == 264 && std::is_same<decltype(ors_node_stats::state), int32_t>::value &&
                  std::is_same<decltype(ors_node_stats::latency_p999_us), uint64_t>::value,
              "ors_node_stats fields");
static_assert(std::is_same<decltype(ors_redis_stats::puts), uint64_t>::value &&
                  std::is_same<decltype(ors_redis_stats::gets), uint64_t>::value &&
                  std::is_same<decltype(ors_redis_stats::dels), uint64_t>::value &&
                  std::is_same<decltype(ors_redis_stats::hits), uint64_t>::value &&
                  std::is_same<decltype(ors_redis_stats::misses), uint64_t>::value &&
                  std::is_same<decltype(ors_redis_stats::errors), uint64_t>::value &&
                  std::is_same<decltype(ors_redis_stats::retries), uint64_t>::value &&
                  std::is_same<decltype(ors_redis_stats::topology_refreshes), uint64_t>::value &&
                  std::is_same<decltype(ors_redis_stats::connections_open), uint64_t>::value &&
                  std::is_same<decltype(ors_redis_stats::threads_connected), uint64_t>::value &&
                  std::is_same<decltype(ors_redis_stats::restored), uint64_t>::value &&
                  std::is_same<decltype(ors_redis_stats::restore_pages), uint64_t>::value &&
                  std::is_same<decltype(ors_redis_stats::restore_retries), uint64_t>::value &&
                  std::is_same<decltype(ors_redis_stats::fast_failures), uint64_t>::value &&
                  std::is_same<decltype(ors_redis_stats::node_trips), uint64_t>::value,
              "ors_redis_stats fields");

int main()
{
    // Take every address at run time too, so that each symbol must link.
    void (*volatile keep[])() = {
        reinterpret_cast<void (*)()>(&ors_redis_init),       reinterpret_cast<void (*)()>(&ors_redis_shutdown),
        reinterpret_cast<void (*)()>(&ors_session_put),      reinterpret_cast<void (*)()>(&ors_session_get),
        reinterpret_cast<void (*)()>(&ors_session_del),      reinterpret_cast<void (*)()>(&ors_free),
        reinterpret_cast<void (*)()>(&ors_session_restore),  reinterpret_cast<void (*)()>(&ors_redis_reconfigure),
        reinterpret_cast<void (*)()>(&ors_last_error),       reinterpret_cast<void (*)()>(&ors_status_name),
        reinterpret_cast<void (*)()>(&ors_redis_version),    reinterpret_cast<void (*)()>(&ors_session_scan),
        reinterpret_cast<void (*)()>(&ors_redis_set_logger), reinterpret_cast<void (*)()>(&ors_redis_get_stats),
        reinterpret_cast<void (*)()>(&ors_redis_get_node_stats),
    };
    for (auto fn : keep) {
        if (fn == nullptr) return 1;
    }
    std::printf("header_cxx11: ors_redis.h %s compiles as C++11, %s = %d\n", ors_redis_version(),
                ors_status_name(ORS_NOT_FOUND), ORS_NOT_FOUND);
    return 0;
}
