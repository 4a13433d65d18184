/*
 * members.h - membership changes as mtrctl and mtrsql's .add-server,
 * .promote-server, .remove-server make them (doc/mtrctl.1): a change
 * asked again while the refusal may pass (another change pending, no
 * leader, the learner not caught up), and add-server's whole procedure.
 * Progress goes to out, errors to stderr prefixed with `who`.
 */
#ifndef MTR_SHELL_MEMBERS_H
#define MTR_SHELL_MEMBERS_H

#include <stdint.h>
#include <stdio.h>

#include "metronome.h"

/* Instances a learner may lag the voters (mtr_members) when promoted. */
#define MEMBERS_CAUGHT_UP 50

/* op 'a' (add addr; its id into *new_id), 'p' (promote id), 'r' (remove
 * id), asked again every 500 ms while refused for the moment, for at most
 * wait_s seconds.  0 done, 1 refused or failed, 3 outcome unknown. */
int members_change(mtr *db, int op, const char *addr, uint32_t id, uint32_t *new_id, double wait_s, FILE *out,
		   const char *who);

/* add-server: add addr as a learner, then (unless learner) wait until it
 * has caught up and make it a voter.  Returns as members_change. */
int members_add(mtr *db, const char *addr, int learner, double wait_s, FILE *out, const char *who);

#endif
