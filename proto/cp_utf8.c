/* cp_utf8.c: UTF-8 checks, cuts and escapes (cp_utf8.h says where they are needed). */
#include "cp_utf8.h"

#include <stdint.h>
#include <string.h>

/* The length of the valid character at s (n > 0 bytes left), or 0 when s does not start
 * one. The table of well-formed sequences is RFC 3629's (section 4). */
static size_t cp_utf8_char(const uint8_t *s, size_t n)
{
    uint8_t b = s[0];
    if (b < 0x80)
        return 1;
    size_t len;
    uint8_t lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (b >= 0xc2 && b <= 0xdf)
        len = 2;
    else if (b >= 0xe0 && b <= 0xef) {
        len = 3;
        if (b == 0xe0)
            lo = 0xa0; /* overlong */
        else if (b == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (b >= 0xf0 && b <= 0xf4) {
        len = 4;
        if (b == 0xf0)
            lo = 0x90; /* overlong */
        else if (b == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else
        return 0;
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

bool cp_utf8_valid(const char *s, size_t n)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;
    while (i < n) {
        while (i < n && p[i] < 0x80) /* ASCII runs, the common case */
            i++;
        if (i == n)
            break;
        size_t c = cp_utf8_char(p + i, n - i);
        if (!c)
            return false;
        i += c;
    }
    return true;
}

size_t cp_utf8_escape(char *out, size_t cap, const char *s, size_t n, bool *whole)
{
    static const char hex[] = "0123456789abcdef";
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0, o = 0;
    while (i < n) {
        size_t c = cp_utf8_char(p + i, n - i);
        size_t need = c ? c : 4;
        if (o + need > cap - 1)
            break;
        if (c) {
            memcpy(out + o, p + i, c);
        } else {
            out[o] = '\\', out[o + 1] = 'x', out[o + 2] = hex[p[i] >> 4], out[o + 3] = hex[p[i] & 15];
            c = 1;
        }
        o += need;
        i += c;
    }
    out[o] = '\0';
    if (whole)
        *whole = i == n;
    return o;
}
