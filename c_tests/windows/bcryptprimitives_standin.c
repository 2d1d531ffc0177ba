/*
 * bcryptprimitives_standin.c - TEST SETUP ONLY, never shipped: wine 8.0 has
 * no bcryptprimitives.dll, whose ProcessPrng Rust's standard library calls
 * for randomness (Windows 10 and later have it). run-wine-tests.sh builds
 * this stand-in beside the test programs; it fills the buffer from
 * RtlGenRandom (advapi32's SystemFunction036), which wine does implement.
 */
#include <windows.h>

#define RtlGenRandom SystemFunction036
BOOLEAN NTAPI RtlGenRandom(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len);
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk)) return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
