/* ex_sys.h: raw system calls for a child that shares the daemon's memory.
 *
 * A child cloned with CLONE_VM runs on the daemon's memory and with its thread pointer,
 * so glibc's wrappers would write their errno into the thread that cloned it — the loop
 * thread, running at the same time (ex_spawn.c clones without CLONE_VFORK). These return
 * -errno instead and touch nothing but registers. EX_SYS_RAW says they exist for this
 * architecture; elsewhere ex_spawn falls back to a child that the clone waits for. */
#ifndef EX_SYS_H
#define EX_SYS_H

#include <sys/syscall.h>

#if defined(__x86_64__)
#define EX_SYS_RAW 1
static inline long ex_sys6(long n, long a, long b, long c, long d, long e, long f)
{
    long ret;
    register long r10 __asm__("r10") = d;
    register long r8 __asm__("r8") = e;
    register long r9 __asm__("r9") = f;
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}
#elif defined(__aarch64__)
#define EX_SYS_RAW 1
static inline long ex_sys6(long n, long a, long b, long c, long d, long e, long f)
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    register long x4 __asm__("x4") = e;
    register long x5 __asm__("x5") = f;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3), "r"(x4), "r"(x5) : "memory", "cc");
    return x0;
}
#else
#define EX_SYS_RAW 0
#include <errno.h>
#include <unistd.h>
/* Through glibc: safe only while the cloning thread is suspended (CLONE_VFORK). */
static inline long ex_sys6(long n, long a, long b, long c, long d, long e, long f)
{
    long r = syscall(n, a, b, c, d, e, f);
    return r < 0 ? -errno : r;
}
#endif

#define ex_sys(n, a, b, c) ex_sys6((n), (long)(a), (long)(b), (long)(c), 0, 0, 0)

#endif
