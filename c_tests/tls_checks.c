/*
 * tls_checks.c - TLS against real TLS-only servers (c_tests/tls-servers.sh):
 * round trips over TLS with a client certificate, tls-cacertdir in place of
 * tls-cacert, and init refused with ORS_ERR_TLS and a message naming the node
 * and the reason for: a client without a certificate where the server
 * requires one, a CA that did not sign the node, an expired certificate, a
 * certificate for another host name (which tls-sni then makes pass), and a
 * server that does not speak TLS at all. Keys live under ORS:t_tls:.
 */
#define _GNU_SOURCE 1
#include "harness.h"
#include "fake_server.h"

#define CLUSTER "t_tls"
#define FAIL_FAST_BOUND_MS 10000

static char certs[256];
static int cluster_port, bad_port;
static char cfg[2048];

static const char *tls_config(int port, const char *extra)
{
    snprintf(cfg, sizeof cfg,
             "redis-nodes=127.0.0.1:%d cluster-name=" CLUSTER " tls-enabled=true redis-connect-timeout=2000 %s",
             port, extra ? extra : "");
    return cfg;
}

static void round_trips(const char *label)
{
    uint8_t value[300], *data = NULL;
    size_t len = 0;
    int i, ok = 0;
    char id[128];
    for (i = 0; i < 30; i++) {
        snprintf(id, sizeof id, "%ld-%s-%d", (long)getpid(), label, i);
        h_fill(value, sizeof value, (unsigned)i, 7u);
        if (ors_session_put(id, value, sizeof value, 60) != ORS_OK) continue;
        if (ors_session_get(id, &data, &len) == ORS_OK && len == sizeof value && memcmp(data, value, len) == 0)
            ok++;
        ors_free(data);
        data = NULL;
        ors_session_del(id);
    }
    CHECK(ok == 30, "%s: 30 sessions over every master put, read back byte for byte and deleted over TLS (%d ok)",
          label, ok);
}

/* init must fail with ORS_ERR_TLS, quickly, naming the node and `reason`. */
static void refused(const char *config, const char *reason, const char *what)
{
    int64_t t0 = h_now_ms(), elapsed;
    int32_t st = CHECK_STATUS(ors_redis_init(config), ORS_ERR_TLS, "%s", what);
    elapsed = h_now_ms() - t0;
    h_note("%s: %" PRId64 " ms, last_error: %s", what, elapsed, h_saved_error());
    CHECK_ERROR_MENTIONS("127.0.0.1:", "%s: the message names the node", what);
    CHECK_ERROR_MENTIONS(reason, "%s: the message gives the reason (%s)", what, reason);
    CHECK(elapsed < FAIL_FAST_BOUND_MS, "%s: fails fast (%" PRId64 " ms)", what, elapsed);
    if (st == ORS_OK) ors_redis_shutdown();
}

/* A plain TCP server that answers anything with a Redis error and closes:
 * what a TLS client meets on a port without TLS. */
static void check_tls_handshake_failure(void)
{
    struct fake_server s;
    char config[256];
    if (!CHECK(fake_server_start(&s, "-ERR this server does not speak TLS\r\n") == 0,
               "started a plain TCP server on 127.0.0.1"))
        return;
    snprintf(config, sizeof config, "redis-nodes=127.0.0.1:%d cluster-name=" CLUSTER " tls-enabled=true tls-cacert=%s",
             s.port, "/dev/null");
    /* /dev/null holds no CA: that is a config error before any connection. */
    CHECK_STATUS(ors_redis_init(config), ORS_ERR_CONFIG, "a tls-cacert without any certificate");
    snprintf(config, sizeof config, "redis-nodes=127.0.0.1:%d cluster-name=" CLUSTER " tls-enabled=true", s.port);
    refused(config, "TLS", "a server that does not speak TLS (system CAs)");
    CHECK(fake_server_accepted(&s) >= 1, "the library did connect to the plain server (%d connection(s))",
          fake_server_accepted(&s));
    fake_server_stop(&s);
}

int main(void)
{
    char extra[2048];
    int32_t st;

    h_begin("tls_checks");
    snprintf(certs, sizeof certs, "%s/certs", h_env("ORS_TLS_DIR", "target/tls-test"));
    cluster_port = atoi(h_env("ORS_TLS_CLUSTER_PORT", "7080"));
    bad_port = atoi(h_env("ORS_TLS_BAD_PORT", "7090"));

    /* Mutual TLS with tls-cacert. */
    snprintf(extra, sizeof extra, "tls-cacert=%s/ca.pem tls-cert=%s/client.pem tls-key=%s/client.key", certs, certs,
             certs);
    st = CHECK_STATUS(ors_redis_init(tls_config(cluster_port, extra)), ORS_OK, "init over TLS with a client certificate");
    if (st == ORS_OK) {
        round_trips("cacert");
        CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    }

    /* tls-cacertdir in place of tls-cacert (the folder also holds a README). */
    snprintf(extra, sizeof extra, "tls-cacertdir=%s/cadir tls-cert=%s/client.pem tls-key=%s/client.key", certs, certs,
             certs);
    st = CHECK_STATUS(ors_redis_init(tls_config(cluster_port, extra)), ORS_OK, "init with tls-cacertdir");
    if (st == ORS_OK) {
        round_trips("cacertdir");
        CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    }

    /* The cluster requires client certificates (tls-auth-clients yes). */
    snprintf(extra, sizeof extra, "tls-cacert=%s/ca.pem", certs);
    refused(tls_config(cluster_port, extra), "certificate", "a client without a certificate, server requires one");

    /* A CA that did not sign the nodes. */
    snprintf(extra, sizeof extra, "tls-cacert=%s/other-ca.pem tls-cert=%s/client.pem tls-key=%s/client.key", certs,
             certs, certs);
    refused(tls_config(cluster_port, extra), "UnknownIssuer", "a wrong CA");

    /* A node whose certificate has expired. */
    snprintf(extra, sizeof extra, "tls-cacert=%s/ca.pem", certs);
    refused(tls_config(bad_port, extra), "expired", "an expired server certificate");

    /* A node whose certificate is for another host name; tls-sni fixes it. */
    refused(tls_config(bad_port + 1, extra), "not valid for name", "a certificate for another host name");
    snprintf(extra, sizeof extra, "tls-cacert=%s/ca.pem tls-sni=redis.other.example", certs);
    st = CHECK_STATUS(ors_redis_init(tls_config(bad_port + 1, extra)), ORS_OK,
                      "the same node with tls-sni=redis.other.example");
    if (st == ORS_OK) {
        round_trips("sni");
        CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    }

    /* A config error, not a TLS error, for a CA file that does not exist. */
    CHECK_STATUS(ors_redis_init(tls_config(cluster_port, "tls-cacert=/nonexistent/ca.pem")), ORS_ERR_CONFIG,
                 "a missing tls-cacert file");
    CHECK_ERROR_MENTIONS("tls-cacert", "the message names the option");

    check_tls_handshake_failure();
    return h_done();
}
