/*
 * version_macros.c - the ORS_REDIS_VERSION_* macros of ors_redis.h cannot
 * drift: at compile time they must equal the version CMake read from
 * Cargo.toml (ORS_EXPECTED_MAJOR/_MINOR/_PATCH, passed with -D), and at run
 * time they must spell the version the loaded library reports.
 */
#include "ors_redis.h"

#include <stdio.h>
#include <string.h>

#if !defined(ORS_EXPECTED_MAJOR) || !defined(ORS_EXPECTED_MINOR) || !defined(ORS_EXPECTED_PATCH)
#error "build with -DORS_EXPECTED_MAJOR=.. -DORS_EXPECTED_MINOR=.. -DORS_EXPECTED_PATCH=.. (from Cargo.toml)"
#endif
#if !defined(ORS_REDIS_VERSION_MAJOR) || !defined(ORS_REDIS_VERSION_MINOR) || !defined(ORS_REDIS_VERSION_PATCH)
#error "ors_redis.h lacks the ORS_REDIS_VERSION_* macros"
#endif
/* In the preprocessor, so that a mismatch names itself in the build log. */
#if ORS_REDIS_VERSION_MAJOR != ORS_EXPECTED_MAJOR
#error "ORS_REDIS_VERSION_MAJOR differs from Cargo.toml's version"
#endif
#if ORS_REDIS_VERSION_MINOR != ORS_EXPECTED_MINOR
#error "ORS_REDIS_VERSION_MINOR differs from Cargo.toml's version"
#endif
#if ORS_REDIS_VERSION_PATCH != ORS_EXPECTED_PATCH
#error "ORS_REDIS_VERSION_PATCH differs from Cargo.toml's version"
#endif

int main(void)
{
    char compiled[64];
    const char *loaded = ors_redis_version();
    snprintf(compiled, sizeof compiled, "%d.%d.%d", ORS_REDIS_VERSION_MAJOR, ORS_REDIS_VERSION_MINOR,
             ORS_REDIS_VERSION_PATCH);
    if (loaded == NULL || strcmp(compiled, loaded) != 0) {
        printf("FAIL - header macros say %s, ors_redis_version() says %s\n", compiled, loaded ? loaded : "(null)");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    printf("ok - ORS_REDIS_VERSION_* = %s = Cargo.toml's version (compile time) = ors_redis_version() (run time)\n",
           compiled);
    printf("1 passed, 0 failed\n");
    return 0;
}
