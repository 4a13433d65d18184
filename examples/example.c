/*
 * example.c - the shortest complete use of libmetronome: open, create a
 * table, insert with bound parameters, query, close.
 *
 *   cc example.c $(pkg-config --cflags --libs metronome) -o example
 *   ./example mtr://127.0.0.1:7400
 *
 * Exits 0 when every step worked, 1 otherwise (with the message).
 */
#include <stdio.h>
#include <stdlib.h>

#include <metronome.h>

static int fail(mtr *db, const char *what)
{
	fprintf(stderr, "example: %s: %s (%s)\n", what, mtr_errmsg(db), mtr_errname(mtr_errcode(db)));
	mtr_close(db);
	return 1;
}

int main(int argc, char **argv)
{
	const char *uri = argc > 1 ? argv[1] : "mtr://127.0.0.1:7400";
	mtr *db;
	if (mtr_open(uri, &db) != 0)
		return fail(db, "open");

	/* Plain SQL, no rows wanted: mtr_exec. */
	if (mtr_exec(db, "DROP TABLE IF EXISTS fruit;"
			 "CREATE TABLE fruit(id INTEGER PRIMARY KEY, name TEXT, price REAL)",
		     NULL, NULL, NULL) != 0)
		return fail(db, "create");

	/* Inserts with bound parameters, by number and by name, in one
	 * transaction: collected by the library, sent at COMMIT as one item. */
	static const char *const names[] = {"apple", "pear", "plum"};
	static const double prices[] = {0.5, 0.75, 1.25};
	mtr_stmt *ins;
	if (mtr_prepare(db, "INSERT INTO fruit(name, price) VALUES(?1, :price)", -1, &ins, NULL) != 0)
		return fail(db, "prepare insert");
	if (mtr_exec(db, "BEGIN", NULL, NULL, NULL) != 0)
		return fail(db, "begin");
	for (int i = 0; i < 3; i++) {
		mtr_bind_text(ins, 1, names[i], -1);
		mtr_bind_double(ins, mtr_bind_parameter_index(ins, ":price"), prices[i]);
		if (mtr_step(ins) != MTR_DONE)
			return fail(db, "insert");
	}
	mtr_finalize(ins);
	if (mtr_exec(db, "COMMIT", NULL, NULL, NULL) != 0)
		return fail(db, "commit");
	printf("inserted, last rowid %lld\n", (long long)mtr_last_insert_rowid(db));

	/* A query: step through the rows. */
	mtr_stmt *q;
	if (mtr_prepare(db, "SELECT id, name, price FROM fruit WHERE price < ?1 ORDER BY id", -1, &q, NULL) != 0)
		return fail(db, "prepare select");
	mtr_bind_double(q, 1, 1.0);
	int rc, rows = 0;
	while ((rc = mtr_step(q)) == MTR_ROW) {
		printf("%lld %s %.2f\n", (long long)mtr_column_int64(q, 0), (const char *)mtr_column_text(q, 1),
		       mtr_column_double(q, 2));
		rows++;
	}
	mtr_finalize(q);
	if (rc != MTR_DONE)
		return fail(db, "select");
	if (rows != 2) {
		fprintf(stderr, "example: expected 2 rows, got %d\n", rows);
		mtr_close(db);
		return 1;
	}
	mtr_close(db);
	return 0;
}
