/* cp_utf8: text the daemon sends is valid UTF-8. Clients decode strings as text (Python's
 * msgpack does by default, and then cannot decode the whole message at all), so one name
 * with bytes ff fe once made every `list` that showed it unreadable, root's included.
 * Fields that must be text are checked when they arrive (cp_val_str); bytes Unix allows
 * anywhere (a program's argv) are shown with the invalid ones escaped; and text is cut
 * only where a character starts. Strict RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF. */
#ifndef CP_UTF8_H
#define CP_UTF8_H

#include <stdbool.h>
#include <stddef.h>

bool cp_utf8_valid(const char *s, size_t n);
/* The longest prefix of s (valid UTF-8, n bytes) of at most max bytes that ends where a
 * character does. Inline: the scheduler cuts stored text too, without the library. */
static inline size_t cp_utf8_cut(const char *s, size_t n, size_t max)
{
    if (n <= max)
        return n;
    while (max && ((unsigned char)s[max] & 0xc0) == 0x80)
        max--;
    return max;
}
/* Writes s as valid UTF-8 into out (cap > 0 bytes, NUL-terminated): valid characters as
 * they are, each byte of an invalid sequence as the four characters \xNN. Stops, at a
 * character's end, before it would need more than cap - 1 bytes. Returns the bytes
 * written; *whole (if not NULL) says whether all of s fit. */
size_t cp_utf8_escape(char *out, size_t cap, const char *s, size_t n, bool *whole);

#endif
