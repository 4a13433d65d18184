/*
 * snapchan.h - the snapshot channel's exchange (doc/server.md "Snapshot
 * transfer"): a TCP side channel on each server's own ip:port over which a
 * peer server fetches a snapshot of the replica (catch-up), and a proxy
 * fetches one for a client's backup (doc/server.md "Backup and restore").
 *
 * Every MAC is a keyed BLAKE2b of SNAP_TAG bytes (libsodium's
 * crypto_generichash under the cluster key; unkeyed in a cluster.insecure
 * cluster).  Little-endian:
 *
 *   server -> client  challenge  "MTRSNAPC", nonce_s (16 random bytes)
 *   client -> server  request    magic, cluster u32, requester id u32,
 *                                nonce_c (16), tag = MAC(nonce_s || request[0..32))
 *                                magic "MTRSNAPQ": a peer server (its id);
 *                                "MTRSNAPB": a proxy (its proxy.id), a backup
 *   server -> client  response   "MTRSNAPR", instance u64, size u64, the
 *                                file, trailer = MAC(nonce_c || nonce_s ||
 *                                response header || file)
 *
 * Pure: no I/O.  The caller reads and writes the bytes.
 */
#ifndef MTR_SNAPCHAN_H
#define MTR_SNAPCHAN_H

#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "wire.h"

#define SNAP_NONCE 16
#define SNAP_TAG 16
#define SNAP_CHAL_SIZE (8 + SNAP_NONCE)
#define SNAP_REQ_BODY (16 + SNAP_NONCE) /* magic, cluster, id, nonce_c */
#define SNAP_REQ_SIZE (SNAP_REQ_BODY + SNAP_TAG)
#define SNAP_HDR_SIZE 24

extern const char snap_chal_magic[8];   /* "MTRSNAPC" */
extern const char snap_req_magic[8];    /* "MTRSNAPQ": a peer server's request */
extern const char snap_backup_magic[8]; /* "MTRSNAPB": a proxy's request, for a backup */
extern const char snap_resp_magic[8];   /* "MTRSNAPR" */

/* Fill a request in req (SNAP_REQ_SIZE bytes) answering the challenge chal:
 * magic, cluster, id, a fresh nonce_c, and its tag under key's cluster.key
 * (unkeyed when !key->set). */
void snapchan_request(uint8_t *req, const char magic[8], uint32_t cluster, uint32_t id, const struct wire_key *key,
		      const uint8_t *chal);

/* Whether request req's tag is right for the challenge chal under
 * cluster.key or cluster.key_next (constant-time comparisons). */
int snapchan_request_ok(const struct wire_key *key, const uint8_t *chal, const uint8_t *req);

/* The response trailer's MAC: start it for request req, challenge chal and
 * response header hdr, feed the file, then check or make the trailer. */
struct snapchan_mac {
	crypto_generichash_state st, st_next;
	int has_next;
};
/* Start: under cluster.key (to send); check also under cluster.key_next
 * when both is set and the key has one (to receive during a rotation). */
void snapchan_mac_init(struct snapchan_mac *m, const struct wire_key *key, int both, const uint8_t *req,
		       const uint8_t *chal, const uint8_t *hdr);
void snapchan_mac_update(struct snapchan_mac *m, const uint8_t *p, size_t n);
/* The trailer to send (under cluster.key). */
void snapchan_mac_final(struct snapchan_mac *m, uint8_t tag[SNAP_TAG]);
/* Whether a received trailer is right under either key (constant time). */
int snapchan_mac_check(struct snapchan_mac *m, const uint8_t tag[SNAP_TAG]);

#endif
