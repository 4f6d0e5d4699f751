/* kind_limits: an exec's limits, read from its args. */
#ifndef KIND_LIMITS_H
#define KIND_LIMITS_H

#include "ex_limits.h"
#include "kind.h"

/* Fills l from args (umask, rlimits, memory_max, pids_max, cpu_weight, cpu_quota): 0, or
 * -EINVAL with err — also for a limit that needs a cgroup controller env->cgroups has
 * not got (it would not be kept). */
int kind_limits_parse(const msgpack_object *args, const kind_env *env, ex_limits *l, cp_error *err);

#endif
