/* The container event bus of events.h. */
#include "runtime/events.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>


struct subscriber {
	struct crid_call *call;
	struct subscriber *next;
};

struct crid_events {
	pthread_mutex_t lock;
	struct subscriber *subs;
	unsigned n_subs;
	bool closed;
};

int crid_events_new(struct crid_events **out, struct crid_err *err)
{
	struct crid_events *ev = calloc(1, sizeof(*ev));

	if (!ev)
		return crid_err_nomem(err, "event bus");
	pthread_mutex_init(&ev->lock, NULL);
	*out = ev;
	return 0;
}

/* Removes call if it is still subscribed; true when it was. */
static bool remove_sub(struct crid_events *ev, struct crid_call *call)
{
	bool found = false;

	pthread_mutex_lock(&ev->lock);
	for (struct subscriber **p = &ev->subs; *p; p = &(*p)->next) {
		if ((*p)->call == call) {
			struct subscriber *gone = *p;

			*p = gone->next;
			free(gone);
			ev->n_subs--;
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&ev->lock);
	if (found)
		crid_call_unref(call);
	return found;
}

static void on_subscriber_cancel(struct crid_call *call, void *data)
{
	remove_sub(data, call);
}

int crid_events_subscribe(struct crid_events *ev, struct crid_call *call, struct crid_err *err)
{
	struct subscriber *sub = malloc(sizeof(*sub));

	if (!sub)
		return crid_err_nomem(err, "event subscription");
	pthread_mutex_lock(&ev->lock);
	if (ev->closed) {
		pthread_mutex_unlock(&ev->lock);
		free(sub);
		return crid_err_set(err, CRID_UNAVAILABLE, 0, "crid is shutting down");
	}
	sub->call = crid_call_ref(call);
	sub->next = ev->subs;
	ev->subs = sub;
	ev->n_subs++;
	pthread_mutex_unlock(&ev->lock);
	crid_call_on_cancel(call, on_subscriber_cancel, ev);
	/* Cancelled before the hook was set: nobody else will remove it. */
	if (crid_call_cancelled(call))
		remove_sub(ev, call);
	return 0;
}

void crid_events_publish(struct crid_events *ev, const Runtime__V1__ContainerEventResponse *event)
{
	struct subscriber *failed = NULL;

	pthread_mutex_lock(&ev->lock);
	for (struct subscriber **p = &ev->subs; *p;) {
		struct crid_err err;

		if (crid_call_send((*p)->call, &event->base, &err) < 0) {
			struct subscriber *gone = *p;

			*p = gone->next;
			ev->n_subs--;
			gone->next = failed;
			failed = gone;
			continue;
		}
		p = &(*p)->next;
	}
	pthread_mutex_unlock(&ev->lock);
	while (failed) {
		struct subscriber *s = failed;

		failed = s->next;
		crid_call_finish(s->call, CRID_RESOURCE_EXHAUSTED, "cannot send container event");
		crid_call_unref(s->call);
		free(s);
	}
}

unsigned crid_events_subscribers(struct crid_events *ev)
{
	unsigned n;

	pthread_mutex_lock(&ev->lock);
	n = ev->n_subs;
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
	while (subs) {
		struct subscriber *s = subs;

		subs = s->next;
		crid_call_finish(s->call, CRID_OK, NULL);
		crid_call_unref(s->call);
		free(s);
	}
}

void crid_events_free(struct crid_events *ev)
{
	if (!ev)
		return;
	crid_events_close(ev);
	pthread_mutex_destroy(&ev->lock);
	free(ev);
}
