/*
 * A loopback TCP server in a thread of the test program, for what a real
 * Redis never does: a node that accepts and then never answers, or a port
 * that answers a TLS client in plain text.
 *
 *   struct fake_server s;
 *   if (fake_server_start(&s, NULL) == 0) { ... s.port ...; fake_server_stop(&s); }
 *
 * reply == NULL: accept and keep every connection open, silent (up to 64).
 * reply != NULL: read once (the request, ignored), write `reply`, close.
 * The thread polls every 100 ms and gives up after 60 s: always bounded.
 */
#ifndef ORS_FAKE_SERVER_H
#define ORS_FAKE_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct fake_server {
    int listen_fd;
    int port;
    const char *reply;
    int stop;     /* under lock */
    int accepted; /* under lock */
    pthread_mutex_t lock;
    pthread_t thread;
};

static void *fake_server_run(void *arg)
{
    struct fake_server *s = (struct fake_server *)arg;
    int kept[64];
    int n = 0, i, loops;
    for (loops = 0; loops < 600; loops++) {
        struct pollfd p;
        int stop, c;
        pthread_mutex_lock(&s->lock);
        stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (stop) break;
        p.fd = s->listen_fd;
        p.events = POLLIN;
        p.revents = 0;
        if (poll(&p, 1, 100) <= 0 || (!s->reply && n == 64)) continue;
        c = accept(s->listen_fd, NULL, NULL);
        if (c < 0) continue;
        if (s->reply) {
            char buf[512];
            if (read(c, buf, sizeof buf) < 0) { /* the request, ignored */
            }
            if (write(c, s->reply, strlen(s->reply)) < 0) {
            }
            close(c);
        } else {
            kept[n++] = c;
        }
        pthread_mutex_lock(&s->lock);
        s->accepted++;
        pthread_mutex_unlock(&s->lock);
    }
    for (i = 0; i < n; i++) close(kept[i]);
    return NULL;
}

/* Listens on 127.0.0.1 (a free port, in s->port) and starts the thread;
 * 0 on success. */
static int fake_server_start(struct fake_server *s, const char *reply)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    memset(s, 0, sizeof *s);
    s->reply = reply;
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->listen_fd < 0) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->listen_fd, 16) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&a, &alen) != 0) {
        close(s->listen_fd);
        return -1;
    }
    s->port = ntohs(a.sin_port);
    pthread_mutex_init(&s->lock, NULL);
    if (pthread_create(&s->thread, NULL, fake_server_run, s) != 0) {
        pthread_mutex_destroy(&s->lock);
        close(s->listen_fd);
        return -1;
    }
    return 0;
}

/* How many connections it accepted so far. */
static int fake_server_accepted(struct fake_server *s)
{
    int n;
    pthread_mutex_lock(&s->lock);
    n = s->accepted;
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void fake_server_stop(struct fake_server *s)
{
    pthread_mutex_lock(&s->lock);
    s->stop = 1;
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    pthread_mutex_destroy(&s->lock);
}

#endif
