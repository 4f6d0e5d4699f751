/* fuzz_server: libFuzzer over the server itself — a real corod server (srv_new) on a loop
 * in this process, fed each input as the bytes of one connection: framing, dispatch,
 * every method, the task table, waits, subscriptions, groups, turns and backpressure.
 * Tasks and groups made by one input stay for the next, as they would in a daemon, and
 * the per-uid bounds keep them in check.
 *
 * Besides "no crash, no leak, no UB", it checks what every client relies on: each reply
 * is one well-formed MessagePack object, within the nesting clients decode, whose strings
 * are all UTF-8. `exec` is not available here (CORO_FUZZ): a fuzzer must not run the
 * programs it makes up; fuzz_proto covers its validation. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "co.h"
#include "cp_decode.h"
#include "cp_frame.h"
#include "cp_utf8.h"
#include "srv.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static co_sched *sched;
static srv *server;
static char sock_path[128];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    signal(SIGPIPE, SIG_IGN);
    static char dir[] = "/tmp/corod-fuzz-XXXXXX";
    if (!mkdtemp(dir))
        abort();
    char outdir[128];
    snprintf(sock_path, sizeof sock_path, "%s/corod.sock", dir);
    snprintf(outdir, sizeof outdir, "%s/output", dir);
    if (mkdir(outdir, 0700) < 0)
        abort();
    uv_loop_init(&loop);
    if (co_sched_new(&loop, NULL, &sched) < 0)
        abort();
    /* Small bounds, so that inputs reach them: a tenth of a second for a message, 16 KiB
     * of output unread, 1,000 tasks and 16 groups per uid. */
    srv_config cfg = {
        .socket_path = sock_path, .socket_mode = 0600, .max_output = 16384, .message_timeout = 0.1,
        .limits = { .output_dir = outdir, .max_active_per_uid = 1000, .retain = 1000, .max_uid_groups = 16 },
    };
    char err[256];
    if (srv_new(&loop, sched, &cfg, &server, err, sizeof err) < 0) {
        fprintf(stderr, "fuzz_server: %s\n", err);
        abort();
    }
    return 0;
}

/* Strings UTF-8, nesting within what clients decode. Aborts otherwise. */
static void check_object(const msgpack_object *o, unsigned depth)
{
    if (depth > CP_MAX_DEPTH)
        abort();
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        if (!cp_utf8_valid(o->via.str.ptr, o->via.str.size))
            abort();
        break;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++)
            check_object(&o->via.array.ptr[i], depth + 1);
        break;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            check_object(&o->via.map.ptr[i].key, depth + 1);
            check_object(&o->via.map.ptr[i].val, depth + 1);
        }
        break;
    default:
        break;
    }
}

/* Every reply in buf is a whole, well-formed message; returns the bytes of whole ones. */
static size_t check_replies(const uint8_t *buf, size_t len)
{
    cp_frame f;
    cp_frame_init(&f, 64u << 20);
    size_t off = 0;
    while (off < len) {
        msgpack_zone z;
        msgpack_zone_init(&z, MSGPACK_ZONE_CHUNK_SIZE);
        msgpack_object o;
        size_t used;
        int rc = cp_next(&f, buf + off, len - off, &z, &o, &used);
        if (rc < 0)
            abort(); /* a reply no client could read */
        if (rc == 0) {
            msgpack_zone_destroy(&z);
            break;
        }
        check_object(&o, 1);
        if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size < 3)
            abort(); /* neither a response nor a notification */
        msgpack_zone_destroy(&z);
        off += used;
        cp_frame_reset(&f);
    }
    return off;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    strncpy(a.sun_path, sock_path, sizeof a.sun_path - 1);
    if (fd < 0 || (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS))
        abort();
    static uint8_t *in;
    static size_t cap;
    size_t len = 0, sent = 0, checked = 0;
    /* Write as the server takes it, read everything it answers, until it has answered
     * all it will: a few turns of the loop with nothing new. */
    for (int idle = 0; idle < 4;) {
        bool moved = false;
        if (sent < size) {
            ssize_t w = send(fd, data + sent, size - sent, MSG_NOSIGNAL);
            if (w > 0) {
                sent += (size_t)w;
                moved = true;
            }
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        for (;;) {
            if (cap - len < 65536) {
                cap = cap ? cap * 2 : 1 << 20;
                if (!(in = realloc(in, cap)))
                    abort();
            }
            ssize_t r = recv(fd, in + len, cap - len, 0);
            if (r <= 0)
                break;
            len += (size_t)r;
            moved = true;
        }
        checked += check_replies(in + checked, len - checked);
        if (checked > (16u << 20)) { /* keep the buffer small across long answers */
            memmove(in, in + checked, len - checked);
            len -= checked;
            checked = 0;
        }
        idle = moved ? 0 : idle + 1;
    }
    close(fd);
    uv_run(&loop, UV_RUN_NOWAIT); /* the server sees the close */
    return 0;
}
