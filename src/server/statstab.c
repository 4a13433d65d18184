/*
 * statstab.c - the last counters of every process (statstab.h).
 *
 * A small table: an array of processes, each with an array of (name,
 * value, when) kept in arrival order and found by a linear scan.  There are
 * a few hundred names per process at most and a put happens once a second
 * per counter, so nothing faster is needed.
 */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metronome.h"
#include "statstab.h"

struct stat_ent {
	char name[WIRE_STAT_NAME_MAX + 1];
	uint64_t value;
	uint64_t when_ms;
};

struct proc {
	char name[STATSTAB_PROC_MAX];
	uint64_t heard_ms;
	struct stat_ent *e;
	unsigned n, cap;
};

struct statstab {
	pthread_mutex_t mu;
	struct proc p[STATSTAB_MAX_PROCS];
	unsigned n;
};

struct statstab *statstab_new(void)
{
	struct statstab *t = calloc(1, sizeof *t);
	if (t)
		pthread_mutex_init(&t->mu, NULL);
	return t;
}

static void proc_clear(struct proc *p)
{
	free(p->e);
	memset(p, 0, sizeof *p);
}

void statstab_free(struct statstab *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < t->n; i++)
		proc_clear(&t->p[i]);
	pthread_mutex_destroy(&t->mu);
	free(t);
}

/* The process called name, or a new one (evicting the least recently heard
 * when full).  Called with the lock held. */
static struct proc *proc_get(struct statstab *t, const char *name, uint64_t now_ms)
{
	for (unsigned i = 0; i < t->n; i++)
		if (strcmp(t->p[i].name, name) == 0)
			return &t->p[i];
	struct proc *p;
	if (t->n < STATSTAB_MAX_PROCS) {
		p = &t->p[t->n++];
	} else {
		p = &t->p[0];
		for (unsigned i = 1; i < t->n; i++)
			if (t->p[i].heard_ms < p->heard_ms)
				p = &t->p[i];
		proc_clear(p);
	}
	snprintf(p->name, sizeof p->name, "%s", name);
	p->heard_ms = now_ms;
	return p;
}

int statstab_put(struct statstab *t, const char *proc, const char *name, unsigned name_len, uint64_t value,
		 uint64_t now_ms)
{
	if (name_len > WIRE_STAT_NAME_MAX)
		name_len = WIRE_STAT_NAME_MAX;
	int rc = 0;
	pthread_mutex_lock(&t->mu);
	struct proc *p = proc_get(t, proc, now_ms);
	p->heard_ms = now_ms;
	struct stat_ent *e = NULL;
	for (unsigned i = 0; i < p->n; i++)
		if (strncmp(p->e[i].name, name, name_len) == 0 && p->e[i].name[name_len] == 0) {
			e = &p->e[i];
			break;
		}
	if (e == NULL && p->n < STATSTAB_MAX_NAMES) {
		if (p->n == p->cap) {
			unsigned cap = p->cap ? p->cap * 2 : 64;
			struct stat_ent *v = realloc(p->e, cap * sizeof *v);
			if (v == NULL) {
				rc = MTR_ENOMEM;
				goto out;
			}
			p->e = v;
			p->cap = cap;
		}
		e = &p->e[p->n++];
		memcpy(e->name, name, name_len);
		e->name[name_len] = 0;
	}
	if (e) {
		e->value = value;
		e->when_ms = now_ms;
	}
out:
	pthread_mutex_unlock(&t->mu);
	return rc;
}

static void remove_at(struct statstab *t, unsigned i)
{
	proc_clear(&t->p[i]);
	t->p[i] = t->p[--t->n];
	memset(&t->p[t->n], 0, sizeof t->p[t->n]);
}

void statstab_forget(struct statstab *t, const char *proc)
{
	pthread_mutex_lock(&t->mu);
	for (unsigned i = 0; i < t->n; i++)
		if (strcmp(t->p[i].name, proc) == 0) {
			remove_at(t, i);
			break;
		}
	pthread_mutex_unlock(&t->mu);
}

void statstab_expire(struct statstab *t, uint64_t now_ms, uint64_t max_age_ms)
{
	pthread_mutex_lock(&t->mu);
	for (unsigned i = 0; i < t->n;)
		if (now_ms > max_age_ms && t->p[i].heard_ms < now_ms - max_age_ms)
			remove_at(t, i);
		else
			i++;
	pthread_mutex_unlock(&t->mu);
}

static int cmp_proc(const void *a, const void *b)
{
	const struct proc *x = *(const struct proc *const *)a, *y = *(const struct proc *const *)b;
	return strcmp(x->name, y->name);
}

int statstab_fill(struct statstab *t, uint64_t now_ms, struct clustervt_sink *sink)
{
	int rc = 0;
	pthread_mutex_lock(&t->mu);
	const struct proc *order[STATSTAB_MAX_PROCS];
	for (unsigned i = 0; i < t->n; i++)
		order[i] = &t->p[i];
	qsort(order, t->n, sizeof order[0], cmp_proc);
	for (unsigned i = 0; i < t->n && rc == 0; i++) {
		const struct proc *p = order[i];
		for (unsigned k = 0; k < p->n && rc == 0; k++) {
			const struct stat_ent *e = &p->e[k];
			struct wire_value row[4] = {
				{ .type = WIRE_V_TEXT, .u.b = { (const uint8_t *)p->name, (uint32_t)strlen(p->name) } },
				{ .type = WIRE_V_TEXT, .u.b = { (const uint8_t *)e->name, (uint32_t)strlen(e->name) } },
				{ .type = WIRE_V_INT, .u.i = (int64_t)e->value },
				{ .type = WIRE_V_INT, .u.i = now_ms > e->when_ms ? (int64_t)(now_ms - e->when_ms) : 0 },
			};
			rc = clustervt_sink_row(sink, row, 4);
		}
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}
