/* The container event bus of events.h. Each event is packed once and
 * shared, by reference count, among the subscribers' queues. A queue moves
 * into its call's send buffer only while that buffer holds less than
 * SEND_WINDOW unsent bytes; the call asks for more (its drain hook) when
 * the client has taken what was there. */
#include "runtime/events.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/ratelimit.h"

#define SEND_WINDOW (16 * 1024)

struct event {
	atomic_int refs;
	size_t len;
	uint8_t data[];
};

struct subscriber {
	struct crid_call *call;
	struct event **ring;
	unsigned head, count;
	uint64_t dropped;
	struct subscriber *next;
};

struct crid_events {
	pthread_mutex_t lock;
	unsigned cap; /* of each subscriber's queue */
	struct subscriber *subs;
	unsigned n_subs;
	uint64_t dropped;
	struct crid_ratelimit drop_log;
	bool closed;
};

static void event_unref(struct event *e)
{
	if (e && atomic_fetch_sub(&e->refs, 1) == 1)
		free(e);
}

/* The queue must be empty (free_subs empties it). */
static void sub_free(struct subscriber *s)
{
	free(s->ring);
	crid_call_unref(s->call);
	free(s);
}

int crid_events_new(struct crid_events **out, unsigned queue_length, struct crid_err *err)
{
	struct crid_events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return crid_err_nomem(err, "event bus");
	pthread_mutex_init(&ev->lock, NULL);
	ev->cap = queue_length ? queue_length : 1;
	ev->drop_log = (struct crid_ratelimit)CRID_RATELIMIT_INIT(10000000000LL, 1);
	*out = ev;
	return 0;
}

/* Moves queued events into the call while it has room; false when the call
 * is over (the subscriber must go). Bus lock held. */
static bool pump_locked(struct crid_events *ev, struct subscriber *s)
{
	while (s->count > 0 && crid_call_unsent(s->call) < SEND_WINDOW) {
		struct event *e = s->ring[s->head];
		struct crid_err err;

		if (crid_call_send_packed(s->call, e->data, e->len, &err) < 0)
			return false;
		s->head = (s->head + 1) % ev->cap;
		s->count--;
		event_unref(e);
	}
	return true;
}

/* Takes call's subscriber out of the list; NULL when it is not in it. */
static struct subscriber *unlink_sub_locked(struct crid_events *ev, struct crid_call *call)
{
	for (struct subscriber **p = &ev->subs; *p; p = &(*p)->next) {
		if ((*p)->call == call) {
			struct subscriber *gone = *p;

			*p = gone->next;
			ev->n_subs--;
			return gone;
		}
	}
	return NULL;
}

static void free_subs(struct subscriber *list, struct crid_events *ev)
{
	while (list) {
		struct subscriber *s = list;

		list = s->next;
		/* Ring positions are relative to the bus's capacity. */
		while (s->count) {
			event_unref(s->ring[s->head]);
			s->head = (s->head + 1) % ev->cap;
			s->count--;
		}
		sub_free(s);
	}
}

static void on_subscriber_cancel(struct crid_call *call, void *data)
{
	struct crid_events *ev = data;
	struct subscriber *gone;

	pthread_mutex_lock(&ev->lock);
	gone = unlink_sub_locked(ev, call);
	if (gone)
		gone->next = NULL;
	pthread_mutex_unlock(&ev->lock);
	free_subs(gone, ev);
}

/* The client took what was buffered (the event loop's thread). */
static void on_subscriber_drain(struct crid_call *call, void *data)
{
	struct crid_events *ev = data;
	struct subscriber *gone = NULL;

	pthread_mutex_lock(&ev->lock);
	for (struct subscriber *s = ev->subs; s; s = s->next) {
		if (s->call == call) {
			if (!pump_locked(ev, s) && (gone = unlink_sub_locked(ev, call)))
				gone->next = NULL;
			break;
		}
	}
	pthread_mutex_unlock(&ev->lock);
	free_subs(gone, ev);
}

int crid_events_subscribe(struct crid_events *ev, struct crid_call *call, struct crid_err *err)
{
	struct subscriber *sub = calloc(1, sizeof(*sub));

	if (!sub || !(sub->ring = calloc(ev->cap, sizeof(*sub->ring)))) {
		free(sub);
		return crid_err_nomem(err, "event subscription");
	}
	pthread_mutex_lock(&ev->lock);
	if (ev->closed) {
		pthread_mutex_unlock(&ev->lock);
		free(sub->ring);
		free(sub);
		return crid_err_set(err, CRID_UNAVAILABLE, 0, "crid is shutting down");
	}
	sub->call = crid_call_ref(call);
	sub->next = ev->subs;
	ev->subs = sub;
	ev->n_subs++;
	pthread_mutex_unlock(&ev->lock);
	crid_call_on_drain(call, on_subscriber_drain, ev);
	crid_call_on_cancel(call, on_subscriber_cancel, ev);
	/* Cancelled before the hook was set: nobody else will remove it. */
	if (crid_call_cancelled(call))
		on_subscriber_cancel(call, ev);
	return 0;
}

void crid_events_publish_packed(struct crid_events *ev, const uint8_t *data, size_t len)
{
	struct subscriber *dead = NULL;
	struct event *e = malloc(sizeof(*e) + len);
	uint64_t dropped_now = 0;
	unsigned suppressed = 0;
	bool log_drop = false;

	if (!e) {
		log_error("container event lost: out of memory");
		return;
	}
	atomic_init(&e->refs, 1);
	e->len = len;
	memcpy(e->data, data, len);
	pthread_mutex_lock(&ev->lock);
	for (struct subscriber **p = &ev->subs; *p;) {
		struct subscriber *s = *p;

		if (s->count == ev->cap) { /* full: the oldest goes */
			event_unref(s->ring[s->head]);
			s->head = (s->head + 1) % ev->cap;
			s->count--;
			s->dropped++;
			ev->dropped++;
			dropped_now++;
		}
		atomic_fetch_add(&e->refs, 1);
		s->ring[(s->head + s->count) % ev->cap] = e;
		s->count++;
		if (!pump_locked(ev, s)) {
			*p = s->next;
			ev->n_subs--;
			s->next = dead;
			dead = s;
			continue;
		}
		p = &s->next;
	}
	if (dropped_now)
		log_drop = crid_ratelimit_allow(&ev->drop_log, crid_monotonic_ns(), &suppressed);
	dropped_now = ev->dropped;
	pthread_mutex_unlock(&ev->lock);
	event_unref(e);
	if (log_drop) {
		char total[24], queue[16];

		snprintf(total, sizeof(total), "%llu", (unsigned long long)dropped_now);
		snprintf(queue, sizeof(queue), "%u", ev->cap);
		log_warn("container event subscriber reads too slowly: its oldest events were dropped",
			 "queue_length", queue, "dropped_total", total);
	}
	free_subs(dead, ev);
}

void crid_events_publish(struct crid_events *ev, const Runtime__V1__ContainerEventResponse *event)
{
	size_t len = protobuf_c_message_get_packed_size(&event->base);
	uint8_t *buf = malloc(len ? len : 1);

	if (!buf) {
		log_error("container event lost: out of memory");
		return;
	}
	protobuf_c_message_pack(&event->base, buf);
	crid_events_publish_packed(ev, buf, len);
	free(buf);
}

unsigned crid_events_subscribers(struct crid_events *ev)
{
	unsigned n;

	pthread_mutex_lock(&ev->lock);
	n = ev->n_subs;
	pthread_mutex_unlock(&ev->lock);
	return n;
}

uint64_t crid_events_dropped(struct crid_events *ev)
{
	uint64_t n;

	pthread_mutex_lock(&ev->lock);
	n = ev->dropped;
	pthread_mutex_unlock(&ev->lock);
	return n;
}

void crid_events_close(struct crid_events *ev)
{
	struct subscriber *subs;

	pthread_mutex_lock(&ev->lock);
	ev->closed = true;
	subs = ev->subs;
	ev->subs = NULL;
	ev->n_subs = 0;
	pthread_mutex_unlock(&ev->lock);
	for (struct subscriber *s = subs; s; s = s->next)
		crid_call_finish(s->call, CRID_OK, NULL);
	free_subs(subs, ev);
}

void crid_events_free(struct crid_events *ev)
{
	if (!ev)
		return;
	crid_events_close(ev);
	pthread_mutex_destroy(&ev->lock);
	free(ev);
}
