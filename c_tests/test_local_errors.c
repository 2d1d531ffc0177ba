/*
 * test_local_errors.c - a call that cannot open a socket because this
 * process is out of file descriptors (EMFILE) fails at once with
 * ORS_ERR_CONNECTION and a message that names the cause, instead of being
 * retried for the whole op-timeout with a warning per attempt. Then, with
 * descriptors free again, the library works. Keys live under
 * ORS:t_local_errors:.
 */
#define _GNU_SOURCE 1
#include "harness.h"

#include <sys/resource.h>

#define CLUSTER "t_local_errors"
#define OP_TIMEOUT_MS 3000

static int warnings;

static void count_warnings(int32_t level, const char *message, void *user_data)
{
    (void)message;
    (void)user_data;
    if (level <= ORS_LOG_WARN) warnings++;
}

/* Lowers the soft limit a little above the descriptors in use and takes
 * every free one; returns how many were taken (closed by give_back). */
static int fds[512];
static int take_every_fd(void)
{
    struct rlimit rl;
    int n = 0, fd;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    rl.rlim_cur = 128;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) return -1;
    while (n < (int)(sizeof fds / sizeof fds[0]) && (fd = dup(0)) >= 0) fds[n++] = fd;
    return errno == EMFILE ? n : -1;
}

static void give_back(int n)
{
    while (n > 0) close(fds[--n]);
}

int main(void)
{
    const char *id = h_id("emfile");
    uint8_t *data = NULL;
    size_t len = 0;
    int taken, before;
    int64_t t0, took;
    int32_t st;
    char extra[64];

    h_begin("test_local_errors");
    snprintf(extra, sizeof extra, "op-timeout=%d", OP_TIMEOUT_MS);
    if (CHECK_STATUS(ors_redis_init(config_for(CLUSTER, extra)), ORS_OK, "init") != ORS_OK) return h_done();
    CHECK_STATUS(ors_redis_set_logger(count_warnings, NULL), ORS_OK, "logger that counts warnings");

    taken = take_every_fd();
    CHECK(taken > 0, "descriptors taken until EMFILE (%d)", taken);
    before = warnings;
    t0 = h_now_ms();
    st = ors_session_put(id, (const uint8_t *)"v", 1, 60);
    took = h_now_ms() - t0;
    h_save_error();
    CHECK(st == ORS_ERR_CONNECTION, "put without a free descriptor -> %s (want ORS_ERR_CONNECTION)", h_code_name(st));
    CHECK(took < 500, "it failed at once: %lld ms (op-timeout %d)", (long long)took, OP_TIMEOUT_MS);
    CHECK(strstr(h_saved_error(), "file descriptor") != NULL && strstr(h_saved_error(), "Too many open files") != NULL,
          "the message names the cause (\"%s\")", h_saved_error());
    CHECK(warnings - before <= 1, "at most one warning logged for it (%d)", warnings - before);
    t0 = h_now_ms();
    st = ors_session_get(id, &data, &len);
    took = h_now_ms() - t0;
    CHECK(st == ORS_ERR_CONNECTION && took < 500 && data == NULL,
          "get without a free descriptor -> %s in %lld ms", h_code_name(st), (long long)took);
    give_back(taken);

    CHECK_STATUS(ors_session_put(id, (const uint8_t *)"v", 1, 60), ORS_OK, "put with descriptors free again");
    st = CHECK_STATUS(ors_session_get(id, &data, &len), ORS_OK, "get");
    CHECK(st == ORS_OK && len == 1 && data && data[0] == 'v', "get reads the value put");
    ors_free(data);
    CHECK_STATUS(ors_session_del(id), ORS_OK, "del");
    CHECK_STATUS(ors_redis_set_logger(NULL, NULL), ORS_OK, "default logger again");
    CHECK_STATUS(ors_redis_shutdown(), ORS_OK, "shutdown");
    return h_done();
}
