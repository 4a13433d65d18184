/*
 * bench.h - mtrbench subcommands.  Each measurement is one subcommand,
 * int bench_NAME(int argc, char **argv), in tests/bench/bench_NAME.c, listed
 * once in BENCH_MAP.  A subcommand prints its figures on stdout, one per line,
 * "name: value unit", with bench_figure(); anything else goes to stderr.
 */
#ifndef MTR_BENCH_H
#define MTR_BENCH_H

#include <stdint.h>

/* X(name, one-line summary); one row per subcommand, in the order of --help */
#define BENCH_MAP(X) \
	X(parse, "SQL parser vs sqlite3_prepare_v2 over the slt corpus (statements/s)") \
	X(transport, "UDP transport on loopback: items/s and loss, 1 sender to K receivers") \
	X(store, "ingest store: items/s added + group-committed, 64/1000-byte items, memory and disk modes") \
	X(apply, "replica apply: items/s into SQLite, 1/100/1000 items per instance, plus random()/'now'") \
	X(wire, "datagram format: frame+check (XXH3, SipHash), item pack/iterate, 16 MiB reassembly") \
	X(ingest, "ingest: items/s and datagrams/s received+stored, DPDK memif vs UDP loopback, 64/1000-byte items") \
	X(pstore, "Paxos acceptor state: persists/s with fdatasync, group commit of 16, memory mode; compaction ms") \
	X(proxy, "proxy: requests/s through the proxy (TCP clients, pipelined INSERTs) against a fake server") \
	X(e2e, "whole cluster on loopback: acknowledged writes/s and latency vs one plain SQLite database")

#define BENCH__DECL(name, summary) int bench_##name(int argc, char **argv);
BENCH_MAP(BENCH__DECL)
#undef BENCH__DECL

/* Print one figure: "name: value unit" (value with the precision it needs). */
void bench_figure(const char *name, double value, const char *unit);

/* Median of n doubles (the array is sorted in place). */
double bench_median(double *v, unsigned n);

#endif
