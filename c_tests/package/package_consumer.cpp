// package_consumer.cpp - a C++ program built outside the repository against
// an installed ors-redis, once through find_package(ors_redis) and once
// through pkg-config (c_tests/package-test.sh). It uses the C++ wrapper to
// store, read back and delete one session on the test cluster, and checks
// that the package's version, the header's macros and the loaded library agree.
//
// ORS_PACKAGE_VERSION: the version the build system found (-D, a string).
// Environment: ORS_TEST_NODES (default 127.0.0.1:7000;127.0.0.1:7001;127.0.0.1:7002).
#include <ors_redis.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>
#ifdef _WIN32
#include <process.h>
#define getpid _getpid
#else
#include <unistd.h>
#endif

#ifndef ORS_PACKAGE_VERSION
#error "build with -DORS_PACKAGE_VERSION=\"<version the package reports>\""
#endif

#define STR2(x) #x
#define STR(x) STR2(x)
#define HEADER_VERSION STR(ORS_REDIS_VERSION_MAJOR) "." STR(ORS_REDIS_VERSION_MINOR) "." STR(ORS_REDIS_VERSION_PATCH)

static int failures = 0;

static void expect(bool ok, const char *what)
{
    std::printf("%s - %s\n", ok ? "ok" : "FAIL", what);
    if (!ok) {
        ++failures;
        std::printf("#   last_error: %s\n", ors_redis::last_error());
    }
}

int main()
{
    std::printf("# package version %s, header %s, library %s\n", ORS_PACKAGE_VERSION, HEADER_VERSION,
                ors_redis::version());
    expect(std::strcmp(ORS_PACKAGE_VERSION, HEADER_VERSION) == 0, "the package's version is the header's");
    expect(std::strcmp(HEADER_VERSION, ors_redis::version()) == 0, "the header's version is the library's");

    const char *nodes = std::getenv("ORS_TEST_NODES");
    if (nodes == nullptr || *nodes == '\0') nodes = "127.0.0.1:7000;127.0.0.1:7001;127.0.0.1:7002";
    ors_redis::library lib(std::string("redis-nodes=") + nodes + " cluster-name=package_consumer");
    expect(lib.ok(), "init");
    if (lib.ok()) {
        const std::string id = "package-consumer-" + std::to_string(static_cast<long>(getpid()));
        const std::vector<uint8_t> value = {'O', 'R', 'S', 0, 0xff, 's', 't', 'a', 't', 'e'};
        expect(ors_redis::put(id, value, 60) == ORS_OK, "put");
        ors_redis::buffer back;
        expect(ors_redis::get(id, back) == ORS_OK && back.to_vector() == value, "get returns the bytes stored");
        expect(ors_redis::del(id) == ORS_OK, "del");
        expect(ors_redis::get(id, back) == ORS_NOT_FOUND && back.empty(), "get after del: not found");
        expect(lib.shutdown() == ORS_OK, "shutdown");
    }
    std::printf("# package_consumer: %s\n", failures == 0 ? "all checks passed" : "some checks failed");
    return failures == 0 ? 0 : 1;
}
