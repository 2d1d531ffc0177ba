/*
 * test_init.c - ors_redis_init: malformed config strings (ORS_ERR_CONFIG with
 * the key named), config syntax that must be accepted, fail-fast init against
 * an unreachable port, a silent server and a standalone redis-server, and
 * ORS_ERR_AUTH when a password goes to a server without one. The password
 * never shows in ors_last_error().
 * Keys live under ORS:t_init:.
 */
#define _GNU_SOURCE 1
#include "harness.h"
#include "fake_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define CLUSTER "t_init"
#define SECRET "Zq9SekretPW31337"
#define UNREACHABLE_PORT 7099
/* no timing assertions on speed, only a loose bound that catches a hang */
#define FAIL_FAST_BOUND_MS 10000

static char cfg[8192];

static const char *base(void)
{
    return config_for(CLUSTER, NULL);
}

/* init must refuse `config` with ORS_ERR_CONFIG and name `key`. */
static void expect_config_error(const char *label, const char *config, const char *key)
{
    int32_t st = CHECK_STATUS(ors_redis_init(config), ORS_ERR_CONFIG, "config %s", label);
    if (key) {
        CHECK(strstr(h_saved_error(), key) != NULL, "config %s: ors_last_error() names \"%s\" (\"%s\")", label, key,
              h_saved_error());
    } else {
        CHECK(h_saved_error()[0] != '\0', "config %s: ors_last_error() is not empty (\"%s\")", label,
              h_saved_error());
    }
    if (st == ORS_OK) ors_redis_shutdown(); /* accepted by mistake: do not poison the next case */
}

/* `<base> <extra>` must be refused, naming `key`. */
static void expect_bad_extra(const char *extra, const char *key)
{
    char label[600];
    snprintf(cfg, sizeof cfg, "%s %s", base(), extra);
    snprintf(label, sizeof label, "'... %s'", extra);
    expect_config_error(label, cfg, key);
}

static void expect_not_initialized(const char *when)
{
    CHECK_STATUS(ors_session_put(h_id("nothing"), (const uint8_t *)"x", 1, 10), ORS_ERR_NOT_INITIALIZED,
                 "put %s: the library is not initialized", when);
}

static void check_config_errors(void)
{
    char name129[200];

    /* unknown and duplicate keys */
    expect_bad_extra("bogus-key=1", "bogus-key");
    expect_bad_extra("default_ttl=5", "default_ttl");
    expect_bad_extra("default-ttl=5 default-ttl=6", "default-ttl");
    expect_bad_extra("default-ttl=5 default-ttl=5", "default-ttl");
    expect_bad_extra("cluster-name=again", "cluster-name");
    snprintf(cfg, sizeof cfg, "redis-nodes=%s %s", h_nodes(), base());
    expect_config_error("with redis-nodes twice", cfg, "redis-nodes");

    /* missing required keys */
    expect_config_error("without redis-nodes", "cluster-name=" CLUSTER, "redis-nodes");
    snprintf(cfg, sizeof cfg, "redis-nodes=%s", h_nodes());
    expect_config_error("without cluster-name", cfg, "cluster-name");
    snprintf(cfg, sizeof cfg, "redis-nodes=%s default-ttl=60 log-level=warn", h_nodes());
    expect_config_error("with options but without cluster-name", cfg, "cluster-name");
    expect_config_error("\"\" (empty)", "", NULL);
    expect_config_error("\" \\t\\n \" (only whitespace)", " \t\n ", NULL);

    /* bad numbers */
    expect_bad_extra("default-ttl=abc", "default-ttl");
    expect_bad_extra("default-ttl=-5", "default-ttl");
    expect_bad_extra("default-ttl=12x", "default-ttl");
    expect_bad_extra("default-ttl=1.5", "default-ttl");
    expect_bad_extra("default-ttl=99999999999999999999999", "default-ttl");
    expect_bad_extra("redis-connect-timeout=", "redis-connect-timeout");
    expect_bad_extra("redis-connect-timeout=fast", "redis-connect-timeout");
    expect_bad_extra("redis-socket-timeout=0x10", "redis-socket-timeout");
    expect_bad_extra("op-timeout=99999999999999999999999", "op-timeout");
    expect_bad_extra("op-timeout=-1", "op-timeout");
    expect_bad_extra("wait-replicas=-1", "wait-replicas");
    expect_bad_extra("wait-replicas=two", "wait-replicas");
    expect_bad_extra("wait-timeout=abc", "wait-timeout");
    expect_bad_extra("max-value-bytes=1.5", "max-value-bytes");
    expect_bad_extra("max-value-bytes=64MB", "max-value-bytes");

    /* bad booleans and enums */
    expect_bad_extra("tls-enabled=maybe", "tls-enabled");
    expect_bad_extra("tls-enabled=2", "tls-enabled");
    expect_bad_extra("tls-enabled=", "tls-enabled");
    expect_bad_extra("log-level=loud", "log-level");

    /* quoting */
    snprintf(cfg, sizeof cfg, "redis-nodes=%s cluster-name='" CLUSTER, h_nodes());
    expect_config_error("with an unterminated quote in cluster-name", cfg, "cluster-name");
    snprintf(cfg, sizeof cfg, "cluster-name=" CLUSTER " redis-nodes='%s", h_nodes());
    expect_config_error("with an unterminated quote in redis-nodes (last pair)", cfg, "redis-nodes");
    snprintf(cfg, sizeof cfg, "%s default-ttl='60\\'", base());
    expect_config_error("with a quote closed only by an escaped quote", cfg, "default-ttl");

    /* tokens that are not key=value */
    /* a word without "=" may be a piece of the value before it: named by position, never shown */
    expect_bad_extra("garbage", "has no '='");
    expect_bad_extra("=value", NULL);

    /* bad cluster names and seed lists */
    snprintf(cfg, sizeof cfg, "redis-nodes=%s cluster-name=bad/name", h_nodes());
    expect_config_error("cluster-name=bad/name", cfg, "cluster-name");
    snprintf(cfg, sizeof cfg, "redis-nodes=%s cluster-name=a:b", h_nodes());
    expect_config_error("cluster-name=a:b", cfg, "cluster-name");
    snprintf(cfg, sizeof cfg, "redis-nodes=%s cluster-name={x}", h_nodes());
    expect_config_error("cluster-name={x}", cfg, "cluster-name");
    snprintf(cfg, sizeof cfg, "redis-nodes=%s cluster-name=", h_nodes());
    expect_config_error("cluster-name= (empty)", cfg, "cluster-name");
    memset(name129, 'n', 129);
    name129[129] = '\0';
    snprintf(cfg, sizeof cfg, "redis-nodes=%s cluster-name=%s", h_nodes(), name129);
    expect_config_error("cluster-name of 129 characters", cfg, "cluster-name");
    expect_config_error("redis-nodes=127.0.0.1 (no port)", "redis-nodes=127.0.0.1 cluster-name=" CLUSTER,
                        "redis-nodes");
    expect_config_error("redis-nodes=127.0.0.1:notaport", "redis-nodes=127.0.0.1:notaport cluster-name=" CLUSTER,
                        "redis-nodes");
    expect_config_error("redis-nodes=127.0.0.1:70000", "redis-nodes=127.0.0.1:70000 cluster-name=" CLUSTER,
                        "redis-nodes");
    expect_config_error("redis-nodes= (empty)", "redis-nodes= cluster-name=" CLUSTER, "redis-nodes");

    /* TLS client certificate without its key */
    expect_bad_extra("tls-enabled=true tls-cert=/nonexistent/client.pem", "tls-");

    expect_not_initialized("after every refused config");
}

/* The password never shows in ors_last_error(), whatever failed. Returns how
 * long init took, in ms. */
static int64_t check_secret_hidden(const char *label, const char *config, int32_t want, const char *key)
{
    int64_t t0 = h_now_ms(), elapsed;
    int32_t st = ors_redis_init(config);
    elapsed = h_now_ms() - t0;
    CHECK_STATUS(st, want, "init %s", label);
    CHECK(strstr(h_saved_error(), SECRET) == NULL && strstr(h_saved_error(), "Zq9") == NULL,
          "init %s: the password is not in ors_last_error() (\"%s\")", label, h_saved_error());
    if (key) {
        CHECK(strstr(h_saved_error(), key) != NULL, "init %s: ors_last_error() names \"%s\"", label, key);
    }
    if (st == ORS_OK) ors_redis_shutdown();
    return elapsed;
}

static void check_passwords(void)
{
    int64_t elapsed;

    snprintf(cfg, sizeof cfg, "%s password=" SECRET " default-ttl=abc", base());
    check_secret_hidden("with a password and a bad default-ttl", cfg, ORS_ERR_CONFIG, "default-ttl");
    snprintf(cfg, sizeof cfg, "%s password=" SECRET " password=" SECRET "2", base());
    check_secret_hidden("with password given twice", cfg, ORS_ERR_CONFIG, "password");
    snprintf(cfg, sizeof cfg, "%s username=ors password=" SECRET " bogus=1", base());
    /* "bogus" may be a piece of an unquoted password: not shown either */
    check_secret_hidden("with username, password and an unknown key", cfg, ORS_ERR_CONFIG, "not a known key");
    snprintf(cfg, sizeof cfg, "%s password='" SECRET " still open", base());
    check_secret_hidden("with an unterminated quoted password", cfg, ORS_ERR_CONFIG, NULL);

    /* the cluster has no password: AUTH <pw> fails with "ERR AUTH <password>
     * called without any password configured" */
    snprintf(cfg, sizeof cfg, "%s password=" SECRET, base());
    elapsed = check_secret_hidden("with a password, server without one", cfg, ORS_ERR_AUTH, NULL);
    h_note("init with a password against a server without one took %" PRId64 " ms", elapsed);
    CHECK(elapsed < FAIL_FAST_BOUND_MS, "init with a password fails fast (%" PRId64 " ms < %d)", elapsed,
          FAIL_FAST_BOUND_MS);

    snprintf(cfg, sizeof cfg, "%s username=nobody password=" SECRET, base());
    check_secret_hidden("with an unknown ACL user", cfg, ORS_ERR_AUTH, NULL);

    /* a quoted password with escapes parses, and is refused by the server,
     * not by the config parser */
    snprintf(cfg, sizeof cfg, "%s password='Zq9 sek\\'ret\\\\pw'", base());
    check_secret_hidden("with a quoted password holding a space, \\' and \\\\", cfg, ORS_ERR_AUTH, NULL);
    CHECK(strstr(h_saved_error(), "sek'ret") == NULL, "the quoted password is not in ors_last_error() either");

    expect_not_initialized("after the refused passwords");
}

/* A configuration that must be accepted; then a put lands under
 * ORS:<cluster>: and the library is shut down again. */
static void expect_accepted(const char *label, const char *config, const char *cluster)
{
    const char *id = h_id("accepted");
    int32_t st = CHECK_STATUS(ors_redis_init(config), ORS_OK, "init %s", label);
    if (st != ORS_OK) return;
    CHECK_STATUS(ors_session_put(id, (const uint8_t *)"ok", 2, 30), ORS_OK, "init %s: put", label);
    CHECK(redis_cli_key_int("EXISTS", h_key(cluster, id)) == 1, "init %s: the session is stored under ORS:%s:",
          label, cluster);
    CHECK_STATUS(ors_session_del(id), ORS_OK, "init %s: del", label);
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "init %s: shutdown", label);
}

static void check_accepted_syntax(void)
{
    char commas[1024];
    size_t i;

    snprintf(cfg, sizeof cfg, "redis-nodes=%s cluster-name='" CLUSTER "'", h_nodes());
    expect_accepted("with a quoted cluster-name", cfg, CLUSTER);
    snprintf(cfg, sizeof cfg, "redis-nodes='%s' cluster-name=" CLUSTER, h_nodes());
    expect_accepted("with quoted redis-nodes", cfg, CLUSTER);
    snprintf(cfg, sizeof cfg, "  \t cluster-name=" CLUSTER " \n\t redis-nodes=%s \n ", h_nodes());
    expect_accepted("with spaces, tabs and newlines around the pairs", cfg, CLUSTER);
    snprintf(commas, sizeof commas, "%s", h_nodes());
    for (i = 0; commas[i]; i++)
        if (commas[i] == ';') commas[i] = ',';
    snprintf(cfg, sizeof cfg, "redis-nodes=%s cluster-name=" CLUSTER, commas);
    expect_accepted("with redis-nodes separated by ','", cfg, CLUSTER);
    snprintf(cfg, sizeof cfg, "redis-nodes=127.0.0.1:%d cluster-name=" CLUSTER, h_port());
    expect_accepted("with a single seed node", cfg, CLUSTER);
    snprintf(cfg, sizeof cfg, "redis-nodes=127.0.0.1:%d;%s cluster-name=" CLUSTER " redis-connect-timeout=500",
             UNREACHABLE_PORT, h_nodes());
    expect_accepted("with an unreachable seed before the good ones", cfg, CLUSTER);
    expect_accepted("with tls-enabled=false", config_for(CLUSTER, "tls-enabled=false"), CLUSTER);
    expect_accepted("with tls-enabled=off", config_for(CLUSTER, "tls-enabled=off"), CLUSTER);
    expect_accepted("with tls-enabled=0", config_for(CLUSTER, "tls-enabled=0"), CLUSTER);
    expect_accepted("with every numeric option and log-level",
                    config_for(CLUSTER, "redis-connect-timeout=800 redis-socket-timeout=900 op-timeout=4000 "
                                        "default-ttl=3600 wait-replicas=0 wait-timeout=50 "
                                        "max-value-bytes=1048576 log-level=error"),
                    CLUSTER);
    expect_accepted("with cluster-name of every allowed character class", config_for("t_init-A.z_0", NULL),
                    "t_init-A.z_0");
}

static int port_listens(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    if (fd < 0) return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((uint16_t)port);
    ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static void check_fail_fast(void)
{
    int64_t t0, elapsed;
    int32_t st;
    struct fake_server silent;
    char needle[32];

    CHECK(!port_listens(UNREACHABLE_PORT), "precondition: nothing listens on 127.0.0.1:%d", UNREACHABLE_PORT);

    /* unreachable port */
    snprintf(cfg, sizeof cfg, "redis-nodes=127.0.0.1:%d cluster-name=" CLUSTER " redis-connect-timeout=500",
             UNREACHABLE_PORT);
    t0 = h_now_ms();
    st = ors_redis_init(cfg);
    elapsed = h_now_ms() - t0;
    CHECK_STATUS(st, ORS_ERR_CONNECTION, "init against unreachable 127.0.0.1:%d (connect-timeout 500)",
                 UNREACHABLE_PORT);
    h_note("init against an unreachable port took %" PRId64 " ms", elapsed);
    CHECK(elapsed < FAIL_FAST_BOUND_MS, "init against an unreachable port fails fast (%" PRId64 " ms < %d)", elapsed,
          FAIL_FAST_BOUND_MS);
    snprintf(needle, sizeof needle, "%d", UNREACHABLE_PORT);
    CHECK(strstr(h_saved_error(), needle) != NULL, "ors_last_error() names the node that failed (\"%s\")",
          h_saved_error());
    if (st == ORS_OK) ors_redis_shutdown();

    snprintf(cfg, sizeof cfg, "redis-nodes=127.0.0.1:%d;127.0.0.1:%d cluster-name=" CLUSTER, UNREACHABLE_PORT,
             UNREACHABLE_PORT - 1);
    t0 = h_now_ms();
    st = ors_redis_init(cfg);
    elapsed = h_now_ms() - t0;
    CHECK_STATUS(st, ORS_ERR_CONNECTION, "init against two unreachable seeds (default connect-timeout)");
    h_note("init against two unreachable seeds took %" PRId64 " ms", elapsed);
    CHECK(elapsed < FAIL_FAST_BOUND_MS, "init against two unreachable seeds fails fast (%" PRId64 " ms < %d)",
          elapsed, FAIL_FAST_BOUND_MS);
    if (st == ORS_OK) ors_redis_shutdown();

    /* a node that accepts the TCP connection and never answers */
    if (CHECK(fake_server_start(&silent, NULL) == 0, "started a silent TCP server on 127.0.0.1")) {
        int accepted;
        snprintf(cfg, sizeof cfg,
                 "redis-nodes=127.0.0.1:%d cluster-name=" CLUSTER
                 " redis-connect-timeout=500 redis-socket-timeout=500 op-timeout=2000",
                 silent.port);
        t0 = h_now_ms();
        st = ors_redis_init(cfg);
        elapsed = h_now_ms() - t0;
        h_save_error();
        accepted = fake_server_accepted(&silent);
        h_note("init against a silent server took %" PRId64 " ms: %s (%s), %d connection(s) accepted", elapsed,
               h_code_name(st), h_saved_error(), accepted);
        CHECK(st == ORS_ERR_CONNECTION || st == ORS_ERR_TIMEOUT,
              "init against a server that never answers -> CONNECTION or TIMEOUT (got %s)", h_code_name(st));
        CHECK(elapsed < FAIL_FAST_BOUND_MS, "init against a silent server fails fast (%" PRId64 " ms < %d)",
              elapsed, FAIL_FAST_BOUND_MS);
        CHECK(accepted >= 1, "the library did reach the silent server (%d connections)", accepted);
        if (st == ORS_OK) ors_redis_shutdown();
        fake_server_stop(&silent);
    }

    /* a standalone redis-server: answers, but is not a cluster */
    {
        char ping[64];
        snprintf(ping, sizeof ping, "%s", redis_cli("-p %d PING", h_standalone_port()));
        CHECK(strcmp(ping, "PONG") == 0, "precondition: standalone redis-server answers on 127.0.0.1:%d (\"%s\")",
              h_standalone_port(), ping);
    }
    snprintf(cfg, sizeof cfg, "redis-nodes=127.0.0.1:%d cluster-name=" CLUSTER, h_standalone_port());
    t0 = h_now_ms();
    st = ors_redis_init(cfg);
    elapsed = h_now_ms() - t0;
    CHECK_STATUS(st, ORS_ERR_CONFIG, "init against a standalone redis-server on port %d", h_standalone_port());
    CHECK(strcasestr(h_saved_error(), "cluster") != NULL, "ors_last_error() says it is not a cluster (\"%s\")",
          h_saved_error());
    h_note("init against a standalone server took %" PRId64 " ms", elapsed);
    CHECK(elapsed < FAIL_FAST_BOUND_MS, "init against a standalone server fails fast (%" PRId64 " ms < %d)", elapsed,
          FAIL_FAST_BOUND_MS);
    if (st == ORS_OK) ors_redis_shutdown();

    /* a password to the standalone server (no requirepass there either) */
    snprintf(cfg, sizeof cfg, "redis-nodes=127.0.0.1:%d cluster-name=" CLUSTER " password=" SECRET,
             h_standalone_port());
    check_secret_hidden("with a password against the standalone server", cfg, ORS_ERR_AUTH, NULL);

    expect_not_initialized("after the failed inits");
}

int main(void)
{
    const char *id;
    uint8_t *data = NULL;
    size_t len = 0;
    int32_t st;

    h_begin("test_init");
    check_config_errors();
    check_passwords();
    check_fail_fast();
    check_accepted_syntax();

    /* after all of that, a plain init works and the library is usable */
    st = CHECK_STATUS(ors_redis_init(base()), ORS_OK, "init after all the refused ones");
    if (st == ORS_OK) {
        id = h_id("final");
        CHECK_STATUS(ors_session_put(id, (const uint8_t *)"final", 5, 60), ORS_OK, "put");
        st = CHECK_STATUS(ors_session_get(id, &data, &len), ORS_OK, "get");
        CHECK(st == ORS_OK && len == 5 && data && memcmp(data, "final", 5) == 0, "get returns the value put");
        ors_free(data);
        CHECK_STATUS(ors_session_del(id), ORS_OK, "del");
        CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    }
    h_check_all_keys_have_ttl(CLUSTER);
    return h_done();
}
