/*
 * test_init_checks.c - what init tells the host:
 * - a warning, through the logger, when wait-replicas exceeds the replicas
 *   of some master (the test cluster has 3 masters with 1 replica each:
 *   wait-replicas=2 warns, 1 does not);
 * - no piece of a badly quoted password in ors_last_error();
 * - seeds that all refuse: ORS_ERR_CONNECTION, at once.
 * (Blackholed seeds, which need a network namespace, are timed by
 * c_tests/netfault/init-blackholed.sh.)
 */
#define _GNU_SOURCE 1
#include "harness.h"

#define CLUSTER "t_init_checks"

struct captured {
    int warn_lines;   /* WARN lines about wait-replicas */
    char line[1024];  /* the first of them */
};

static void capture_logger(int32_t level, const char *message, void *user_data)
{
    struct captured *c = user_data;
    if (level == ORS_LOG_WARN && strstr(message, "wait-replicas=") && strstr(message, "exceeds")) {
        if (c->warn_lines++ == 0) snprintf(c->line, sizeof c->line, "%s", message);
    }
}

static void check_wait_replicas_warning(void)
{
    struct captured c;
    char extra[64];
    int wait;

    for (wait = 1; wait <= 2; wait++) {
        memset(&c, 0, sizeof c);
        ors_redis_set_logger(capture_logger, &c);
        snprintf(extra, sizeof extra, "wait-replicas=%d", wait);
        if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, extra)), ORS_OK, "init with %s", extra) != ORS_OK) {
            ors_redis_set_logger(NULL, NULL);
            continue;
        }
        if (wait == 2) {
            CHECK(c.warn_lines == 1, "wait-replicas=2 on masters with one replica each: one warning (%d): %s",
                  c.warn_lines, c.line);
            CHECK(strstr(c.line, "ORS_ERR_NOT_DURABLE") != NULL && strstr(c.line, "3 of 3 master") != NULL,
                  "the warning names the consequence and the masters (\"%s\")", c.line);
        } else {
            CHECK(c.warn_lines == 0, "wait-replicas=1 with one replica per master: no warning (%d)", c.warn_lines);
        }
        ors_redis_shutdown();
        ors_redis_set_logger(NULL, NULL);
    }
}

static void check_password_pieces(void)
{
    static const char *const passwords[] = {
        "password=hunter2 s3cr3t-tail",
        "password=\"hunter2 s3cr3t-tail\"",
        "password='hunter2 s3cr3t-tail",
        "password=hunter2' s3cr3t-tail'",
        "password=hunter2\\ s3cr3t-tail",
        "password=hunter2 s3cr3t=tail",
        "password=hunter2 op-timeout=s3cr3t-tail",
    };
    char config[1024];
    size_t i;
    const char *err;

    for (i = 0; i < sizeof passwords / sizeof passwords[0]; i++) {
        snprintf(config, sizeof config, "redis-nodes=%s cluster-name=" CLUSTER " %s", h_nodes(), passwords[i]);
        CHECK_STATUS(ors_redis_init(config), ORS_ERR_CONFIG, "init with %s", passwords[i]);
        err = h_saved_error();
        CHECK(strstr(err, "hunter2") == NULL && strstr(err, "s3cr3t") == NULL && strstr(err, "tail") == NULL,
              "no piece of the password in ors_last_error() (\"%s\")", err);
        ors_redis_shutdown();
    }
}

static void check_refused_seeds(void)
{
    int64_t t0, took;
    /* Ports nothing listens on: each connect is refused at once. */
    const char *config = "redis-nodes=127.0.0.1:1;127.0.0.1:2;127.0.0.1:3 cluster-name=" CLUSTER
                         " redis-connect-timeout=1000";

    t0 = h_now_ms();
    CHECK_STATUS(ors_redis_init(config), ORS_ERR_CONNECTION, "init with every seed refusing");
    took = h_now_ms() - t0;
    CHECK_ERROR_MENTIONS("127.0.0.1:3", "the message names the seeds (\"%s\")", h_saved_error());
    CHECK(took < 1000, "refused seeds fail at once, not after the connect timeout (%lld ms)", (long long)took);
    ors_redis_shutdown();
}

int main(void)
{
    h_begin("test_init_checks");
    check_wait_replicas_warning();
    check_password_pieces();
    check_refused_seeds();
    return h_done();
}
