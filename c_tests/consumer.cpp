// consumer.cpp - a small C++ program that uses ors-redis the way an integrator
// would: find_package(ors_redis) + target_link_libraries(ors_redis::ors_redis).
// It stores one session held in a std::string (with a NUL byte inside), reads
// it back, deletes it and shuts down. Exit code 0 means it all worked.
//
// Environment: ORS_TEST_NODES (default 127.0.0.1:7000;127.0.0.1:7001;127.0.0.1:7002).
#include "ors_redis.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace {

int failures = 0;

void expect(int32_t got, int32_t want, const std::string &what)
{
    if (got == want) return;
    ++failures;
    std::fprintf(stderr, "cpp_consumer: %s: got %s (%d), want %s: %s\n", what.c_str(), ors_status_name(got),
                 static_cast<int>(got), ors_status_name(want), ors_last_error());
}

// Takes ownership of a buffer from ors_session_get.
std::string take(uint8_t *data, size_t len)
{
    std::string out(reinterpret_cast<const char *>(data), len);
    ors_free(data);
    return out;
}

} // namespace

int main()
{
    const char *nodes = std::getenv("ORS_TEST_NODES");
    if (nodes == nullptr || *nodes == '\0') nodes = "127.0.0.1:7000;127.0.0.1:7001;127.0.0.1:7002";
    const std::string config = std::string("redis-nodes=") + nodes + " cluster-name=cpp_consumer";
    int32_t st = ors_redis_init(config.c_str());
    if (st != ORS_OK) {
        std::fprintf(stderr, "cpp_consumer: ors_redis_init: %s: %s\n", ors_status_name(st), ors_last_error());
        return 1;
    }

    const std::string id = "cpp-consumer-" + std::to_string(static_cast<long>(getpid()));
    std::string value = "ORS session state";
    value.push_back('\0'); // binary-safe: a NUL and a high byte inside
    value.push_back('\xff');
    value += "after a NUL";

    expect(ors_session_put(id.c_str(), reinterpret_cast<const uint8_t *>(value.data()), value.size(), 60), ORS_OK,
           "put");

    uint8_t *data = nullptr;
    size_t len = 0;
    st = ors_session_get(id.c_str(), &data, &len);
    expect(st, ORS_OK, "get");
    if (st == ORS_OK) {
        const std::string back = take(data, len);
        if (back != value) {
            ++failures;
            std::fprintf(stderr, "cpp_consumer: get returned %zu bytes that differ from the %zu stored\n",
                         back.size(), value.size());
        }
    }

    expect(ors_session_del(id.c_str()), ORS_OK, "del");
    data = nullptr;
    len = 1;
    expect(ors_session_get(id.c_str(), &data, &len), ORS_NOT_FOUND, "get after del");
    if (data != nullptr || len != 0) {
        ++failures;
        std::fprintf(stderr, "cpp_consumer: get after del left data=%p len=%zu\n", static_cast<void *>(data), len);
        ors_free(data);
    }
    expect(ors_session_del(id.c_str()), ORS_NOT_FOUND, "del again");
    expect(ors_redis_shutdown(), ORS_OK, "shutdown");

    if (failures != 0) {
        std::printf("cpp_consumer: %d check(s) failed\n", failures);
        return 1;
    }
    std::printf("cpp_consumer: ors-redis %s from C++: put, get (%zu bytes verified), del, shutdown ok\n",
                ors_redis_version(), value.size());
    return 0;
}
