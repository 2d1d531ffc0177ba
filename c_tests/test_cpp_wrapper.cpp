// test_cpp_wrapper.cpp - include/ors_redis.hpp against the test cluster: the
// RAII owner of init/shutdown, the move-only buffer, put/get/del with
// std::string ids and std::vector<uint8_t> values, and the version macros.
// Built twice by CMake: as is, and with -fno-exceptions -fno-rtti (the way
// some legacy code bases build), both under -Wall -Wextra -Wpedantic -Werror.
// With exceptions, scan() must carry one thrown by its callback past the C
// library to its caller.
//
// Environment: ORS_TEST_NODES, ORS_TEST_AUTH (see harness.h).
#include "ors_redis.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <unistd.h>
#include <utility>
#include <vector>

// The wrapper's types behave as documented, checked at compile time.
static_assert(!std::is_copy_constructible<ors_redis::buffer>::value, "buffer is move-only");
static_assert(!std::is_copy_assignable<ors_redis::buffer>::value, "buffer is move-only");
static_assert(std::is_nothrow_move_constructible<ors_redis::buffer>::value, "buffer moves without throwing");
static_assert(std::is_nothrow_move_assignable<ors_redis::buffer>::value, "buffer moves without throwing");
static_assert(!std::is_copy_constructible<ors_redis::library>::value, "library is move-only");
static_assert(std::is_nothrow_move_constructible<ors_redis::library>::value, "library moves without throwing");
static_assert(!std::is_convertible<ors_redis::library, bool>::value, "library converts to bool only explicitly");
static_assert(std::is_same<ors_redis::status, int32_t>::value, "statuses are the C codes");

namespace {

int passed = 0;
int failed = 0;

void check(bool ok, const char *what)
{
    if (ok) {
        ++passed;
        std::printf("ok - %s\n", what);
    } else {
        ++failed;
        std::printf("FAIL - %s (last_error: %s)\n", what, ors_redis::last_error());
    }
}

void check_status(ors_redis::status got, ors_redis::status want, const char *what)
{
    if (got == want) {
        ++passed;
        std::printf("ok - %s -> %s\n", what, ors_redis::status_name(got));
    } else {
        ++failed;
        std::printf("FAIL - %s: got %s (%d), want %s: %s\n", what, ors_redis::status_name(got),
                    static_cast<int>(got), ors_redis::status_name(want), ors_redis::last_error());
    }
}

std::string config()
{
    const char *nodes = std::getenv("ORS_TEST_NODES");
    const char *auth = std::getenv("ORS_TEST_AUTH");
    std::string c = "redis-nodes=";
    c += (nodes != nullptr && *nodes != '\0') ? nodes : "127.0.0.1:7000;127.0.0.1:7001;127.0.0.1:7002";
    c += " cluster-name=cpp_wrapper";
    if (auth != nullptr && *auth != '\0') {
        c += ' ';
        c += auth;
    }
    return c;
}

std::string id(const char *suffix)
{
    return std::to_string(static_cast<long>(getpid())) + "-" + suffix;
}

void version_macros()
{
    char compiled[64];
    std::snprintf(compiled, sizeof compiled, "%d.%d.%d", ORS_REDIS_VERSION_MAJOR, ORS_REDIS_VERSION_MINOR,
                  ORS_REDIS_VERSION_PATCH);
    check(std::strcmp(compiled, ors_redis::version()) == 0,
          "ORS_REDIS_VERSION_* macros match ors_redis_version() of the loaded library");
}

void values()
{
    const std::string key = id("values");
    std::vector<uint8_t> value;
    for (int i = 0; i < 1000; ++i) value.push_back(static_cast<uint8_t>(i * 7)); // NULs and high bytes
    check_status(ors_redis::put(key, value, 60), ORS_OK, "put a 1000-byte binary vector");

    std::vector<uint8_t> back(3, 0xAA);
    check_status(ors_redis::get(key, back), ORS_OK, "get into a vector");
    check(back == value, "the vector holds exactly the bytes stored");

    ors_redis::buffer buf;
    check_status(ors_redis::get(key, buf), ORS_OK, "get into a buffer");
    check(buf.size() == value.size() && std::memcmp(buf.data(), value.data(), value.size()) == 0,
          "the buffer holds exactly the bytes stored");
    check(buf.to_vector() == value, "buffer::to_vector copies the bytes");

    ors_redis::buffer moved(std::move(buf));
    check(buf.data() == nullptr && buf.empty() && moved.size() == value.size(),
          "a moved buffer hands its bytes over and is left empty");
    ors_redis::buffer assigned;
    assigned = std::move(moved);
    check(moved.data() == nullptr && assigned.size() == value.size(), "move assignment hands the bytes over");
    // Reading again into a full buffer releases what it held (valgrind checks).
    check_status(ors_redis::get(key, assigned), ORS_OK, "get into a buffer that already holds a value");
    uint8_t *raw = assigned.release();
    check(raw != nullptr && assigned.empty(), "release gives up ownership");
    ors_free(raw);
    ors_redis::buffer adopted;
    uint8_t *data = nullptr;
    std::size_t len = 0;
    check_status(ors_session_get(key.c_str(), &data, &len), ORS_OK, "a C get");
    adopted = ors_redis::buffer::adopt(data, len);
    check(adopted.size() == value.size(), "buffer::adopt takes a C buffer over");

    const std::string text_key = id("text");
    const uint8_t text[] = {'a', 0, 'b'};
    check_status(ors_redis::put(text_key, text, sizeof text), ORS_OK, "put from a pointer and a length");
    check_status(ors_redis::get(text_key, buf), ORS_OK, "get it");
    check(buf.to_string() == std::string("a\0b", 3), "buffer::to_string keeps the NUL byte");

    const std::string empty_key = id("empty");
    check_status(ors_redis::put(empty_key, std::vector<uint8_t>()), ORS_OK, "put an empty vector (default-ttl)");
    check_status(ors_redis::get(empty_key, buf), ORS_OK, "get the empty value into a buffer");
    check(buf.empty() && buf.data() != nullptr, "an empty value is an empty buffer with a non-NULL pointer");

    check_status(ors_redis::del(key), ORS_OK, "del");
    check_status(ors_redis::del(key), ORS_NOT_FOUND, "del again");
    back.assign(5, 1);
    check_status(ors_redis::get(key, back), ORS_NOT_FOUND, "get after del, into a vector");
    check(back.empty(), "a vector is cleared when there is no value");
    check_status(ors_redis::get(key, buf), ORS_NOT_FOUND, "get after del, into a buffer");
    check(buf.empty() && buf.data() == nullptr, "a buffer is emptied when there is no value");
    check_status(ors_redis::del(text_key), ORS_OK, "del the text session");
    check_status(ors_redis::del(empty_key), ORS_OK, "del the empty session");
}

void bad_ids()
{
    const std::string with_nul("abc\0def", 7);
    check_status(ors_redis::put(with_nul, std::vector<uint8_t>(1, 1)), ORS_ERR_INVALID_ARGUMENT,
                 "put with a NUL byte inside the id is refused, not truncated");
    std::vector<uint8_t> v;
    check_status(ors_redis::get(with_nul, v), ORS_ERR_INVALID_ARGUMENT, "get with a NUL byte inside the id");
    check_status(ors_redis::del(with_nul), ORS_ERR_INVALID_ARGUMENT, "del with a NUL byte inside the id");
    check_status(ors_redis::put("{tag}", v), ORS_ERR_INVALID_ARGUMENT, "put with braces in the id");
    check(std::strlen(ors_redis::last_error()) > 0, "last_error says why");
    check_status(ors_redis::del(""), ORS_ERR_INVALID_ARGUMENT, "del with an empty id");
}

void scanning()
{
    const std::string prefix = id("scan-");
    for (int i = 0; i < 5; ++i) {
        check_status(ors_redis::put(prefix + std::to_string(i), std::vector<uint8_t>(1, 1), 60), ORS_OK,
                     "put a session to scan for");
    }
    std::vector<std::string> seen;
    check_status(ors_redis::scan(prefix,
                                 [&seen](const std::string &session_id) -> bool {
                                     seen.push_back(session_id);
                                     return true;
                                 }),
                 ORS_OK, "scan with a lambda");
    bool all_prefixed = true;
    for (const std::string &s : seen) all_prefixed = all_prefixed && s.compare(0, prefix.size(), prefix) == 0;
    check(seen.size() == 5 && all_prefixed, "scan reports each of the 5 sessions under the prefix once");

    std::vector<std::string> restored;
    bool values_ok = true;
    check_status(ors_redis::restore(prefix,
                                    [&](const std::string &session_id, const uint8_t *data, size_t len) -> bool {
                                        restored.push_back(session_id);
                                        values_ok = values_ok && len == 1 && data[0] == 1;
                                        return true;
                                    }),
                 ORS_OK, "restore with a lambda");
    check(restored.size() == 5 && values_ok, "restore reports each of the 5 sessions with its value once");
    check_status(ors_redis::restore(std::string("a\0b", 3),
                                    [](const std::string &, const uint8_t *, size_t) -> bool { return true; }),
                 ORS_ERR_INVALID_ARGUMENT, "restore with a NUL byte inside the prefix");

    int calls = 0;
    check_status(ors_redis::scan(prefix,
                                 [&calls](const std::string &) -> bool {
                                     ++calls;
                                     return false;
                                 }),
                 ORS_OK, "scan stopped by the callback");
    check(calls == 1, "returning false stops after the first id");
    check_status(ors_redis::scan(std::string("a\0b", 3), [](const std::string &) -> bool { return true; }),
                 ORS_ERR_INVALID_ARGUMENT, "scan with a NUL byte inside the prefix");

#ifdef ORS_REDIS_HPP_EXCEPTIONS
    bool caught = false;
    try {
        ors_redis::scan(prefix, [](const std::string &) -> bool { throw std::runtime_error("from the callback"); });
    } catch (const std::runtime_error &e) {
        caught = std::strcmp(e.what(), "from the callback") == 0;
    }
    check(caught, "an exception thrown by the callback reaches the caller of scan, past the C library");
    check_status(ors_redis::del(id("after-throw")), ORS_NOT_FOUND, "the library works on after it");
#else
    std::printf("# built without exceptions: ORS_REDIS_HPP_EXCEPTIONS is not defined\n");
#endif
    for (int i = 0; i < 5; ++i) {
        check_status(ors_redis::del(prefix + std::to_string(i)), ORS_OK, "del a scanned session");
    }
}

} // namespace

int main()
{
    setvbuf(stdout, nullptr, _IOLBF, 0);
    std::printf("# test_cpp_wrapper (ors-redis %s)\n", ors_redis::version());
    version_macros();

    check_status(ors_redis::del(id("before")), ORS_ERR_NOT_INITIALIZED, "del before init");
    {
        ors_redis::library bad("redis-nodes=127.0.0.1:7000 no-such-key=1");
        check_status(bad.status(), ORS_ERR_CONFIG, "library with a bad config");
        check(!bad && !bad.ok(), "it is not ok, and converts to false");
    }
    {
        ors_redis::library lib(config());
        check_status(lib.status(), ORS_OK, "library(config) initialises");
        check(static_cast<bool>(lib), "it converts to true");
        {
            ors_redis::library second(config());
            check_status(second.status(), ORS_ERR_ALREADY_INITIALIZED, "a second library while one is alive");
        }
        check_status(ors_redis::del(id("after-second")), ORS_NOT_FOUND,
                     "the second one's end did not shut the first down");
        values();
        bad_ids();
        scanning();
        ors_redis_stats stats;
        check_status(ors_redis::get_stats(stats), ORS_OK, "get_stats");
        {
            std::vector<ors_node_stats> nodes;
            check_status(ors_redis::get_node_stats(nodes), ORS_OK, "get_node_stats");
            int masters = 0;
            for (const ors_node_stats &n : nodes) masters += n.is_master && n.state == ORS_NODE_WELL;
            check(masters >= 3, "get_node_stats: every master is listed and well");
        }
        check(stats.puts >= 3 && stats.gets >= 5, "the counters saw the calls");

        ors_redis::library owner(std::move(lib));
        check(!lib && owner.ok(), "moving a library moves the ownership");
        check_status(lib.shutdown(), ORS_ERR_NOT_INITIALIZED, "the moved-from object shuts nothing down");
        check_status(ors_redis::del(id("moved")), ORS_NOT_FOUND, "still initialised");
    }
    check_status(ors_redis::del(id("after")), ORS_ERR_NOT_INITIALIZED, "the owner's end shut the library down");

    ors_redis::library again(config());
    check_status(again.status(), ORS_OK, "init again after shutdown");
    check_status(again.shutdown(), ORS_OK, "explicit shutdown");
    check_status(again.shutdown(), ORS_ERR_NOT_INITIALIZED, "a second shutdown does nothing");

    std::printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
