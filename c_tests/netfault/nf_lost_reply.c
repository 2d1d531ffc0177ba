/*
 * nf_lost_reply.c - a write applied whose reply is lost (issue 28): the
 * replies of the library's own connections to a master are dropped (found
 * by CLIENT LIST on the master: their client ports; the request still
 * arrives), so the first UNLINK of a session is applied and its reply never
 * read. The retry, on a new connection whose replies pass, finds nothing.
 * ors_session_del must still say ORS_OK (the session was removed), not
 * ORS_NOT_FOUND ("there was none"), within op-timeout. A session never
 * put stays ORS_NOT_FOUND.
 */
#include "netfault.h"

#define OP_TIMEOUT 3000
#define SOCKET_TIMEOUT 300

/* Drops the replies of every connection the library has open to the node
 * on `port` now (CLIENT LIST: laddr is the node's own address, which only
 * the library dials); the number of connections, 0 on failure. */
static int drop_library_replies(int port)
{
    static char out[65536];
    char laddr[64];
    const char *line;
    int n = 0;
    snprintf(laddr, sizeof laddr, "laddr=%s:%d ", nf_host(port), port);
    if (h_cli_capture(out, sizeof out, "-p %d CLIENT LIST TYPE normal", port) <= 0) return 0;
    for (line = out; *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : "") {
        const char *addr = strstr(line, " addr=127.0.0.1:");
        const char *end = strchr(line, '\n');
        const char *l = strstr(line, laddr);
        if (!addr || !l || (end && l > end)) continue;
        if (!nf_rule("-s %s -p tcp --sport %d --dport %d -j DROP", nf_host(port), port,
                     atoi(addr + strlen(" addr=127.0.0.1:"))))
            return 0;
        n++;
    }
    return n;
}

int main(void)
{
    static struct chaos_topo topo;
    char id[64], extra[128], key[128];
    int m, i, conns;
    int32_t st;
    int64_t t0, took_us;

    h_begin("nf_lost_reply");
    snprintf(extra, sizeof extra, "redis-socket-timeout=%d", SOCKET_TIMEOUT);
    if (!(m = nf_begin(&topo, "nflost", OP_TIMEOUT, extra))) return h_done();
    for (i = 0; i < 100000; i++) {
        snprintf(id, sizeof id, "lost-%ld-%d", (long)getpid(), i);
        if (topo.owner[chaos_slot(id)] == m) break;
    }
    CHECK_STATUS(chaos_put(id, chaos_tag(id), 1, 600), ORS_OK, "put %s on master %d", id, m);

    conns = drop_library_replies(m);
    CHECK(conns > 0, "the replies of the library's %d connection(s) to %s:%d are dropped", conns, nf_host(m), m);
    t0 = chaos_now_us();
    st = ors_session_del(id);
    took_us = chaos_now_us() - t0;
    h_save_error();
    snprintf(key, sizeof key, "ORS:nflost:{%s}", id);
    CHECK(strcmp(redis_cli("-p %d EXISTS %s", m, key), "0") == 0, "the first UNLINK was applied (the key is gone)");
    CHECK_STATUS(st, ORS_OK, "del whose first reply was lost says the session was removed (%s)", h_saved_error());
    CHECK(took_us < (int64_t)(OP_TIMEOUT + NF_SLACK_MS) * 1000, "within op-timeout (%.1f ms)", took_us / 1e3);
    printf("# FIGURE lost UNLINK reply: del returned %s after %.1f ms (socket timeout %d ms)\n", h_code_name(st),
           took_us / 1e3, SOCKET_TIMEOUT);

    nf_heal();
    CHECK_STATUS(ors_session_del(id), ORS_NOT_FOUND, "a second del finds none");
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    return h_done();
}
