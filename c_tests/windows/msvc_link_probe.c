/*
 * msvc_link_probe.c - linked by cmake/windows-build.sh with lld-link (the
 * command line of MSVC's link.exe) against ors_redis.lib alone, with no C
 * runtime: proof that the COFF import library resolves every call an MSVC
 * consumer makes through it. Run under wine by c_tests/windows/run-wine-tests.sh:
 * prints the library's version and exits 0 when it matches the header's macros.
 */
#include <windows.h>

#include "ors_redis.h"

static DWORD probe_len(const char *s)
{
    DWORD n = 0;
    while (s[n] != '\0') n++;
    return n;
}

static void probe_write(const char *s)
{
    DWORD written;
    WriteFile(GetStdHandle(STD_OUTPUT_HANDLE), s, probe_len(s), &written, NULL);
}

/* The header's version macros as text: "MAJOR.MINOR.PATCH". */
#define PROBE_STR2(x) #x
#define PROBE_STR(x) PROBE_STR2(x)
#define PROBE_VERSION \
    PROBE_STR(ORS_REDIS_VERSION_MAJOR) "." PROBE_STR(ORS_REDIS_VERSION_MINOR) "." PROBE_STR(ORS_REDIS_VERSION_PATCH)

void __stdcall probe_main(void);
void __stdcall probe_main(void)
{
    const char *got = ors_redis_version();
    const char *want = PROBE_VERSION;
    const char *name = ors_status_name(ORS_ERR_NOT_INITIALIZED);
    DWORD i = 0;
    UINT code = 0;
    while (got[i] != '\0' && got[i] == want[i]) i++;
    if (got[i] != want[i]) code = 1;
    if (ors_session_del("probe") != ORS_ERR_NOT_INITIALIZED) code = 2;
    probe_write("msvc_link_probe: ors_redis_version() ");
    probe_write(got);
    probe_write(", header ");
    probe_write(want);
    probe_write(", del before init -> ");
    probe_write(name);
    probe_write(code == 0 ? " (ok)\r\n" : " (MISMATCH)\r\n");
    ExitProcess(code);
}
