/* bench_ipc: corod over its socket, against a bare C Unix-socket ping-pong and a small
 * asyncio msgpack-RPC server (peers/asyncio_rpc_server.py), in one command.
 *   ipc.*.pipelined_1conn_per_s   submits of sleep-0 tasks, pipelined on one connection
 *                                 (a writer thread sends, the reader counts answers)
 *   ipc.*.pipelined_Kconn_per_s   the same over K connections at once
 *   ipc.*.done_p50_us / p99_us    submit → task.done, one task in flight (subscribe all),
 *                                 the server on another CPU than the client (see placement)
 *   ipc.*.pingpong_p50_us         the C ping-pong below, placed alike, alternating with the
 *                                 latency run in blocks of 500 round trips
 *   ipc.*.done_over_pingpong      done_p50 / that ping-pong, per run; the median
 *   ipc.*.same_cpu.*              the same three with server and client on one CPU
 *   ipc.pingpong_p50_us / p99_us  a 64-byte echo over a Unix socket between two
 *                                 processes, as client and daemon are: the floor
 *   ipc.pingpong_threads_p50_us   the same between two threads of one process (shown
 *                                 for scale)
 *   ipc.pingpong_epoll_p50_us     the same, the echo side waiting in epoll_wait as an
 *                                 event-loop server does (shown for scale)
 *   ipc.pingpong_epoll_workNns_*  that echo spinning N ns per message
 *   ipc.wake.*                    epoll echoes on another CPU that consume a message before
 *                                 answering or peek, answer, then consume (as corod does),
 *                                 with no work and 1000 ns; the ratios peek / consume
 *   ipc.underload.*               one connection pipelines requests as fast as the server
 *                                 takes them (corod: sleep-0 submits; Redis: SET) while a
 *                                 second times round trips (hello; PING): p50/p99, and
 *                                 corod's p50 over Redis's, measured in the same run
 *                                 (with --redis, or /usr/bin/redis-server when installed)
 * --corod-nice N runs corod with --nice N (its default otherwise).
 * Usage: bench_ipc --corod PATH [--corod-nice N] [--peer SCRIPT] [--redis PATH] [--n N] [--conns K]
 *        [--lat N] [--runs R] [--json] */
#include <errno.h>
#include <sched.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include <msgpack.h>

#include "bench_util.h"
#include "cp_decode.h"
#include "cp_frame.h"
#include "cp_msg.h"
#include "cp_out.h"

static int connect_to(const char *path)
{
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, path, sizeof a.sun_path - 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0)
        return fd;
    if (fd >= 0)
        close(fd);
    return -1;
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            perror("bench_ipc: write");
            exit(1);
        }
        p += w;
        n -= (size_t)w;
    }
}

/* A message reader, as the daemon reads (cp_next), into a zone reused from message to
 * message. The object lives until the next call. */
typedef struct reader {
    int fd;
    char *buf;
    size_t len, off, cap;
    cp_frame f;
    msgpack_zone z;
    msgpack_object obj;
} reader;

static void reader_init(reader *r, int fd)
{
    memset(r, 0, sizeof *r);
    r->fd = fd;
    r->cap = 1 << 20;
    r->buf = malloc(r->cap);
    cp_frame_init(&r->f, 0);
    msgpack_zone_init(&r->z, MSGPACK_ZONE_CHUNK_SIZE);
}

static void reader_free(reader *r)
{
    free(r->buf);
    msgpack_zone_destroy(&r->z);
}

static const msgpack_object *reader_next(reader *r)
{
    msgpack_zone_clear(&r->z);
    for (;;) {
        if (r->off < r->len) {
            size_t used;
            int rc = cp_next(&r->f, (const uint8_t *)r->buf + r->off, r->len - r->off, &r->z, &r->obj, &used);
            r->off += used;
            if (rc == 1)
                return &r->obj;
            if (rc < 0) {
                fprintf(stderr, "bench_ipc: bad stream from the server\n");
                exit(1);
            }
        }
        memmove(r->buf, r->buf + r->off, r->len - r->off);
        r->len -= r->off;
        r->off = 0;
        ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
        if (n <= 0) {
            fprintf(stderr, "bench_ipc: server closed the connection\n");
            exit(1);
        }
        r->len += (size_t)n;
    }
}

/* [0, msgid, "submit", [{kind: "sleep", args: {seconds: 0.0}}]], packed as the daemon
 * packs (cp_out). */
static void pack_submit(cp_out *o, uint32_t msgid)
{
    uint8_t *p = cp_out_reserve(o, 64);
    if (!p) {
        fprintf(stderr, "bench_ipc: out of memory\n");
        exit(1);
    }
    p = cp_put_array(p, 4);
    p = cp_put_uint(p, CP_REQUEST);
    p = cp_put_uint(p, msgid);
    p = cp_put_lit(p, "submit");
    p = cp_put_array(p, 1);
    p = cp_put_map(p, 2);
    p = cp_put_lit(p, "kind");
    p = cp_put_lit(p, "sleep");
    p = cp_put_lit(p, "args");
    p = cp_put_map(p, 1);
    p = cp_put_lit(p, "seconds");
    p = cp_put_double(p, 0);
    cp_out_commit(o, p);
}

/* ---- pipelined submits ---- */

typedef struct pipe_job {
    const char *path;
    long n;
    int fd;
} pipe_job;

static void *pipe_writer(void *arg)
{
    pipe_job *j = arg;
    cp_out o;
    cp_out_init(&o);
    for (long i = 0; i < j->n; i++) {
        pack_submit(&o, (uint32_t)(i + 1));
        if (o.size >= 64 * 1024 || i == j->n - 1) {
            write_all(j->fd, (const char *)o.data, o.size);
            cp_out_clear(&o);
        }
    }
    cp_out_free(&o);
    return NULL;
}

static void *pipe_reader(void *arg)
{
    pipe_job *j = arg;
    reader r;
    reader_init(&r, j->fd);
    for (long got = 0; got < j->n;) {
        const msgpack_object *m = reader_next(&r);
        if (m->type != MSGPACK_OBJECT_ARRAY || m->via.array.ptr[0].via.u64 != 1)
            continue;
        if (m->via.array.ptr[2].type != MSGPACK_OBJECT_NIL) {
            fprintf(stderr, "bench_ipc: submit refused\n");
            exit(1);
        }
        got++;
    }
    reader_free(&r);
    return NULL;
}

static double run_pipelined(const char *path, long n, int conns)
{
    pipe_job jobs[64];
    pthread_t w[64], rd[64];
    for (int k = 0; k < conns; k++) {
        jobs[k] = (pipe_job){ path, n / conns, connect_to(path) };
        if (jobs[k].fd < 0) {
            fprintf(stderr, "bench_ipc: cannot connect to %s\n", path);
            exit(1);
        }
    }
    double t0 = bench_now();
    for (int k = 0; k < conns; k++) {
        pthread_create(&w[k], NULL, pipe_writer, &jobs[k]);
        pthread_create(&rd[k], NULL, pipe_reader, &jobs[k]);
    }
    for (int k = 0; k < conns; k++) {
        pthread_join(w[k], NULL);
        pthread_join(rd[k], NULL);
    }
    double rate = (double)(n / conns * conns) / (bench_now() - t0);
    for (int k = 0; k < conns; k++)
        close(jobs[k].fd);
    return rate;
}

/* ---- latency ---- */

static void percentiles(double *v, int n, double *p50, double *p99)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp);
    *p50 = v[n / 2];
    *p99 = v[(int)(n * 0.99)];
}

/* One connection subscribed to every task.done, submitting one sleep-0 task at a time. */
typedef struct done_client {
    int fd;
    reader r;
    cp_out out;
    uint32_t msgid;
} done_client;

static void done_open(done_client *d, const char *path)
{
    if ((d->fd = connect_to(path)) < 0) {
        fprintf(stderr, "bench_ipc: cannot connect to %s\n", path);
        exit(1);
    }
    reader_init(&d->r, d->fd);
    cp_out_init(&d->out);
    cp_out_array(&d->out, 4);
    cp_out_uint(&d->out, CP_REQUEST);
    cp_out_uint(&d->out, 1);
    cp_out_lit(&d->out, "subscribe");
    cp_out_array(&d->out, 1);
    cp_out_map(&d->out, 1);
    cp_out_lit(&d->out, "all");
    cp_out_bool(&d->out, true);
    write_all(d->fd, (const char *)d->out.data, d->out.size);
    reader_next(&d->r);
    d->msgid = 2;
}

/* Microseconds from the submit's write to its task.done. */
static double done_once(done_client *d)
{
    cp_out_clear(&d->out);
    pack_submit(&d->out, d->msgid++);
    double t0 = bench_now();
    write_all(d->fd, (const char *)d->out.data, d->out.size);
    /* The response names the task; then its notification. Notifications of earlier
     * tasks (a previous run's, still ending) must not count. */
    uint64_t id = 0;
    for (;;) {
        const msgpack_object *m = reader_next(&d->r);
        const msgpack_object *a = m->via.array.ptr;
        if (a[0].via.u64 == 1 && a[3].type == MSGPACK_OBJECT_MAP) {
            id = cp_get(&a[3], "id")->via.u64;
        } else if (a[0].via.u64 == 2 && id) {
            const msgpack_object *task = cp_get(&a[2].via.array.ptr[0], "task");
            if (cp_get(task, "id")->via.u64 == id)
                break;
        }
    }
    return (bench_now() - t0) * 1e6;
}

static void done_close(done_client *d)
{
    cp_out_free(&d->out);
    reader_free(&d->r);
    close(d->fd);
}

/* ---- the floor: a bare Unix-socket ping-pong ---- */

static void *echo_thread(void *arg)
{
    int fd = *(int *)arg;
    char b[64];
    for (;;) {
        ssize_t n = read(fd, b, sizeof b);
        if (n <= 0)
            return NULL;
        write_all(fd, b, (size_t)n);
    }
}

/* Nanoseconds of work the epoll echo does between its read and its write: how latency
 * grows with a server's own time per request (on some VMs, far faster than the work). */
static long echo_work_ns;

static void echo_work(void)
{
    if (!echo_work_ns)
        return;
    double until = bench_now() + (double)echo_work_ns / 1e9;
    while (bench_now() < until) {
    }
}

/* Whether the epoll echo reads as corod does: peek at the message, answer, and only then
 * consume it (daemon/server/srv_sock.h says why). */
static bool echo_peek;

/* The echo of an event-loop server: wait in epoll, then read and write. */
static void *echo_epoll(void *arg)
{
    int fd = *(int *)arg, ep = epoll_create1(0);
    struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    char b[64];
    for (;;) {
        if (epoll_wait(ep, &ev, 1, -1) < 1)
            continue;
        ssize_t n = recv(fd, b, sizeof b, echo_peek ? MSG_PEEK : 0);
        if (n <= 0)
            break;
        echo_work();
        write_all(fd, b, (size_t)n);
        if (echo_peek && recv(fd, b, (size_t)n, 0) != n)
            break;
    }
    close(ep);
    return NULL;
}

/* ---- placement ----
 * On a machine with few CPUs the scheduler decides whether a server runs beside its
 * client or on another CPU, and that alone moves a round trip by a third (a server on
 * the client's CPU needs no cross-CPU wake-up; here, 2 vCPUs, 15 against 24 us). So the
 * latency runs place both sides themselves: the client on one CPU, the server — corod,
 * the asyncio peer or the echo — on another ("cross"), or all on the client's ("same").
 * Outside the latency runs nothing is pinned. */

static int online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* pid 0: the calling thread. cpu < 0: every CPU again. */
static void pin(pid_t pid, int cpu)
{
    cpu_set_t cs;
    CPU_ZERO(&cs);
    if (cpu >= 0) {
        CPU_SET(cpu, &cs);
    } else {
        for (int i = 0; i < online_cpus() && i < CPU_SETSIZE; i++)
            CPU_SET(i, &cs);
    }
    if (sched_setaffinity(pid, sizeof cs, &cs) < 0)
        perror("bench_ipc: sched_setaffinity");
}

/* A 64-byte echo partner. processes: 0 a thread, 1 a process, 2 a process waiting in epoll. */
typedef struct pingpong {
    int sv[2];
    int processes;
    pid_t child;
    pthread_t t;
} pingpong;

/* echo_cpu >= 0: the echo process runs there. */
static void pingpong_open(pingpong *p, int processes, int echo_cpu)
{
    p->processes = processes;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, p->sv) < 0) {
        perror("bench_ipc: socketpair");
        exit(1);
    }
    if (processes) {
        if ((p->child = fork()) == 0) {
            close(p->sv[0]);
            if (echo_cpu >= 0)
                pin(0, echo_cpu);
            (processes == 2 ? echo_epoll : echo_thread)(&p->sv[1]);
            _exit(0);
        }
    } else {
        pthread_create(&p->t, NULL, echo_thread, &p->sv[1]);
    }
}

/* Microseconds for one round trip. */
static double pingpong_once(pingpong *p)
{
    char b[64] = { 0 };
    double t0 = bench_now();
    write_all(p->sv[0], b, sizeof b);
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t k = read(p->sv[0], b + got, sizeof b - got);
        if (k <= 0)
            exit(1);
        got += (size_t)k;
    }
    return (bench_now() - t0) * 1e6;
}

static void pingpong_close(pingpong *p)
{
    close(p->sv[0]);
    if (p->processes)
        waitpid(p->child, NULL, 0);
    else
        pthread_join(p->t, NULL);
    close(p->sv[1]);
}

static void run_pingpong(int n, int processes, double *p50, double *p99)
{
    pingpong p;
    pingpong_open(&p, processes, -1);
    double *lat = malloc((size_t)n * sizeof *lat);
    for (int i = 0; i < n; i++)
        lat[i] = pingpong_once(&p);
    pingpong_close(&p);
    percentiles(lat, n, p50, p99);
    free(lat);
}

/* submit -> task.done and the bare C ping-pong, alternating in blocks of LAT_BLOCK round
 * trips: the shared host's speed drifts within seconds, and both sides of the ratio must
 * see the same host. */
#define LAT_BLOCK 500

/* server_cpu < 0: nothing pinned (a machine with one CPU). */
static void run_latency_pair(const char *path, pid_t server, int client_cpu, int server_cpu, int n, double *p50,
                             double *p99, double *pp50, double *pp99)
{
    done_client d;
    pingpong p;
    if (server_cpu >= 0) {
        pin(0, client_cpu);
        pin(server, server_cpu);
    }
    done_open(&d, path);
    pingpong_open(&p, 1, server_cpu);
    double *lat = malloc((size_t)n * sizeof *lat), *pp = malloc((size_t)n * sizeof *pp);
    for (int i = 0; i < n; i += LAT_BLOCK) {
        int end = i + LAT_BLOCK < n ? i + LAT_BLOCK : n;
        for (int j = i; j < end; j++)
            pp[j] = pingpong_once(&p);
        for (int j = i; j < end; j++)
            lat[j] = done_once(&d);
    }
    pingpong_close(&p);
    done_close(&d);
    if (server_cpu >= 0) {
        pin(0, -1);
        pin(server, -1);
    }
    percentiles(lat, n, p50, p99);
    percentiles(pp, n, pp50, pp99);
    free(lat);
    free(pp);
}

/* How the echo's way of reading moves a round trip: consuming the message before the
 * answer (as read() does) against peeking, answering, then consuming (as corod does),
 * each with no work and with WAKE_WORK_NS per message; client and echoes on different
 * CPUs, alternating in blocks like the latency pair. */
#define WAKE_KINDS 4
#define WAKE_WORK_NS 1000

static void run_wake(int n, double p50[WAKE_KINDS])
{
    pingpong p[WAKE_KINDS];
    double *lat[WAKE_KINDS], p99;
    for (int k = 0; k < WAKE_KINDS; k++) {
        echo_peek = k & 1;
        echo_work_ns = k & 2 ? WAKE_WORK_NS : 0;
        pingpong_open(&p[k], 2, 1);
        lat[k] = malloc((size_t)n * sizeof *lat[k]);
    }
    echo_peek = false;
    echo_work_ns = 0;
    pin(0, 0);
    for (int i = 0; i < n; i += LAT_BLOCK)
        for (int k = 0; k < WAKE_KINDS; k++)
            for (int j = i; j < i + LAT_BLOCK && j < n; j++)
                lat[k][j] = pingpong_once(&p[k]);
    pin(0, -1);
    /* Last opened first: each echo holds the client ends of those forked before it. */
    for (int k = WAKE_KINDS - 1; k >= 0; k--) {
        pingpong_close(&p[k]);
        percentiles(lat[k], n, &p50[k], &p99);
        free(lat[k]);
    }
}

static void report_wake(int lat, int runs)
{
    static const char *names[WAKE_KINDS] = { "consume_first", "peek_first", "consume_first_work1000ns",
                                             "peek_first_work1000ns" };
    double p50[WAKE_KINDS][32], ratio[2][32];
    for (int r = 0; r < runs; r++) {
        double one[WAKE_KINDS];
        run_wake(lat, one);
        for (int k = 0; k < WAKE_KINDS; k++)
            p50[k][r] = one[k];
        ratio[0][r] = one[1] / one[0];
        ratio[1][r] = one[3] / one[2];
    }
    char name[96];
    for (int k = 0; k < WAKE_KINDS; k++) {
        snprintf(name, sizeof name, "ipc.wake.%s_p50_us", names[k]);
        bench_report(name, bench_median(p50[k], runs),
                     k & 1 ? "us (epoll echo on another CPU: peek, answer, then consume)"
                           : "us (epoll echo on another CPU: read, then answer)");
    }
    bench_report("ipc.wake.peek_over_consume", bench_median(ratio[0], runs), "x (median of the per-run ratios)");
    bench_report("ipc.wake.peek_over_consume_work1000ns", bench_median(ratio[1], runs),
                 "x (the same, echoes spinning 1000 ns per message)");
}

/* ---- a round trip while another connection pipelines ---- */

typedef struct load {
    int fd;
    bool redis;
    volatile bool stop;
} load;

static const char redis_set[] = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n";

static void *load_writer(void *arg)
{
    load *l = arg;
    cp_out o;
    cp_out_init(&o);
    uint32_t id = 0;
    while (!l->stop) {
        while (o.size < 64 * 1024) {
            if (l->redis) {
                uint8_t *p = cp_out_reserve(&o, sizeof redis_set - 1);
                memcpy(p, redis_set, sizeof redis_set - 1);
                cp_out_commit(&o, p + sizeof redis_set - 1);
            } else {
                pack_submit(&o, ++id);
            }
        }
        ssize_t off = 0;
        while (off < (ssize_t)o.size && !l->stop) {
            ssize_t w = write(l->fd, o.data + off, o.size - (size_t)off);
            if (w < 0 && errno != EINTR)
                goto out;
            off += w > 0 ? w : 0;
        }
        cp_out_clear(&o);
    }
out:
    cp_out_free(&o);
    return NULL;
}

static void *load_reader(void *arg)
{
    load *l = arg;
    char buf[65536];
    while (!l->stop && read(l->fd, buf, sizeof buf) > 0) {
    }
    return NULL;
}

/* p50 and p99 of n round trips on a second connection, while a first one pipelines at
 * full speed: corod's hello or Redis's PING. */
static void run_underload(const char *path, bool redis, int n, double *p50, double *p99)
{
    load l = { connect_to(path), redis, false };
    int fd = connect_to(path);
    if (l.fd < 0 || fd < 0) {
        fprintf(stderr, "bench_ipc: cannot connect to %s\n", path);
        exit(1);
    }
    pthread_t w, r;
    pthread_create(&w, NULL, load_writer, &l);
    pthread_create(&r, NULL, load_reader, &l);
    usleep(200000); /* the load is in full swing */
    double *v = malloc((size_t)n * sizeof *v);
    cp_out o;
    cp_out_init(&o);
    reader rd;
    reader_init(&rd, fd);
    for (int i = 0; i < n; i++) {
        double t0 = bench_now();
        if (redis) {
            write_all(fd, "*1\r\n$4\r\nPING\r\n", 14);
            char pong[7];
            for (size_t got = 0; got < sizeof pong;) {
                ssize_t k = read(fd, pong + got, sizeof pong - got);
                if (k <= 0) {
                    fprintf(stderr, "bench_ipc: redis closed the connection\n");
                    exit(1);
                }
                got += (size_t)k;
            }
        } else {
            cp_out_clear(&o);
            uint8_t *p = cp_out_reserve(&o, 16);
            p = cp_put_array(p, 4);
            p = cp_put_uint(p, CP_REQUEST);
            p = cp_put_uint(p, (uint32_t)i);
            p = cp_put_lit(p, "hello");
            p = cp_put_array(p, 0);
            cp_out_commit(&o, p);
            write_all(fd, (const char *)o.data, o.size);
            reader_next(&rd);
        }
        v[i] = (bench_now() - t0) * 1e6;
    }
    l.stop = true;
    shutdown(l.fd, SHUT_RDWR);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    close(l.fd);
    reader_free(&rd);
    cp_out_free(&o);
    close(fd);
    percentiles(v, n, p50, p99);
    free(v);
}

/* ---- servers ---- */

static pid_t start_server(char *const argv[], const char *sock)
{
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, STDERR_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        int fd = connect_to(sock);
        if (fd >= 0) {
            close(fd);
            return pid;
        }
        usleep(10000);
    }
    fprintf(stderr, "bench_ipc: %s did not start\n", argv[0]);
    exit(1);
}

static void stop_server(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

static void report_latency(const char *label, const char *where, double *p50s, double *p99s, double *pp50,
                           double *ratio, int runs)
{
    char name[96];
    snprintf(name, sizeof name, "ipc.%s.%sdone_p50_us", label, where);
    bench_report(name, bench_median(p50s, runs), "us (submit -> task.done)");
    snprintf(name, sizeof name, "ipc.%s.%sdone_p99_us", label, where);
    bench_report(name, bench_median(p99s, runs), "us");
    snprintf(name, sizeof name, "ipc.%s.%spingpong_p50_us", label, where);
    bench_report(name, bench_median(pp50, runs), "us (C ping-pong, in blocks alternating with the latency run)");
    snprintf(name, sizeof name, "ipc.%s.%sdone_over_pingpong", label, where);
    bench_report(name, bench_median(ratio, runs), "x (median of the per-run ratios)");
}

static void bench_server(const char *label, char *const argv[], const char *sock, long n, int conns, int lat,
                         int runs)
{
    pid_t pid = start_server(argv, sock);
    double one[32], many[32];
    double p50s[2][32], p99s[2][32], pp50[2][32], pp99[2][32], ratio[2][32];
    bool placed = online_cpus() >= 2;
    run_pipelined(sock, n / 10, 1); /* warm up */
    for (int r = 0; r < runs; r++) {
        one[r] = run_pipelined(sock, n, 1);
        many[r] = run_pipelined(sock, n, conns);
        /* [0]: the server on another CPU than the client; [1]: on the client's. */
        for (int w = 0; w < (placed ? 2 : 1); w++) {
            run_latency_pair(sock, pid, 0, placed ? w == 0 : -1, lat, &p50s[w][r], &p99s[w][r], &pp50[w][r],
                             &pp99[w][r]);
            ratio[w][r] = p50s[w][r] / pp50[w][r];
        }
    }
    stop_server(pid);
    char name[96];
    snprintf(name, sizeof name, "ipc.%s.pipelined_1conn_per_s", label);
    bench_report(name, bench_median(one, runs), "submits/s");
    snprintf(name, sizeof name, "ipc.%s.pipelined_%dconn_per_s", label, conns);
    bench_report(name, bench_median(many, runs), "submits/s");
    report_latency(label, "", p50s[0], p99s[0], pp50[0], ratio[0], runs);
    if (placed)
        report_latency(label, "same_cpu.", p50s[1], p99s[1], pp50[1], ratio[1], runs);
}

int main(int argc, char **argv)
{
    bench_parse_common(argc, argv);
    const char *corod = NULL, *corod_nice = NULL, *peer = NULL, *redis = NULL;
    long n = 200000;
    int conns = 4, lat = 5000, runs = 3;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--corod") && i + 1 < argc)
            corod = argv[++i];
        else if (!strcmp(argv[i], "--corod-nice") && i + 1 < argc) {
            corod_nice = argv[++i];
            char *end;
            long v = strtol(corod_nice, &end, 10);
            if (end == corod_nice || *end || v < -20 || v > 19) {
                fprintf(stderr, "bench_ipc: --corod-nice must be a whole number from -20 to 19, not \"%s\"\n", corod_nice);
                return 2;
            }
        }
        else if (!strcmp(argv[i], "--peer") && i + 1 < argc)
            peer = argv[++i];
        else if (!strcmp(argv[i], "--redis") && i + 1 < argc)
            redis = argv[++i];
        else if (!strcmp(argv[i], "--n") && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "--conns") && i + 1 < argc)
            conns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--lat") && i + 1 < argc)
            lat = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--json")) {
            fprintf(stderr, "usage: bench_ipc --corod PATH [--corod-nice N] [--peer SCRIPT] [--redis PATH] [--n N]"
                            " [--conns K] [--lat N] [--runs R] [--json]\n");
            return 2;
        }
    }
    if (!corod || n < 100 || conns < 1 || conns > 64 || lat < 100 || runs < 1 || runs > 31) {
        fprintf(stderr, "bench_ipc: need --corod PATH; --n >= 100, --conns 1..64, --lat >= 100, --runs 1..31\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    char dir[] = "/tmp/corod-bench-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char sock[128], state[128], psock[128];
    snprintf(sock, sizeof sock, "%s/corod.sock", dir);
    snprintf(state, sizeof state, "%s/state", dir);
    snprintf(psock, sizeof psock, "%s/peer.sock", dir);

    printf("# ipc: %ld pipelined submits per run (%d connections for the multi figure), %d latency samples, median of %d runs\n",
           n, conns, lat, runs);
    double pp50[32], pp99[32], tp50[32], tp99[32], ep50[32], ep99[32];
    for (int r = 0; r < runs; r++) {
        run_pingpong(lat, 1, &pp50[r], &pp99[r]);
        run_pingpong(lat, 0, &tp50[r], &tp99[r]);
        run_pingpong(lat, 2, &ep50[r], &ep99[r]);
    }
    bench_report("ipc.pingpong_p50_us", bench_median(pp50, runs), "us (64-byte echo, bare C, two processes)");
    bench_report("ipc.pingpong_p99_us", bench_median(pp99, runs), "us");
    bench_report("ipc.pingpong_threads_p50_us", bench_median(tp50, runs), "us (the same, two threads)");
    bench_report("ipc.pingpong_epoll_p50_us", bench_median(ep50, runs), "us (the same, echo waits in epoll)");
    /* The same epoll echo doing some work per message: what a server's own time costs. */
    static const long work[] = { 500, 1000, 2500 };
    for (size_t w = 0; w < sizeof work / sizeof *work; w++) {
        double wp50[32], wp99[32];
        echo_work_ns = work[w];
        for (int r = 0; r < runs; r++)
            run_pingpong(lat, 2, &wp50[r], &wp99[r]);
        char name[96];
        snprintf(name, sizeof name, "ipc.pingpong_epoll_work%ldns_p50_us", work[w]);
        bench_report(name, bench_median(wp50, runs), "us (epoll echo spinning that long per message)");
    }
    echo_work_ns = 0;
    if (online_cpus() >= 2)
        report_wake(lat, runs);

    /* The server's own costs, without the store's commits (bench_store measures those). */
    char *cargv[] = { (char *)corod, "--socket", sock, "--state-dir", state, "--no-store", NULL, NULL, NULL };
    if (corod_nice) {
        cargv[6] = "--nice";
        cargv[7] = (char *)corod_nice;
    }
    bench_server("corod", cargv, sock, n, conns, lat, runs);
    if (!redis && access("/usr/bin/redis-server", X_OK) == 0)
        redis = "/usr/bin/redis-server";
    if (redis) {
        /* Each run: corod, then Redis (on a private socket, no persistence), alternating. */
        char rsock[160];
        snprintf(rsock, sizeof rsock, "%s/redis.sock", dir);
        char *rargv[] = { (char *)redis, "--port", "0", "--unixsocket", rsock, "--save", "", "--appendonly", "no",
                          NULL };
        double c50[32], c99[32], r50[32], r99[32], ratio[32];
        int m = lat < 2000 ? lat : 2000;
        for (int r = 0; r < runs; r++) {
            pid_t pid = start_server(cargv, sock);
            run_underload(sock, false, m, &c50[r], &c99[r]);
            stop_server(pid);
            pid = start_server(rargv, rsock);
            run_underload(rsock, true, m, &r50[r], &r99[r]);
            stop_server(pid);
            ratio[r] = c50[r] / r50[r];
        }
        bench_report("ipc.underload.corod_hello_p50_us", bench_median(c50, runs),
                     "us (another connection pipelining submits at full speed)");
        bench_report("ipc.underload.corod_hello_p99_us", bench_median(c99, runs), "us");
        bench_report("ipc.underload.redis_ping_p50_us", bench_median(r50, runs),
                     "us (another connection pipelining SETs at full speed)");
        bench_report("ipc.underload.redis_ping_p99_us", bench_median(r99, runs), "us");
        bench_report("ipc.underload.corod_over_redis", bench_median(ratio, runs),
                     "x (median of the per-run ratios of the p50s; target <= 2)");
    }
    if (peer) {
        char *pargv[] = { "/usr/bin/python3", (char *)peer, psock, NULL };
        /* asyncio is an order of magnitude slower: a tenth of the work keeps runs short. */
        bench_server("asyncio", pargv, psock, n / 10, conns, lat / 5, runs);
    }
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : 1;
}
