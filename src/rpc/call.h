/* One gRPC call as a handler sees it: the decoded request's deadline and
 * cancellation, and the way back (a unary reply, or for server streaming a
 * series of messages and a final status). Calls are reference-counted and
 * may be finished from any thread; the event loop owns the HTTP/2 side. */
#ifndef CRID_RPC_CALL_H
#define CRID_RPC_CALL_H

#include <protobuf-c/protobuf-c.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/error.h"

struct crid_call;

/* Returned by a handler that keeps a server-streaming call open past its
 * return; whoever holds the call then finishes it with crid_call_finish. */
#define CRID_CALL_PENDING 1

/* Returned by a handler running on the event loop (crid_call_lock) that
 * found a lock taken: the call is handed to a worker, which runs the
 * handler again. Nothing may have been sent. */
#define CRID_CALL_TO_WORKER 2

/* The method's full path, e.g. "/runtime.v1.RuntimeService/Version". */
const char *crid_call_method(const struct crid_call *call);

/* The API version the client spoke: "v1" or "v1alpha2". */
const char *crid_call_api_version(const struct crid_call *call);

/* Absolute CLOCK_MONOTONIC deadline in ns, 0 when the client set none. */
int64_t crid_call_deadline_ns(const struct crid_call *call);

/* True once the client went away, the deadline passed, or crid shuts down:
 * long handlers poll this and stop early. */
int crid_call_cancelled(const struct crid_call *call);

/* Sends one response message: the single reply of a unary call, or the next
 * message of a streaming one. Safe from any thread. */
int crid_call_send(struct crid_call *call, const ProtobufCMessage *msg, struct crid_err *err);

/* The same with a message already in wire form (len bytes). */
int crid_call_send_packed(struct crid_call *call, const uint8_t *data, size_t len, struct crid_err *err);

/* Takes lock for the handler of call. On a worker, waits for it; on the
 * event loop, which must never wait for a lock another thread may hold
 * across slow work, only takes it when free: false then, and the handler
 * returns CRID_CALL_TO_WORKER. */
bool crid_call_lock(struct crid_call *call, pthread_mutex_t *lock);

/* Bytes sent with crid_call_send that the client has not taken yet. */
size_t crid_call_unsent(struct crid_call *call);

/* Runs fn(call, data) on the event loop whenever the call has sent all it
 * had and the client could take more: a streaming handler that holds
 * messages back (a bounded queue) hands over the next ones then. fn must
 * not block. Cleared when the call ends. */
void crid_call_on_drain(struct crid_call *call, void (*fn)(struct crid_call *call, void *data), void *data);

/* Sends items (messages of the response's one repeated field) as desc
 * messages: all in one when batch is 0 (a List* reply, even an empty
 * one), else batch at a time, none when there are none (a Stream* call). */
int crid_call_send_items(struct crid_call *call, const ProtobufCMessageDescriptor *desc, void *const *items,
			 size_t n, size_t batch, struct crid_err *err);

/* Ends a call that a handler left pending: status CRID_OK, or an error with
 * its message. Later sends and finishes are ignored. Safe from any thread. */
void crid_call_finish(struct crid_call *call, int status, const char *message);

/* Runs fn(data) on the event loop when the call ends for any reason other
 * than crid_call_finish (client gone, deadline, shutdown). At most one. */
void crid_call_on_cancel(struct crid_call *call, void (*fn)(struct crid_call *call, void *data), void *data);

struct crid_call *crid_call_ref(struct crid_call *call);
void crid_call_unref(struct crid_call *call);

#endif
