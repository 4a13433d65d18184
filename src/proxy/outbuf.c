/*
 * outbuf.c - the proxy's bounded send buffer (see outbuf.h).
 *
 * Byte ring: while items are held, their bytes occupy [head, tail) when
 * head < tail, or [head, wrap) and [0, tail) when the ring has wrapped
 * (tail <= head); "wrap" is not stored: the entries know their offsets.
 * A new item goes at tail when it fits before the end (not wrapped) or
 * before head (wrapped); else, not wrapped, at 0 when it fits before head.
 * The empty buffer is reset to head = tail = 0, so any item up to the whole
 * capacity fits then.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "metronome.h"
#include "outbuf.h"

int outbuf_init(struct outbuf *ob, uint64_t max_bytes, uint32_t max_items)
{
	memset(ob, 0, sizeof *ob);
	if (max_bytes == 0 || max_items == 0)
		return MTR_EINVAL;
	ob->data = malloc(max_bytes);
	ob->ent = calloc(max_items, sizeof *ob->ent);
	if (!ob->data || !ob->ent) {
		outbuf_free(ob);
		return MTR_ENOMEM;
	}
	ob->cap_bytes = max_bytes;
	ob->cap_items = max_items;
	ob->first = ob->next = 1;
	return 0;
}

void outbuf_free(struct outbuf *ob)
{
	free(ob->data);
	free(ob->ent);
	ob->data = NULL;
	ob->ent = NULL;
}

uint64_t outbuf_next_seq(const struct outbuf *ob)
{
	return ob->next;
}

uint64_t outbuf_high(const struct outbuf *ob)
{
	return ob->next - 1;
}

static inline struct outbuf_ent *ent_of(const struct outbuf *ob, uint64_t seq)
{
	return &ob->ent[seq % ob->cap_items];
}

int outbuf_put(struct outbuf *ob, uint64_t seq, const void *item, uint32_t len)
{
	if (seq != ob->next || len == 0)
		return MTR_EINVAL;
	if (len > ob->cap_bytes)
		return MTR_ETOOBIG;
	uint64_t off;
	if (ob->first == ob->next) {
		ob->head = ob->tail = 0;
		off = 0;
	} else if (ob->next - ob->first >= ob->cap_items) {
		ob->st.full++;
		return MTR_EFULL;
	} else if (ob->tail > ob->head) {
		if (ob->tail + len <= ob->cap_bytes)
			off = ob->tail;
		else if (len <= ob->head)
			off = 0;
		else
			goto full;
	} else {
		/* wrapped: the free space is [tail, head) */
		if (ob->tail + len <= ob->head)
			off = ob->tail;
		else
			goto full;
	}
	memcpy(ob->data + off, item, len);
	*ent_of(ob, seq) = (struct outbuf_ent){ off, len };
	ob->tail = off + len;
	ob->next++;
	ob->st.puts++;
	ob->st.items++;
	ob->st.bytes += len;
	return 0;
full:
	ob->st.full++;
	return MTR_EFULL;
}

int outbuf_get(struct outbuf *ob, uint64_t seq, const uint8_t **p, uint32_t *len)
{
	if (seq < ob->first || seq >= ob->next)
		return MTR_ENOENT;
	const struct outbuf_ent *e = ent_of(ob, seq);
	*p = ob->data + e->off;
	*len = e->len;
	ob->st.resends++;
	return 0;
}

void outbuf_release(struct outbuf *ob, uint64_t upto)
{
	while (ob->first <= upto && ob->first < ob->next) {
		ob->st.bytes -= ent_of(ob, ob->first)->len;
		ob->st.items--;
		ob->st.released++;
		ob->first++;
	}
	if (ob->first == ob->next)
		ob->head = ob->tail = 0;
	else
		ob->head = ent_of(ob, ob->first)->off;
}

void outbuf_stats(const struct outbuf *ob, struct outbuf_stats *st)
{
	*st = ob->st;
}
