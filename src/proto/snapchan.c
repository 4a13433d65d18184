/*
 * snapchan.c - the snapshot channel's exchange (snapchan.h): challenge,
 * request and response trailer MACs shared by the server (serving and
 * fetching snapshots) and the proxy (fetching one for a backup).
 */
#include "config.h"

#include <string.h>

#include "snapchan.h"
#include "util.h"

const char snap_chal_magic[8] = {'M', 'T', 'R', 'S', 'N', 'A', 'P', 'C'};
const char snap_req_magic[8] = {'M', 'T', 'R', 'S', 'N', 'A', 'P', 'Q'};
const char snap_backup_magic[8] = {'M', 'T', 'R', 'S', 'N', 'A', 'P', 'B'};
const char snap_resp_magic[8] = {'M', 'T', 'R', 'S', 'N', 'A', 'P', 'R'};

/* Start a MAC under key k (NULL: unkeyed, cluster.insecure). */
static void mac_init(crypto_generichash_state *st, const uint8_t *k)
{
	crypto_generichash_init(st, k, k ? WIRE_KEY_SIZE : 0, SNAP_TAG);
}

/* The request's tag under key k: MAC(nonce_s || req[0..SNAP_REQ_BODY)). */
static void req_tag(const uint8_t *k, const uint8_t *chal, const uint8_t *req, uint8_t tag[SNAP_TAG])
{
	crypto_generichash_state st;
	mac_init(&st, k);
	crypto_generichash_update(&st, chal + 8, SNAP_NONCE);
	crypto_generichash_update(&st, req, SNAP_REQ_BODY);
	crypto_generichash_final(&st, tag, SNAP_TAG);
}

void snapchan_request(uint8_t *req, const char magic[8], uint32_t cluster, uint32_t id, const struct wire_key *key,
		      const uint8_t *chal)
{
	memcpy(req, magic, 8);
	st32(req + 8, cluster);
	st32(req + 12, id);
	randombytes_buf(req + 16, SNAP_NONCE);
	req_tag(key->set ? key->k : NULL, chal, req, req + SNAP_REQ_BODY);
}

int snapchan_request_ok(const struct wire_key *key, const uint8_t *chal, const uint8_t *req)
{
	uint8_t t[SNAP_TAG];
	req_tag(key->set ? key->k : NULL, chal, req, t);
	if (crypto_verify_16(t, req + SNAP_REQ_BODY) == 0)
		return 1;
	if (!key->next_set)
		return 0;
	req_tag(key->next, chal, req, t);
	return crypto_verify_16(t, req + SNAP_REQ_BODY) == 0;
}

static void resp_init(crypto_generichash_state *st, const uint8_t *k, const uint8_t *req, const uint8_t *chal,
		      const uint8_t *hdr)
{
	mac_init(st, k);
	crypto_generichash_update(st, req + 16, SNAP_NONCE); /* nonce_c */
	crypto_generichash_update(st, chal + 8, SNAP_NONCE); /* nonce_s */
	crypto_generichash_update(st, hdr, SNAP_HDR_SIZE);
}

void snapchan_mac_init(struct snapchan_mac *m, const struct wire_key *key, int both, const uint8_t *req,
		       const uint8_t *chal, const uint8_t *hdr)
{
	resp_init(&m->st, key->set ? key->k : NULL, req, chal, hdr);
	m->has_next = both && key->next_set;
	if (m->has_next)
		resp_init(&m->st_next, key->next, req, chal, hdr);
}

void snapchan_mac_update(struct snapchan_mac *m, const uint8_t *p, size_t n)
{
	crypto_generichash_update(&m->st, p, n);
	if (m->has_next)
		crypto_generichash_update(&m->st_next, p, n);
}

void snapchan_mac_final(struct snapchan_mac *m, uint8_t tag[SNAP_TAG])
{
	crypto_generichash_final(&m->st, tag, SNAP_TAG);
}

int snapchan_mac_check(struct snapchan_mac *m, const uint8_t tag[SNAP_TAG])
{
	uint8_t want[SNAP_TAG], want_next[SNAP_TAG];
	crypto_generichash_final(&m->st, want, sizeof want);
	if (m->has_next)
		crypto_generichash_final(&m->st_next, want_next, sizeof want_next);
	return crypto_verify_16(tag, want) == 0 || (m->has_next && crypto_verify_16(tag, want_next) == 0);
}
