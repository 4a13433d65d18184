/*
 * test_pstore.c - the durable acceptor state: persist/reopen round trip,
 * torn tails at every byte of the last record, a corrupt record in the
 * middle, compaction, group commit and memory mode, and a core that persists
 * through the store and gets its state back after a restart.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "metronome.h"
#include "paxos.h"
#include "pstore.h"

/* ---- helpers ---- */

struct fix {
	char dir[64];
	char log[128];
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof *f);
	assert_non_null(f);
	strcpy(f->dir, "/tmp/mtr-pstore-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->log, sizeof f->log, "%s/paxos/log", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char p[160];
	unlink(f->log);
	snprintf(p, sizeof p, "%s/paxos/log.tmp", f->dir);
	unlink(p);
	snprintf(p, sizeof p, "%s/paxos", f->dir);
	rmdir(p);
	rmdir(f->dir);
	free(f);
	return 0;
}

/* A one-range value; the range encodes tag so values differ. */
static struct batch val(uint64_t tag)
{
	struct batch b = { 0 };
	assert_int_equal(batch_push(&b, 1 + tag % 3, 1, 1 + tag), 0);
	return b;
}

static void put_promise(struct pstore *ps, uint64_t ballot)
{
	struct paxos_persist c = { .kind = PAXOS_PERSIST_PROMISE, .ballot = ballot };
	assert_int_equal(pstore_persist(ps, &c), 0);
}

static void put_accept(struct pstore *ps, uint64_t ballot, uint64_t inst, uint64_t tag)
{
	struct batch v = val(tag);
	struct paxos_persist c = { .kind = PAXOS_PERSIST_ACCEPT, .ballot = ballot, .inst = inst, .value = &v };
	assert_int_equal(pstore_persist(ps, &c), 0);
	batch_free(&v);
}

static void check_accept(struct pstore *ps, uint64_t inst, uint64_t ballot, uint64_t tag)
{
	uint64_t b = 0;
	const struct batch *v = NULL;
	assert_int_equal(pstore_get(ps, inst, &b, &v), 0);
	assert_int_equal(b, ballot);
	struct batch want = val(tag);
	assert_true(batch_equal(v, &want));
	batch_free(&want);
}

static off_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static uint8_t *file_read(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	uint8_t *b = malloc(1 << 20);
	assert_non_null(b);
	*len = fread(b, 1, 1 << 20, fp);
	fclose(fp);
	return b;
}

static void file_write(const char *path, const uint8_t *b, size_t len)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(b, 1, len, fp), len);
	fclose(fp);
}

/* ---- tests ---- */

static void test_round_trip(void **state)
{
	struct fix *f = *state;
	struct pstore *ps;
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	assert_int_equal(pstore_promised(ps), 0);
	assert_int_equal(pstore_count(ps), 0);
	put_promise(ps, 5);
	put_promise(ps, 9);
	put_promise(ps, 7); /* lower: the max wins */
	put_accept(ps, 5, 1, 10);
	put_accept(ps, 9, 1, 11);
	put_accept(ps, 7, 1, 12); /* lower ballot for inst 1: ignored */
	put_accept(ps, 3, 2, 20);
	put_accept(ps, 4, 7, 70);
	assert_int_equal(pstore_size(ps), (uint64_t)file_size(f->log));
	pstore_close(ps);

	assert_int_equal(pstore_open(f->dir, &ps), 0);
	assert_int_equal(pstore_promised(ps), 9);
	assert_int_equal(pstore_count(ps), 3);
	check_accept(ps, 1, 9, 11);
	check_accept(ps, 2, 3, 20);
	check_accept(ps, 7, 4, 70);
	uint64_t b;
	const struct batch *v;
	assert_int_equal(pstore_get(ps, 3, &b, &v), MTR_ENOENT);
	uint64_t inst;
	assert_int_equal(pstore_at(ps, 2, &inst, &b, &v), 0);
	assert_int_equal(inst, 7);
	assert_int_equal(pstore_at(ps, 3, &inst, &b, &v), MTR_EINVAL);
	/* An accept of a higher ballot raises the promise too. */
	put_accept(ps, 12, 8, 80);
	pstore_close(ps);
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	assert_int_equal(pstore_promised(ps), 12);
	check_accept(ps, 8, 12, 80);
	pstore_close(ps);
}

/* Membership (doc/paxos.md): an accepted value carrying a configuration
 * keeps it across a reopen and a compaction. */
static void test_conf_value(void **state)
{
	struct fix *f = *state;
	struct pstore *ps;
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	struct batch v = val(4);
	struct batch_conf c = { .n = 2, .m = { { .id = 0, .voter = 1, .addr = "127.0.0.1:7000" }, { .id = 3, .voter = 0 } } };
	assert_int_equal(batch_set_conf(&v, &c), 0);
	struct paxos_persist pc = { .kind = PAXOS_PERSIST_ACCEPT, .ballot = 6, .inst = 2, .value = &v };
	assert_int_equal(pstore_persist(ps, &pc), 0);
	put_accept(ps, 6, 3, 30);
	pstore_close(ps);
	for (int round = 0; round < 2; round++) {
		assert_int_equal(pstore_open(f->dir, &ps), 0);
		uint64_t b = 0;
		const struct batch *got = NULL;
		assert_int_equal(pstore_get(ps, 2, &b, &got), 0);
		assert_int_equal(b, 6);
		assert_true(batch_equal(got, &v));
		assert_non_null(got->conf);
		assert_string_equal(got->conf->m[0].addr, "127.0.0.1:7000");
		check_accept(ps, 3, 6, 30);
		if (round == 0)
			assert_int_equal(pstore_compact(ps, 1), 0); /* rewrites the log */
		pstore_close(ps);
	}
	batch_free(&v);
}

static void test_torn_tail_every_offset(void **state)
{
	struct fix *f = *state;
	struct pstore *ps;
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	put_promise(ps, 4);
	put_accept(ps, 4, 1, 1);
	uint64_t prefix = pstore_size(ps);
	put_accept(ps, 6, 2, 2); /* the last record: raises the promise to 6 */
	uint64_t full = pstore_size(ps);
	pstore_close(ps);
	size_t len;
	uint8_t *bytes = file_read(f->log, &len);
	assert_int_equal(len, full);

	for (uint64_t cut = prefix; cut < full; cut++) {
		file_write(f->log, bytes, (size_t)cut);
		assert_int_equal(pstore_open(f->dir, &ps), 0);
		assert_int_equal(pstore_size(ps), prefix);
		assert_int_equal(file_size(f->log), (off_t)prefix);
		assert_int_equal(pstore_promised(ps), 4);
		assert_int_equal(pstore_count(ps), 1);
		check_accept(ps, 1, 4, 1);
		put_accept(ps, 5, 3, 3); /* appends right after the prefix */
		pstore_close(ps);
		assert_int_equal(pstore_open(f->dir, &ps), 0);
		assert_int_equal(pstore_count(ps), 2);
		assert_int_equal(pstore_promised(ps), 5);
		check_accept(ps, 1, 4, 1);
		check_accept(ps, 3, 5, 3);
		uint64_t b;
		const struct batch *v;
		assert_int_equal(pstore_get(ps, 2, &b, &v), MTR_ENOENT);
		pstore_close(ps);
	}
	/* The intact file still recovers everything. */
	file_write(f->log, bytes, len);
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	assert_int_equal(pstore_count(ps), 2);
	assert_int_equal(pstore_promised(ps), 6);
	check_accept(ps, 2, 6, 2);
	pstore_close(ps);
	free(bytes);
}

static void test_flipped_byte_stops_recovery(void **state)
{
	struct fix *f = *state;
	struct pstore *ps;
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	put_accept(ps, 3, 1, 1);
	uint64_t first_end = pstore_size(ps);
	put_accept(ps, 3, 2, 2);
	uint64_t second_end = pstore_size(ps);
	put_accept(ps, 3, 3, 3);
	pstore_close(ps);
	size_t len;
	uint8_t *bytes = file_read(f->log, &len);
	/* Every byte of the middle record, flipped in turn. */
	for (uint64_t at = first_end; at < second_end; at++) {
		bytes[at] ^= 0x40;
		file_write(f->log, bytes, len);
		bytes[at] ^= 0x40;
		assert_int_equal(pstore_open(f->dir, &ps), 0);
		assert_int_equal(pstore_size(ps), first_end);
		assert_int_equal(file_size(f->log), (off_t)first_end);
		assert_int_equal(pstore_count(ps), 1);
		check_accept(ps, 1, 3, 1);
		pstore_close(ps);
	}
	free(bytes);
}

static void test_bad_magic(void **state)
{
	struct fix *f = *state;
	struct pstore *ps;
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	pstore_close(ps);
	file_write(f->log, (const uint8_t *)"NOTAPSTORELOG", 13);
	assert_int_equal(pstore_open(f->dir, &ps), MTR_EMAGIC);
	assert_int_equal(file_size(f->log), 13); /* an unknown file is left alone */
	/* A header torn during creation is rewritten. */
	file_write(f->log, (const uint8_t *)"MTRP", 4);
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	assert_int_equal(pstore_size(ps), 8);
	pstore_close(ps);
}

static void test_compaction(void **state)
{
	struct fix *f = *state;
	struct pstore *ps;
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	for (uint64_t i = 1; i <= 100; i++)
		put_accept(ps, 10 + i % 4, i, i);
	put_accept(ps, 20, 50, 500); /* re-accepted at a higher ballot */
	put_promise(ps, 30);
	uint64_t before = pstore_size(ps);
	assert_int_equal(pstore_compact(ps, 60), 0);
	uint64_t after = pstore_size(ps);
	assert_true(after < before);
	assert_int_equal(file_size(f->log), (off_t)after);
	assert_int_equal(pstore_promised(ps), 30);
	assert_int_equal(pstore_count(ps), 40);
	uint64_t b;
	const struct batch *v;
	assert_int_equal(pstore_get(ps, 60, &b, &v), MTR_ENOENT);
	for (uint64_t i = 61; i <= 100; i++)
		check_accept(ps, i, 10 + i % 4, i);
	put_accept(ps, 31, 101, 101); /* appends go to the new file */
	pstore_close(ps);

	assert_int_equal(pstore_open(f->dir, &ps), 0);
	assert_int_equal(pstore_promised(ps), 31);
	assert_int_equal(pstore_count(ps), 41);
	assert_int_equal(pstore_get(ps, 50, &b, &v), MTR_ENOENT);
	for (uint64_t i = 61; i <= 100; i++)
		check_accept(ps, i, 10 + i % 4, i);
	check_accept(ps, 101, 31, 101);
	pstore_close(ps);
	/* A compaction that crashed before its rename left log.tmp: the next
	 * open deletes it and uses the complete old log. */
	char tmp[160];
	snprintf(tmp, sizeof tmp, "%s.tmp", f->log);
	file_write(tmp, (const uint8_t *)"MTRPST01junk", 12);
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(pstore_count(ps), 41);
	/* Compacting everything keeps only the promise. */
	assert_int_equal(pstore_compact(ps, UINT64_MAX), 0);
	assert_int_equal(pstore_count(ps), 0);
	pstore_close(ps);
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	assert_int_equal(pstore_promised(ps), 31);
	assert_int_equal(pstore_count(ps), 0);
	pstore_close(ps);
}

static void test_group_commit_and_memory_mode(void **state)
{
	struct fix *f = *state;
	struct pstore *ps;
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	struct batch v = val(1);
	for (uint64_t i = 1; i <= 5; i++) {
		struct paxos_persist c = { .kind = PAXOS_PERSIST_ACCEPT, .ballot = 2, .inst = i, .value = &v };
		assert_int_equal(pstore_append(ps, &c), 0);
	}
	assert_int_equal(pstore_sync(ps), 0);
	pstore_set_sync(ps, false);
	put_promise(ps, 9);
	/* Invalid changes are refused and leave nothing behind. */
	uint64_t size = pstore_size(ps);
	struct paxos_persist bad = { .kind = 77, .ballot = 1 };
	assert_int_equal(pstore_append(ps, &bad), MTR_EINVAL);
	struct batch unsorted = { 0 };
	assert_int_equal(batch_push(&unsorted, 5, 1, 1), 0);
	assert_int_equal(batch_push(&unsorted, 2, 1, 1), 0);
	struct paxos_persist bad2 = { .kind = PAXOS_PERSIST_ACCEPT, .ballot = 1, .inst = 1, .value = &unsorted };
	assert_int_equal(pstore_append(ps, &bad2), MTR_EINVAL);
	assert_int_equal(pstore_size(ps), size);
	batch_free(&unsorted);
	pstore_close(ps);
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	assert_int_equal(pstore_count(ps), 5);
	assert_int_equal(pstore_promised(ps), 9);
	pstore_close(ps);
	batch_free(&v);
}

/* ---- with the core ---- */

struct host {
	struct pstore *ps;
	int later;    /* persist of an ACCEPT: append only, PAXOS_PERSIST_LATER */
	int n_sent;
	struct paxos_msg last; /* type, ballot, inst, entries copied */
	struct paxos_entry ent[4];
};

static void h_send(void *data, uint32_t to, const struct paxos_msg *m)
{
	struct host *h = data;
	(void)to;
	h->n_sent++;
	h->last.type = m->type;
	h->last.ballot = m->ballot;
	h->last.inst = m->inst;
	h->last.n_entries = 0;
	for (uint32_t i = 0; i < m->n_entries && i < 4; i++) {
		h->ent[i].inst = m->entries[i].inst;
		h->ent[i].ballot = m->entries[i].ballot;
		h->ent[i].value.n = 0;
		h->ent[i].value.r = NULL;
		assert_int_equal(batch_copy(&h->ent[i].value, &m->entries[i].value), 0);
		h->last.n_entries++;
	}
}
static int h_persist(void *data, const struct paxos_persist *c)
{
	struct host *h = data;
	if (h->later && c->kind == PAXOS_PERSIST_ACCEPT) {
		int rc = pstore_append(h->ps, c);
		return rc != 0 ? rc : PAXOS_PERSIST_LATER;
	}
	return pstore_persist(h->ps, c);
}
static bool h_holds(void *data, uint64_t stream, uint64_t last) { (void)data, (void)stream, (void)last; return true; }
static void h_fetch(void *data, uint64_t stream, uint64_t first, uint64_t last) { (void)data, (void)stream, (void)first, (void)last; }
static void h_chosen(void *data, uint64_t inst, const struct batch *v) { (void)data, (void)inst, (void)v; }

static struct paxos *core(struct host *h)
{
	struct paxos_config cfg = { .id = 0, .n = 3, .seed = 1 };
	struct paxos_io io = { .data = h, .send = h_send, .persist = h_persist, .holds = h_holds,
			       .fetch = h_fetch, .chosen = h_chosen };
	struct paxos *p;
	assert_int_equal(paxos_create(&p, &cfg, &io), 0);
	return p;
}

static void host_clear(struct host *h)
{
	for (uint32_t i = 0; i < h->last.n_entries; i++)
		batch_free(&h->ent[i].value);
	h->last.n_entries = 0;
}

static void test_with_core(void **state)
{
	struct fix *f = *state;
	struct host h = { 0 };
	assert_int_equal(pstore_open(f->dir, &h.ps), 0);
	struct paxos *p = core(&h);
	uint64_t b1 = paxos_ballot(3, 1);
	struct paxos_msg prep = { .type = PAXOS_PREPARE, .ballot = b1, .inst = 1 };
	assert_int_equal(paxos_recv(p, 1, &prep), 0);
	assert_int_equal(h.last.type, PAXOS_PROMISE);
	host_clear(&h);
	struct batch v = val(5);
	struct paxos_msg acc = { .type = PAXOS_ACCEPT, .ballot = b1, .inst = 1, .value = v };
	assert_int_equal(paxos_recv(p, 1, &acc), 0);
	assert_int_equal(h.last.type, PAXOS_ACCEPTED);
	paxos_destroy(p);
	pstore_close(h.ps);

	/* Restart: the store holds the promise and the accepted value. */
	assert_int_equal(pstore_open(f->dir, &h.ps), 0);
	assert_int_equal(pstore_promised(h.ps), b1);
	check_accept(h.ps, 1, b1, 5);
	p = core(&h);
	assert_int_equal(pstore_replay(h.ps, p), 0);
	struct paxos_status st;
	paxos_status(p, &st);
	assert_int_equal(st.ballot, b1);
	/* A lower ballot is refused with the recovered promise... */
	struct paxos_msg low = { .type = PAXOS_PREPARE, .ballot = paxos_ballot(2, 2), .inst = 1 };
	assert_int_equal(paxos_recv(p, 2, &low), 0);
	assert_int_equal(h.last.type, PAXOS_NACK);
	assert_int_equal(h.last.ballot, b1);
	/* ... and a higher one learns the recovered accepted value. */
	uint64_t b2 = paxos_ballot(4, 2);
	struct paxos_msg high = { .type = PAXOS_PREPARE, .ballot = b2, .inst = 1 };
	assert_int_equal(paxos_recv(p, 2, &high), 0);
	assert_int_equal(h.last.type, PAXOS_PROMISE);
	assert_int_equal(h.last.n_entries, 1);
	assert_int_equal(h.ent[0].inst, 1);
	assert_int_equal(h.ent[0].ballot, b1);
	assert_true(batch_equal(&h.ent[0].value, &v));
	host_clear(&h);
	paxos_destroy(p);
	/* That promise was persisted too. */
	assert_int_equal(pstore_promised(h.ps), b2);
	pstore_close(h.ps);
	assert_int_equal(pstore_open(f->dir, &h.ps), 0);
	assert_int_equal(pstore_promised(h.ps), b2);
	pstore_close(h.ps);
	batch_free(&v);
}

/* pstore_record / pstore_merge: the record of an ACCEPT taken into another
 * store (as from the item log, doc/storage.md "One commit per accept"):
 * state and file, the higher ballot winning; anything else refused. */
static void test_merge(void **state)
{
	struct fix *f = *state;
	struct pstore *ps;
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	struct batch v5 = val(5), v6 = val(6);
	struct paxos_persist hi = { .kind = PAXOS_PERSIST_ACCEPT, .ballot = 20, .inst = 3, .value = &v5 };
	struct paxos_persist lo = { .kind = PAXOS_PERSIST_ACCEPT, .ballot = 10, .inst = 3, .value = &v6 };
	uint8_t *rh, *rl;
	size_t nh, nl;
	assert_int_equal(pstore_record(&hi, &rh, &nh), 0);
	assert_int_equal(pstore_record(&lo, &rl, &nl), 0);
	struct paxos_persist pr = { .kind = PAXOS_PERSIST_PROMISE, .ballot = 1 };
	uint8_t *junk;
	size_t nj;
	assert_int_equal(pstore_record(&pr, &junk, &nj), MTR_EINVAL); /* only accepts */
	assert_int_equal(pstore_merge(ps, rh, nh), 0);
	assert_int_equal(pstore_merge(ps, rl, nl), 0); /* lower ballot: kept out of the state */
	check_accept(ps, 3, 20, 5);
	assert_int_equal(pstore_promised(ps), 20);
	uint64_t size = pstore_size(ps);
	rh[nh - 1] ^= 1; /* a damaged record changes nothing */
	assert_int_equal(pstore_merge(ps, rh, nh), MTR_EINTEGRITY);
	assert_int_equal(pstore_merge(ps, rh, nh - 3), MTR_EMALFORMED);
	assert_int_equal(pstore_size(ps), size);
	assert_int_equal(pstore_sync(ps), 0);
	pstore_close(ps);
	/* the file holds them: a restart finds the same state */
	assert_int_equal(pstore_open(f->dir, &ps), 0);
	check_accept(ps, 3, 20, 5);
	assert_int_equal(pstore_promised(ps), 20);
	pstore_close(ps);
	free(rh);
	free(rl);
	batch_free(&v5);
	batch_free(&v6);
}

/* A host whose persist answers PAXOS_PERSIST_LATER (disk mode's group
 * commit): the core sends no ACCEPTED, nor counts its own vote as leader,
 * before paxos_persisted(); a retransmitted ACCEPT meanwhile gets no answer
 * either.  Fails if an ACCEPTED can leave before the commit. */
static void test_answer_after_commit(void **state)
{
	struct fix *f = *state;
	struct host h = { .later = 1 };
	assert_int_equal(pstore_open(f->dir, &h.ps), 0);
	struct paxos *p = core(&h);
	uint64_t b1 = paxos_ballot(3, 1);
	struct batch v = val(5);
	struct paxos_msg acc = { .type = PAXOS_ACCEPT, .ballot = b1, .inst = 1, .value = v };
	assert_int_equal(paxos_recv(p, 1, &acc), 0);
	int sent = h.n_sent;
	assert_true(sent == 0 || h.last.type != PAXOS_ACCEPTED);
	assert_int_equal(paxos_recv(p, 1, &acc), 0); /* the leader retransmits */
	assert_true(h.n_sent == sent || h.last.type != PAXOS_ACCEPTED);
	paxos_persisted(p);
	assert_int_equal(h.last.type, PAXOS_ACCEPTED);
	assert_int_equal(h.last.inst, 1);
	assert_int_equal(h.last.ballot, b1);
	sent = h.n_sent;
	paxos_persisted(p); /* answered once */
	assert_int_equal(h.n_sent, sent);
	/* durable now: a retransmission is answered at once */
	assert_int_equal(paxos_recv(p, 1, &acc), 0);
	assert_int_equal(h.n_sent, sent + 1);
	assert_int_equal(h.last.type, PAXOS_ACCEPTED);
	paxos_destroy(p);
	pstore_close(h.ps);
	batch_free(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
		cmocka_unit_test_setup_teardown(test_conf_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_tail_every_offset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flipped_byte_stops_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_magic, setup, teardown),
		cmocka_unit_test_setup_teardown(test_compaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit_and_memory_mode, setup, teardown),
		cmocka_unit_test_setup_teardown(test_with_core, setup, teardown),
		cmocka_unit_test_setup_teardown(test_merge, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_after_commit, setup, teardown),
	};
	return cmocka_run_group_tests_name("pstore", tests, NULL, NULL);
}
