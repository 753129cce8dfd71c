/* Container events for GetContainerEvents: each subscriber is an open
 * server-streaming call with its own bounded queue; what is published goes
 * to all of them in the order published. A subscriber that reads slowly
 * loses its oldest events (logged), never holds up a publisher. Owns the
 * subscriber list only; it never looks at containers itself (views.h
 * builds the events). */
#ifndef CRID_RUNTIME_EVENTS_H
#define CRID_RUNTIME_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "rpc/call.h"
#include "runtime/v1/api.pb-c.h"

struct crid_events;

/* queue_length: events kept per subscriber that has not taken them yet. */
int crid_events_new(struct crid_events **out, unsigned queue_length, struct crid_err *err);

/* Keeps call open as a subscriber until the client leaves or the bus
 * closes. UNAVAILABLE once the bus is closed. */
int crid_events_subscribe(struct crid_events *ev, struct crid_call *call, struct crid_err *err);

/* Queues an event, already in wire form, to every subscriber. */
void crid_events_publish_packed(struct crid_events *ev, const uint8_t *data, size_t len);

/* The same from a message. */
void crid_events_publish(struct crid_events *ev, const Runtime__V1__ContainerEventResponse *event);

unsigned crid_events_subscribers(struct crid_events *ev);

/* Events dropped so far because a subscriber read too slowly. */
uint64_t crid_events_dropped(struct crid_events *ev);

/* Ends every subscription with OK and refuses new ones (shutdown). */
void crid_events_close(struct crid_events *ev);

void crid_events_free(struct crid_events *ev);

#endif
