/* corod-slurm-prolog: the prolog corod gives the srun of each job of a Slurm group
 * (--prolog). srun runs it as the job's owner, on the machine corod runs on, once Slurm
 * has allocated the job and before its step starts, with the job's id and nodes in its
 * environment: it writes them as one line on descriptor 3, a pipe to corod. It succeeds
 * whatever happens — a prolog that fails aborts the job. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* corod gone or done reading: the job still runs */
    const char *id = getenv("SLURM_JOB_ID"), *nodes = getenv("SLURM_NODELIST");
    if (!nodes)
        nodes = getenv("SLURM_JOB_NODELIST");
    char line[4096];
    int n = snprintf(line, sizeof line, "%s %s\n", id ? id : "", nodes ? nodes : "");
    if (id && nodes && n > 0 && (size_t)n < sizeof line)
        (void)!write(3, line, (size_t)n); /* one write: the line arrives whole */
    return 0;
}
