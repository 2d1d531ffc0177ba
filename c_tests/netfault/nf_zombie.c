/*
 * nf_zombie.c blackhole|sigstop - a call that returned an error never takes
 * effect later (API.md, "A failed call never takes effect later").
 *
 * Two threads each hold a connection to master M. The path to M fails
 * (blackhole: the client's packets to M and M's replies dropped; sigstop: M
 * frozen, its kernel still accepting the requests into its socket buffers),
 * thread A puts v2 over v1 and thread B deletes its session: both must
 * return an error. The path heals, A puts v3 and B re-creates its session
 * (v3), both acknowledged; for 20 s the sessions must keep v3. A library
 * that closes a connection it gave up on gracefully leaves the request in
 * the kernel's send queue, retransmitted once the path is back: v2 (and the
 * delete) then land after v3.
 *
 * sigstop: the requests sit in M's receive buffer, where no client action
 * can withdraw them: M applies them when it thaws, after the calls returned.
 * The program prints whether that happened; what it asserts is that the
 * acknowledged v3 stays (M applies the buffered requests before it can
 * accept v3's connection).
 */
#include "netfault.h"

#define WATCH_MS 20000
#define TTL 600

enum { STEP_IDLE, STEP_V1, STEP_FAIL, STEP_V3, STEP_EXIT };

struct side {
    pthread_t th;
    int is_del; /* B: its failing call is a del */
    char id[64];
    uint32_t tag;
    int step, done; /* main sets step, the thread sets done = step when it finished it */
    int32_t st[STEP_EXIT];
    int64_t t0[STEP_EXIT], t1[STEP_EXIT];
    char error[STEP_EXIT][256];
};

static void *side_main(void *arg)
{
    struct side *s = (struct side *)arg;
    int step;
    while ((step = chaos_load(&s->step)) != STEP_EXIT) {
        if (step == STEP_IDLE || chaos_load(&s->done) == step) {
            h_sleep_ms(1);
            continue;
        }
        s->t0[step] = chaos_now_us();
        if (step == STEP_FAIL && s->is_del) s->st[step] = ors_session_del(s->id);
        else s->st[step] = chaos_put(s->id, s->tag, step == STEP_V1 ? 1 : step == STEP_FAIL ? 2 : 3, TTL);
        s->t1[step] = chaos_now_us();
        snprintf(s->error[step], sizeof s->error[step], "%s", s->st[step] < 0 ? ors_last_error() : "");
        chaos_store(&s->done, step);
    }
    return NULL;
}

/* Runs `step` on both sides at once; 1 when both finished within limit_ms. */
static int run_step(struct side *s, int step, long limit_ms)
{
    int64_t end = h_now_ms() + limit_ms;
    chaos_store(&s[0].step, step);
    chaos_store(&s[1].step, step);
    while ((chaos_load(&s[0].done) != step || chaos_load(&s[1].done) != step) && h_now_ms() < end) h_sleep_ms(1);
    return chaos_load(&s[0].done) == step && chaos_load(&s[1].done) == step;
}

/* What a get of the side's session shows: its seq, 0 when there is none,
 * -1 on an error or bytes that are not one of its values. */
static long seen(const struct side *s)
{
    int valid;
    uint32_t seq;
    int32_t st = chaos_get(s->id, s->tag, &valid, &seq);
    if (st == ORS_NOT_FOUND) return 0;
    return (st == ORS_OK && valid) ? (long)seq : -1;
}

static const char *describe(long v)
{
    return v == 0 ? "no session" : v == 1 ? "v1" : v == 2 ? "v2" : v == 3 ? "v3" : "an error";
}

int main(int argc, char **argv)
{
    static struct chaos_topo topo;
    struct side s[2];
    const char *variant = argc > 1 ? argv[1] : "blackhole";
    int sigstop = strcmp(variant, "sigstop") == 0, i, m, ok;
    long op_timeout = sigstop ? 1000 : 2000, bound = op_timeout + NF_SLACK_MS, after[2], first_bad_v[2] = {0, 0};
    long bad[2] = {0, 0}, reads = 0;
    int64_t t_fault = 0, t_heal = 0, first_bad_at[2] = {0, 0};
    long pid = 0;

    h_begin(sigstop ? "nf_zombie sigstop" : "nf_zombie blackhole");
    if (!sigstop && strcmp(variant, "blackhole") != 0) {
        fprintf(stderr, "usage: %s blackhole|sigstop\n", argv[0]);
        return 2;
    }
    if (!(m = nf_begin(&topo, "nfzombie", op_timeout, ""))) return h_done();
    if (sigstop) {
        /* No failover while M is frozen: that would move v3 elsewhere. */
        for (i = 0; i < CHAOS_NODES; i++)
            chaos_sh("%s -p %d CONFIG SET cluster-node-timeout 15000 >/dev/null", h_env("REDIS_CLI", "redis-cli"),
                     chaos_base_port() + i);
        pid = chaos_node_pid(m);
        CHECK(pid > 0, "pid of the victim (%ld)", pid);
    }

    memset(s, 0, sizeof s);
    for (i = 0; i < 2; i++) {
        long n;
        s[i].is_del = i == 1;
        for (n = 0; n < CHAOS_PLACE_TRIES; n++) {
            snprintf(s[i].id, sizeof s[i].id, "%ld-zombie-%s-%ld", (long)getpid(), i ? "del" : "put", n);
            if (topo.owner[chaos_slot(s[i].id)] == m) break;
        }
        s[i].tag = chaos_tag(s[i].id);
        if (pthread_create(&s[i].th, NULL, side_main, &s[i]) != 0) {
            CHECK(0, "thread start");
            return h_done();
        }
    }

    ok = run_step(s, STEP_V1, 10000);
    CHECK(ok && s[0].st[STEP_V1] == ORS_OK && s[1].st[STEP_V1] == ORS_OK,
          "both threads put v1 (their connections to M are open): %s, %s", h_code_name(s[0].st[STEP_V1]),
          h_code_name(s[1].st[STEP_V1]));

    if (sigstop) {
        CHECK(chaos_signal_pid(pid, SIGSTOP, &t_fault), "M frozen (SIGSTOP)");
    } else {
        CHECK(nf_blackhole_client(m), "path to M blackholed (DROP both ways, client traffic only)");
        t_fault = chaos_now_us();
    }
    ok = run_step(s, STEP_FAIL, 60000);
    for (i = 0; i < 2; i++) {
        long ms = (long)((s[i].t1[STEP_FAIL] - s[i].t0[STEP_FAIL]) / 1000);
        printf("# FIGURE zombie %s: the %s during the fault returned %s after %ld ms (%s)\n", variant,
               i ? "del" : "put of v2", h_code_name(s[i].st[STEP_FAIL]), ms, s[i].error[STEP_FAIL]);
        CHECK(s[i].st[STEP_FAIL] < 0 && ms <= bound, "the %s failed within op-timeout + %d ms", i ? "del" : "put of v2",
              NF_SLACK_MS);
    }
    CHECK(ok, "both calls returned (bounded wait)");

    h_sleep_ms(300);
    if (sigstop) {
        kill((pid_t)pid, SIGCONT);
    } else {
        nf_heal();
    }
    t_heal = chaos_now_us();
    h_sleep_ms(200);
    after[0] = seen(&s[0]);
    after[1] = seen(&s[1]);
    printf("# FIGURE zombie %s: 200 ms after the heal, A's session shows %s, B's shows %s\n", variant,
           describe(after[0]), describe(after[1]));
    if (!sigstop)
        CHECK(after[0] == 1 && after[1] == 1,
              "the blackholed calls had no effect (M never received them): both sessions still show v1");
    if (sigstop)
        printf("# FIGURE zombie sigstop: the failed put %s applied after it returned, the failed del %s\n",
               after[0] == 2 ? "WAS" : "was not", after[1] == 0 ? "WAS" : "was not");

    ok = run_step(s, STEP_V3, 10000);
    CHECK(ok && s[0].st[STEP_V3] == ORS_OK && s[1].st[STEP_V3] == ORS_OK,
          "after the heal, A puts v3 and B re-creates its session (v3): %s, %s", h_code_name(s[0].st[STEP_V3]),
          h_code_name(s[1].st[STEP_V3]));

    /* Watch: the acknowledged v3 must stay. */
    {
        int64_t end = h_now_ms() + WATCH_MS;
        while (h_now_ms() < end) {
            for (i = 0; i < 2; i++) {
                long v = seen(&s[i]);
                if (v == 3 || v < 0) continue; /* errors are not the question here */
                if (bad[i]++ == 0) {
                    first_bad_at[i] = chaos_now_us();
                    first_bad_v[i] = v;
                }
            }
            reads++;
            h_sleep_ms(20);
        }
    }
    for (i = 0; i < 2; i++) {
        if (bad[i])
            printf("# FIGURE zombie %s: %s's session showed %s instead of v3 %.2f s after the heal (%ld of %ld reads)\n",
                   variant, i ? "B" : "A", describe(first_bad_v[i]), (first_bad_at[i] - t_heal) / 1e6, bad[i], reads);
        else
            printf("# FIGURE zombie %s: %s's session kept v3 for %d s after the heal (%ld reads)\n", variant,
                   i ? "B" : "A", WATCH_MS / 1000, reads);
        CHECK(bad[i] == 0, "%s: the acknowledged v3 stayed for %d s after the heal (no zombie %s)", i ? "B" : "A",
              WATCH_MS / 1000, i ? "del" : "put");
    }
    (void)t_fault;

    chaos_store(&s[0].step, STEP_EXIT);
    chaos_store(&s[1].step, STEP_EXIT);
    pthread_join(s[0].th, NULL);
    pthread_join(s[1].th, NULL);
    ors_redis_shutdown();
    return h_done();
}
