/* Container events for GetContainerEvents: each subscriber is an open
 * server-streaming call; what is published goes to all of them. Owns the
 * subscriber list only; it never looks at containers itself. */
#ifndef CRID_RUNTIME_EVENTS_H
#define CRID_RUNTIME_EVENTS_H

#include "common/error.h"
#include "rpc/call.h"
#include "runtime/v1/api.pb-c.h"

struct crid_events;

int crid_events_new(struct crid_events **out, struct crid_err *err);

/* Keeps call open as a subscriber until the client leaves or the bus
 * closes. UNAVAILABLE once the bus is closed. */
int crid_events_subscribe(struct crid_events *ev, struct crid_call *call, struct crid_err *err);

/* Sends event to every subscriber; one that cannot take it is ended. */
void crid_events_publish(struct crid_events *ev, const Runtime__V1__ContainerEventResponse *event);

unsigned crid_events_subscribers(struct crid_events *ev);

/* Ends every subscription with OK and refuses new ones (shutdown). */
void crid_events_close(struct crid_events *ev);

void crid_events_free(struct crid_events *ev);

#endif
