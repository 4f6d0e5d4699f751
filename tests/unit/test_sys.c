/* test_sys: the raw system calls a spawning child makes (ex_sys.h) — they return what the
 * kernel returns, -errno on failure, and never write errno (the child shares the loop
 * thread's TLS). Run natively and, cross-built, on aarch64 under qemu (scripts/test). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "ex_sys.h"

static void test_values_and_errors(void **state)
{
    (void)state;
    assert_int_equal(ex_sys(SYS_getpid, 0, 0, 0), getpid());
    errno = 1234;
    assert_int_equal(ex_sys(SYS_close, -1, 0, 0), -EBADF);
    assert_int_equal(ex_sys6(SYS_openat, AT_FDCWD, (long)"/nonexistent/x", O_RDONLY, 0, 0, 0), -ENOENT);
    if (EX_SYS_RAW)
        assert_int_equal(errno, 1234); /* untouched */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(ex_sys(SYS_write, p[1], "abc", 3), 3);
    char buf[4] = { 0 };
    assert_int_equal(ex_sys(SYS_read, p[0], buf, sizeof buf), 3);
    assert_string_equal(buf, "abc");
    /* Six arguments reach the kernel: dup3's flags, and fcntl's. */
    long fd = ex_sys(SYS_dup3, p[0], 100, O_CLOEXEC);
    assert_int_equal(fd, 100);
    assert_int_equal(ex_sys(SYS_fcntl, 100, F_GETFD, 0), FD_CLOEXEC);
    close(100), close(p[0]), close(p[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_and_errors),
    };
    return cmocka_run_group_tests_name("sys", tests, NULL, NULL);
}
