/* cf: corod's settings — every command-line option, the same names in the configuration
 * file (/etc/corod/corod.conf, corod.conf(5)), and the file's predefined groups.
 *
 * One table of options serves both: an option is checked the same way whether it comes
 * from the command line or the file, and the command line wins over the file. A file is
 * read whole into a fresh cf_config before anything of it is used, so a bad file (at
 * start, or at a reload) changes nothing, and its first error says its line and why. */
#ifndef CF_H
#define CF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srv.h"
#include "st_store.h"

#define CF_SYSTEM_PATH "/etc/corod/corod.conf"
#define CF_MAX_GROUPS 1024u /* groups one file may define */
#define CF_MAX_OPTIONS 64u
#define CF_MAX_LINE 65536 /* bytes of one line of the file, its end included */

typedef struct cf_group {
    char *name;
    srv_group_conf conf; /* conf.name and conf.users point into this entry */
    uint32_t *users;
    unsigned line; /* where its section starts */
} cf_group;

typedef struct cf_config {
    char *socket, *state;
    srv_config srv;   /* socket_path and the listeners are main's to fill */
    st_config st;
    int nice;
    bool no_store, no_cgroups;
    cf_group *groups;
    size_t ngroups;
    /* The text each option was last set from (NULL: never), to tell what a reload
     * changed; indexed like the table. */
    char *given[CF_MAX_OPTIONS];
} cf_config;

/* The defaults, as corod has them with no option at all. */
void cf_init(cf_config *c);
void cf_free(cf_config *c);

/* The command line: every option of the table, --config, --help and --version. With
 * `apply`, options are set in c; without, only --config is looked for (*config_path,
 * NULL when not given) and nothing is said of others. 0; 1 when --help or --version was
 * answered (on stdout); -EINVAL after saying what is wrong (usage errors). */
int cf_parse_args(cf_config *c, int argc, char **argv, bool apply, const char **config_path);

/* The file at path, into c (over what c holds). 0; -ENOENT when it does not exist (and
 * c is unchanged); -EINVAL with "path:line: reason" in err. */
int cf_load(cf_config *c, const char *path, char *err, size_t errlen);

/* Where the configuration is by default: CF_SYSTEM_PATH for root, else
 * $XDG_CONFIG_HOME/corod/corod.conf or ~/.config/corod/corod.conf. NULL: none. */
char *cf_default_path(void);

/* Checks that span options (--max-result against --max-output), and fills what is
 * derived from them. -EINVAL with err. */
int cf_finish(cf_config *c, char *err, size_t errlen);

/* Options whose value differs between a and b and that only take effect at a start:
 * called with each one's name. */
void cf_changed_at_start(const cf_config *a, const cf_config *b, void (*fn)(const char *name, void *arg),
                         void *arg);

extern const char cf_usage[];

#endif
