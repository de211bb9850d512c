/* tunnel_rate.c: fresh CONNECT tunnels per second, each carrying one small GET.
 *
 * One epoll loop keeps CONCURRENCY connections in flight. Each one:
 *   connect to HOST:PORT -> "CONNECT TARGET" -> read "HTTP/1.x 200" head ->
 *   "GET PATH" with Connection: close -> read the response to EOF -> close.
 * With "direct" the CONNECT step is skipped (HOST:PORT is then the origin itself).
 * A completion counts only if both answers were 200 and the response was read to EOF.
 * Completions inside the SECONDS window are counted; the loop ends after SECONDS
 * (in-flight connections are dropped), so the run is bounded in time.
 *
 * With "latency" the same line ends with latency figures of the completed connections, in
 * microseconds from the start of the TCP connect:
 *   ready_p50_us ready_p99_us: until the GET could be sent (the proxy's "200" read; direct: TCP connected),
 *   ttfb_p50_us ttfb_p99_us ttfb_max_us: until the first byte of the GET's response arrived.
 *
 * Built at run time by run.sh and egress.sh: cc -O2 -o tunnel_rate tunnel_rate.c
 * Usage: tunnel_rate HOST PORT TARGET_HOST:PORT PATH CONCURRENCY SECONDS [direct] [latency]
 * Output (one line): ok=N errors=N err_connect=N err_proxy=N err_response=N err_timeout=N seconds=S rate=R
 *   with "latency" followed by: ready_p50_us=U ready_p99_us=U ttfb_p50_us=U ttfb_p99_us=U ttfb_max_us=U
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state { S_FREE, S_CONNECTING, S_READ_CONNECT, S_READ_RESPONSE };

struct conn {
    int fd;
    enum state st;
    double deadline;
    size_t head_len; /* bytes of the CONNECT answer / response head kept in head[] */
    size_t total;    /* response bytes read */
    int status_ok;   /* response status line was 200 */
    double t_start;  /* connect() called */
    double t_ready;  /* GET sent: CONNECT answered 200 (direct: TCP connected) */
    double t_first;  /* first response byte, 0 until then */
    char head[1024];
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct sockaddr_in addr;
static int epfd;
static int direct_mode;
static char connect_req[512];
static size_t connect_req_len;
static char get_req[1024];
static size_t get_req_len;
static long ok, err_connect, err_proxy, err_response, err_timeout;
static const double conn_timeout_s = 5.0;

/* Latency samples (microseconds) of completed connections, kept only with "latency". */
struct samples { double *v; size_t n, cap; };
static int latency_mode;
static struct samples lat_ready, lat_ttfb;

static void sample_add(struct samples *s, double us) {
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 4096;
        double *v = realloc(s->v, cap * sizeof *v);
        if (!v) return; /* out of memory: drop the sample */
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = us;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* nearest-rank percentile of sorted samples; 0 when there are none */
static double pct(const struct samples *s, double p) {
    if (s->n == 0) return 0;
    size_t rank = (size_t)(p * (double)s->n + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > s->n) rank = s->n;
    return s->v[rank - 1];
}

static void record_ok(const struct conn *c) {
    ok++;
    if (!latency_mode) return;
    sample_add(&lat_ready, (c->t_ready - c->t_start) * 1e6);
    sample_add(&lat_ttfb, (c->t_first - c->t_start) * 1e6);
}

static void conn_close(struct conn *c) {
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->st = S_FREE;
}

static int send_all(int fd, const char *p, size_t n) {
    /* Requests are small and the socket is fresh: one send() takes them whole. */
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    return w == (ssize_t)n ? 0 : -1;
}

static void conn_start(struct conn *c, size_t idx) {
    memset(c, 0, sizeof *c);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) { err_connect++; c->st = S_FREE; c->fd = -1; return; }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->t_start = now_s();
    c->deadline = c->t_start + conn_timeout_s;
    int r = connect(c->fd, (struct sockaddr *)&addr, sizeof addr);
    if (r < 0 && errno != EINPROGRESS) { err_connect++; conn_close(c); return; }
    c->st = S_CONNECTING;
    struct epoll_event ev = {.events = EPOLLOUT, .data.u64 = idx};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
}

static void want_read(struct conn *c, size_t idx) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = idx};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static int status_is_200(const char *p, size_t n) {
    return n >= 12 && (memcmp(p, "HTTP/1.1 200", 12) == 0 || memcmp(p, "HTTP/1.0 200", 12) == 0);
}

static void start_get(struct conn *c) {
    c->st = S_READ_RESPONSE;
    c->head_len = 0;
    c->total = 0;
    c->status_ok = 0;
}

/* returns 1 when the connection finished (closed), 0 to keep going */
static int on_event(struct conn *c, size_t idx, unsigned events) {
    if (c->st == S_CONNECTING) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) { err_connect++; conn_close(c); return 1; }
        if (direct_mode) {
            if (send_all(c->fd, get_req, get_req_len) < 0) { err_connect++; conn_close(c); return 1; }
            c->t_ready = now_s();
            start_get(c);
        } else {
            if (send_all(c->fd, connect_req, connect_req_len) < 0) { err_connect++; conn_close(c); return 1; }
            c->st = S_READ_CONNECT;
        }
        want_read(c, idx);
        return 0;
    }
    char buf[65536];
    for (int rounds = 0; rounds < 64; rounds++) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
            if (errno == EINTR) continue;
            if (c->st == S_READ_CONNECT) err_proxy++; else err_response++;
            conn_close(c);
            return 1;
        }
        if (n == 0) {
            if (c->st == S_READ_CONNECT) { err_proxy++; conn_close(c); return 1; }
            if (c->status_ok && c->total >= 1024) record_ok(c); else err_response++;
            conn_close(c);
            return 1;
        }
        if (c->st == S_READ_CONNECT) {
            size_t room = sizeof c->head - 1 - c->head_len;
            if ((size_t)n > room) { err_proxy++; conn_close(c); return 1; }
            memcpy(c->head + c->head_len, buf, (size_t)n);
            c->head_len += (size_t)n;
            c->head[c->head_len] = 0;
            char *end = strstr(c->head, "\r\n\r\n");
            if (!end) continue;
            if (!status_is_200(c->head, c->head_len) || end + 4 != c->head + c->head_len) {
                err_proxy++; conn_close(c); return 1;
            }
            if (send_all(c->fd, get_req, get_req_len) < 0) { err_response++; conn_close(c); return 1; }
            c->t_ready = now_s();
            start_get(c);
            continue;
        }
        /* S_READ_RESPONSE: keep the first bytes for the status line, count the rest */
        if (c->t_first == 0) c->t_first = now_s();
        if (c->head_len < 12) {
            size_t take = 12 - c->head_len;
            if (take > (size_t)n) take = (size_t)n;
            memcpy(c->head + c->head_len, buf, take);
            c->head_len += take;
            if (c->head_len == 12) c->status_ok = status_is_200(c->head, 12);
        }
        c->total += (size_t)n;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: %s HOST PORT TARGET_HOST:PORT PATH CONCURRENCY SECONDS [direct] [latency]\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]);
    const char *target = argv[3];
    const char *path = argv[4];
    int conc = atoi(argv[5]);
    double seconds = atof(argv[6]);
    for (int i = 7; i < argc; i++) {
        if (strcmp(argv[i], "direct") == 0) direct_mode = 1;
        else if (strcmp(argv[i], "latency") == 0) latency_mode = 1;
        else { fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
    }
    if (conc < 1 || conc > 10000 || seconds <= 0 || seconds > 3600) { fprintf(stderr, "bad arguments\n"); return 2; }

    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) { fprintf(stderr, "bad host %s\n", host); return 2; }
    connect_req_len = (size_t)snprintf(connect_req, sizeof connect_req,
                                       "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target);
    get_req_len = (size_t)snprintf(get_req, sizeof get_req,
                                   "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, target);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    struct conn *conns = calloc((size_t)conc, sizeof *conns);
    struct epoll_event *evs = calloc((size_t)conc, sizeof *evs);
    if (epfd < 0 || !conns || !evs) { perror("setup"); return 1; }

    double start = now_s();
    double end = start + seconds;
    for (int i = 0; i < conc; i++) conn_start(&conns[i], (size_t)i);

    double t = start;
    while (t < end) {
        int n = epoll_wait(epfd, evs, conc, 50);
        t = now_s();
        if (t >= end) break;
        for (int i = 0; i < n; i++) {
            size_t idx = (size_t)evs[i].data.u64;
            struct conn *c = &conns[idx];
            if (c->st == S_FREE) continue;
            if (on_event(c, idx, evs[i].events)) conn_start(c, idx);
        }
        for (int i = 0; i < conc; i++) {
            struct conn *c = &conns[i];
            if (c->st == S_FREE) {
                conn_start(c, (size_t)i); /* socket() failed earlier: retry */
            } else if (t > c->deadline) {
                err_timeout++;
                conn_close(c);
                conn_start(c, (size_t)i);
            }
        }
    }
    double elapsed = now_s() - start;
    if (elapsed > seconds) elapsed = seconds;
    for (int i = 0; i < conc; i++) conn_close(&conns[i]);
    long errors = err_connect + err_proxy + err_response + err_timeout;
    printf("ok=%ld errors=%ld err_connect=%ld err_proxy=%ld err_response=%ld err_timeout=%ld seconds=%.3f rate=%.1f",
           ok, errors, err_connect, err_proxy, err_response, err_timeout, elapsed, (double)ok / elapsed);
    if (latency_mode) {
        qsort(lat_ready.v, lat_ready.n, sizeof(double), cmp_double);
        qsort(lat_ttfb.v, lat_ttfb.n, sizeof(double), cmp_double);
        printf(" ready_p50_us=%.0f ready_p99_us=%.0f ttfb_p50_us=%.0f ttfb_p99_us=%.0f ttfb_max_us=%.0f",
               pct(&lat_ready, 0.50), pct(&lat_ready, 0.99), pct(&lat_ttfb, 0.50), pct(&lat_ttfb, 0.99),
               pct(&lat_ttfb, 1.0));
    }
    printf("\n");
    free(conns);
    free(evs);
    free(lat_ready.v);
    free(lat_ttfb.v);
    return 0;
}
