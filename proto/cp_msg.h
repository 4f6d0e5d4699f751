/* cp_msg: MessagePack-RPC messages — requests, responses, notifications — and typed,
 * validated access to a params map. Every validation failure fills a cp_error whose
 * message names the field and what was wrong with it. No sockets, no loop. */
#ifndef CP_MSG_H
#define CP_MSG_H

#include <msgpack.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cp_out.h"

enum { CP_REQUEST = 0, CP_RESPONSE = 1, CP_NOTIFICATION = 2 };

/* Error codes of the contract. */
#define CP_BAD_REQUEST "bad_request"
#define CP_UNKNOWN_METHOD "unknown_method"
#define CP_NOT_FOUND "not_found"
#define CP_PERMISSION_DENIED "permission_denied"
#define CP_TOO_LARGE "too_large"
#define CP_QUOTA_EXCEEDED "quota_exceeded"
#define CP_INVALID_STATE "invalid_state"
#define CP_SHUTTING_DOWN "shutting_down"
#define CP_INTERNAL "internal"
#define CP_UNAVAILABLE "unavailable" /* the store cannot save a change now (a full disk) */

typedef struct cp_error {
    const char *code;  /* one of the codes above */
    char message[256];
} cp_error;

/* Fill err and return -EINVAL (printf-style message). The message is made valid UTF-8
 * (bytes that are not are escaped as \xNN) and cut where a character ends. */
int cp_fail(cp_error *err, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4), cold));
int cp_vfail(cp_error *err, const char *code, const char *fmt, va_list ap) __attribute__((cold));

/* A string inside a decoded message (not NUL-terminated; lives as long as the message). */
typedef struct cp_str {
    const char *ptr;
    uint32_t len;
} cp_str;

bool cp_str_eq(cp_str s, const char *lit);

typedef struct cp_request {
    bool has_msgid; /* false when none could be read: the error reply carries nil */
    uint32_t msgid;
    cp_str method;
    const msgpack_object *params; /* the params map; NULL for [] */
} cp_request;

/* A request: [0, msgid, method, params] with params [] or [map]. */
int cp_request_parse(const msgpack_object *o, cp_request *r, cp_error *err);

/* Responses and notifications, as a client reads them. */
typedef struct cp_incoming {
    int type;                     /* CP_RESPONSE or CP_NOTIFICATION */
    uint32_t msgid;               /* response */
    const msgpack_object *error;  /* response: nil or a map */
    const msgpack_object *result; /* response */
    cp_str method;                /* notification */
    const msgpack_object *params; /* notification: its map */
} cp_incoming;
int cp_incoming_parse(const msgpack_object *o, cp_incoming *in, cp_error *err);

/* ---- params: each getter returns 1 when present and valid, 0 when absent (or nil) and
 * not required, -EINVAL with err filled otherwise ---- */
const msgpack_object *cp_get(const msgpack_object *map, const char *key);
/* A number (int or float) as a double; NAN for anything else, or NULL. */
double cp_num(const msgpack_object *o);
/* Several fields in one pass over the map: out[j] is keys[j]'s value, NULL when absent or
 * nil (at most 32 keys). A request's handful of fields against a dozen known names is
 * one walk instead of a dozen. */
void cp_get_fields(const msgpack_object *map, const char *const *keys, size_t n, const msgpack_object **out);

/* Validation of one field's value `o` (NULL: absent), named `key` in errors. */
int cp_val_uint(const msgpack_object *o, const char *key, bool required, uint64_t min, uint64_t max,
                uint64_t *out, cp_error *err);
int cp_val_int(const msgpack_object *o, const char *key, bool required, int64_t min, int64_t max,
               int64_t *out, cp_error *err);
/* Seconds: a finite number (int or float) within [min, max]. */
int cp_val_seconds(const msgpack_object *o, const char *key, bool required, double min, double max,
                   double *out, cp_error *err);
int cp_val_str(const msgpack_object *o, const char *key, bool required, uint32_t maxlen, cp_str *out,
               cp_error *err);
int cp_val_bool(const msgpack_object *o, const char *key, bool required, bool *out, cp_error *err);
/* Any value a client hands over to be given back (a sleep's result): it nests at most
 * max_depth levels (a scalar is 0), and its strings, map keys included, are UTF-8. */
int cp_val_value(const msgpack_object *o, const char *key, unsigned max_depth, cp_error *err);
/* An array of task ids (each 1..CP_MAX_ID), at most `max` of them. *out points into a
 * malloc'd array the caller frees. */
int cp_val_ids(const msgpack_object *o, const char *key, bool required, size_t max, uint64_t **out, size_t *n,
               cp_error *err);

/* The same, looking the field up in a map. */
static inline int cp_get_uint(const msgpack_object *map, const char *key, bool required, uint64_t min,
                              uint64_t max, uint64_t *out, cp_error *err)
{
    return cp_val_uint(cp_get(map, key), key, required, min, max, out, err);
}
static inline int cp_get_int(const msgpack_object *map, const char *key, bool required, int64_t min, int64_t max,
                             int64_t *out, cp_error *err)
{
    return cp_val_int(cp_get(map, key), key, required, min, max, out, err);
}
static inline int cp_get_seconds(const msgpack_object *map, const char *key, bool required, double min,
                                 double max, double *out, cp_error *err)
{
    return cp_val_seconds(cp_get(map, key), key, required, min, max, out, err);
}
static inline int cp_get_str(const msgpack_object *map, const char *key, bool required, uint32_t maxlen,
                             cp_str *out, cp_error *err)
{
    return cp_val_str(cp_get(map, key), key, required, maxlen, out, err);
}
static inline int cp_get_bool(const msgpack_object *map, const char *key, bool required, bool *out,
                              cp_error *err)
{
    return cp_val_bool(cp_get(map, key), key, required, out, err);
}
static inline int cp_get_ids(const msgpack_object *map, const char *key, bool required, size_t max,
                             uint64_t **out, size_t *n, cp_error *err)
{
    return cp_val_ids(cp_get(map, key), key, required, max, out, n, err);
}

#define CP_MAX_ID ((uint64_t)INT64_MAX)

/* ---- writing ---- */
/* Append already-packed MessagePack bytes. */
void cp_pack_raw(msgpack_packer *pk, const void *bytes, size_t len);
void cp_pack_str(msgpack_packer *pk, const char *s);
void cp_pack_strn(msgpack_packer *pk, const char *s, size_t len);
/* [0, msgid, method, [<the caller packs one map>]] */
void cp_pack_request(msgpack_packer *pk, uint32_t msgid, const char *method);

/* The server's side writes with cp_out (see cp_out.h for why). */
/* [1, msgid, nil, <the caller packs the result>] */
void cp_pack_response_ok(cp_out *o, uint32_t msgid);
/* [1, msgid|nil, {code, message}, nil] */
void cp_pack_response_error(cp_out *o, bool has_msgid, uint32_t msgid, const char *code, const char *message);
/* [2, method, [<the caller packs one map>]] */
void cp_pack_notification(cp_out *o, const char *method);

#endif
