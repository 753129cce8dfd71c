/* The server of server.h: one epoll loop owns the listener, every connection
 * and their nghttp2 sessions; workers hand results back through a queue and
 * an eventfd. */
#include "rpc/server.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/log.h"
#include "common/ratelimit.h"
#include "rpc/grpc_wire.h"
#include "rpc/listener.h"
#include "rpc/rpc_internal.h"
#include "rpc/workers.h"

/* Connection housekeeping (preface and idle timeouts) runs this often. */
#define HOUSEKEEPING_NS (1000LL * 1000000LL)
/* Protocol-error warnings: a broken client is reported, not echoed forever. */
#define PROTOCOL_WARN_INTERVAL_NS (10LL * 1000000000LL)
#define PROTOCOL_WARN_BURST 10

struct poll_tag {
	int kind;
};

struct crid_server {
	struct crid_server_options opts;
	const struct crid_rpc_methods *methods;
	struct crid_listener listener;
	struct crid_workers *workers;
	int epfd, notify_fd, signal_fd;
	int reserve_fd; /* spare fd, given up to shed a connection at EMFILE */
	struct poll_tag listener_tag, notify_tag, signal_tag;

	struct crid_conn *conns;
	unsigned n_conns;
	int64_t housekeeping_at;
	atomic_size_t pending_bytes; /* requests not yet taken by a handler */
	/* Closed during this loop iteration: freed at its end, since events
	 * of the same batch may still name them. Linked through next. */
	struct crid_conn *closed;

	pthread_mutex_t queue_lock;
	struct crid_call *queue_head, *queue_tail;

	bool stopping;
	int64_t stop_deadline_ns;
	struct crid_ratelimit protocol_warnings;
	void (*on_shutdown)(void *data);
	void *on_shutdown_data;
};

size_t crid_server_max_recv(const struct crid_server *s)
{
	return s->opts.max_recv_bytes;
}

void crid_server_observe_end(struct crid_server *s, const struct crid_call *call, int status)
{
	if (!s->opts.on_call_end)
		return;
	s->opts.on_call_end(s->opts.on_call_end_data, call->method ? call->method->service : NULL,
			    call->method ? call->method->name : NULL, status, crid_now_ns() - call->start_ns);
}

size_t crid_server_max_send(const struct crid_server *s)
{
	return s->opts.max_send_bytes;
}

/* One largest request always fits, whatever the configured bound. */
size_t crid_server_max_pending(const struct crid_server *s)
{
	size_t one = s->opts.max_recv_bytes + CRID_GRPC_PREFIX_LEN;

	return s->opts.max_pending_bytes > one ? s->opts.max_pending_bytes : one;
}

bool crid_server_reserve_request(struct crid_server *s, size_t n)
{
	size_t have = atomic_load(&s->pending_bytes);

	do {
		if (have + n > crid_server_max_pending(s))
			return false;
	} while (!atomic_compare_exchange_weak(&s->pending_bytes, &have, have + n));
	return true;
}

void crid_server_release_request(struct crid_server *s, size_t n)
{
	atomic_fetch_sub(&s->pending_bytes, n);
}

bool crid_server_evict_request(struct crid_server *s, const struct crid_call *keep)
{
	struct crid_call *victim = NULL;

	for (struct crid_conn *c = s->conns; c; c = c->next)
		for (struct crid_call *call = c->calls; call; call = call->conn_next)
			if (call != keep && !call->dispatched && call->req_counted > 0 &&
			    (!victim || call->start_ns < victim->start_ns))
				victim = call;
	if (!victim)
		return false;
	victim->dispatched = true; /* what still arrives is dropped */
	crid_call_drop_request(victim);
	crid_call_finish(victim, CRID_RESOURCE_EXHAUSTED,
			 "request refused: it had not arrived whole when newer requests needed its memory");
	return true;
}

int64_t crid_server_request_timeout_ns(const struct crid_server *s)
{
	return (int64_t)s->opts.request_timeout_s * 1000000000LL;
}

static int epoll_add(int epfd, int fd, uint32_t events, void *ptr)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

int crid_server_new(struct crid_server **out, const struct crid_server_options *opts,
		    const struct crid_rpc_methods *methods, struct crid_err *err)
{
	struct crid_server *s = calloc(1, sizeof(*s));
	sigset_t sigs;
	int r;

	if (!s)
		return crid_err_nomem(err, "server");
	s->opts = *opts;
	s->methods = methods;
	s->epfd = s->notify_fd = s->signal_fd = s->reserve_fd = -1;
	s->listener.fd = s->listener.lock_fd = -1;
	s->listener_tag.kind = CRID_POLL_LISTENER;
	s->notify_tag.kind = CRID_POLL_NOTIFY;
	s->signal_tag.kind = CRID_POLL_SIGNAL;
	s->protocol_warnings =
		(struct crid_ratelimit)CRID_RATELIMIT_INIT(PROTOCOL_WARN_INTERVAL_NS, PROTOCOL_WARN_BURST);
	pthread_mutex_init(&s->queue_lock, NULL);
	atomic_init(&s->pending_bytes, 0);
	if (!s->opts.max_connections)
		s->opts.max_connections = 4096;
	if (!s->opts.request_timeout_s)
		s->opts.request_timeout_s = 30;

	r = crid_workers_new(&s->workers, opts->worker_threads, err);
	if (r < 0)
		goto fail;
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	s->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	s->signal_fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (s->epfd < 0 || s->notify_fd < 0 || s->signal_fd < 0 || s->reserve_fd < 0) {
		r = crid_err_set(err, CRID_INTERNAL, errno, "set up the event loop");
		goto fail;
	}
	r = crid_listener_open(&s->listener, opts->socket_path, err);
	if (r < 0)
		goto fail;
	if ((r = epoll_add(s->epfd, s->listener.fd, EPOLLIN, &s->listener_tag)) < 0 ||
	    (r = epoll_add(s->epfd, s->notify_fd, EPOLLIN, &s->notify_tag)) < 0 ||
	    (r = epoll_add(s->epfd, s->signal_fd, EPOLLIN, &s->signal_tag)) < 0) {
		r = crid_err_set(err, CRID_INTERNAL, -r, "register with epoll");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	crid_server_free(s);
	return r;
}

void crid_server_on_shutdown(struct crid_server *s, void (*fn)(void *data), void *data)
{
	s->on_shutdown = fn;
	s->on_shutdown_data = data;
}

void crid_server_notify(struct crid_server *s, struct crid_call *call)
{
	bool wake = false;

	pthread_mutex_lock(&s->queue_lock);
	if (!call->queued) {
		call->queued = true;
		crid_call_ref(call);
		call->queue_next = NULL;
		if (s->queue_tail)
			s->queue_tail->queue_next = call;
		else
			s->queue_head = call;
		s->queue_tail = call;
		wake = s->queue_head == call;
	}
	pthread_mutex_unlock(&s->queue_lock);
	if (wake) {
		uint64_t one = 1;

		/* A full counter still wakes the loop; nothing to handle. */
		if (write(s->notify_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			log_error("cannot wake the event loop", "error", strerror(errno));
	}
}

/* Takes a connection out of service: no more events, its calls aborted.
 * The memory goes in free_closed(), once no event can name it. */
static void conn_close(struct crid_server *s, struct crid_conn *conn)
{
	if (conn->closed)
		return;
	if (conn->prev)
		conn->prev->next = conn->next;
	else
		s->conns = conn->next;
	if (conn->next)
		conn->next->prev = conn->prev;
	s->n_conns--;
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, conn->fd, NULL);
	conn->closed = true;
	conn->prev = NULL;
	conn->next = s->closed;
	s->closed = conn;
}

static void free_closed(struct crid_server *s)
{
	while (s->closed) {
		struct crid_conn *conn = s->closed;

		s->closed = conn->next;
		crid_conn_free(conn);
	}
}

static void drain_queue(struct crid_server *s)
{
	struct crid_call *head;
	uint64_t count;

	if (read(s->notify_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_error("cannot read the event loop's wake-ups", "error", strerror(errno));
	pthread_mutex_lock(&s->queue_lock);
	head = s->queue_head;
	s->queue_head = s->queue_tail = NULL;
	pthread_mutex_unlock(&s->queue_lock);

	while (head) {
		struct crid_call *call = head;
		struct crid_conn *conn = call->conn;

		/* Read the link before the call may be queued anew, which reuses it. */
		pthread_mutex_lock(&s->queue_lock);
		head = call->queue_next;
		call->queued = false;
		pthread_mutex_unlock(&s->queue_lock);
		if (conn && !conn->closed) {
			int r;

			crid_conn_push_call(conn, call);
			r = crid_conn_flush(conn);
			if (r < 0) {
				log_debug("closing connection after a reply", "error", strerror(-r));
				conn_close(s, conn);
			}
		}
		crid_call_unref(call);
	}
}

/* The connection to close to make room: the longest idle of those no
 * handler works for. NULL when every one is serving. */
static struct crid_conn *longest_idle(struct crid_server *s)
{
	struct crid_conn *best = NULL;

	for (struct crid_conn *c = s->conns; c; c = c->next)
		if (!crid_conn_serving(c) && (!best || c->active_ns < best->active_ns))
			best = c;
	return best;
}

static bool evict_one(struct crid_server *s, const char *why)
{
	struct crid_conn *victim = longest_idle(s);
	unsigned suppressed;

	if (!victim)
		return false;
	if (crid_server_warn_allowed(s, &suppressed)) {
		char n[16], dropped[16];

		snprintf(n, sizeof(n), "%u", s->n_conns);
		snprintf(dropped, sizeof(dropped), "%u", suppressed);
		log_warn("closed the longest idle connection to make room for a new one", "reason", why,
			 "connections", n, "suppressed", suppressed ? dropped : NULL);
	}
	conn_close(s, victim);
	/* Its memory waits for the end of the loop's turn; its descriptor
	 * is given back now. */
	close(victim->fd);
	victim->fd = -1;
	return true;
}

/* Opens connections. At the connection limit, or out of descriptors, the
 * longest idle connection makes room: idle clients must never lock out a
 * new one (the kubelet). */
static void accept_all(struct crid_server *s)
{
	/* A bounded batch per wake-up: the loop turns to other events, and the
	 * connections closed meanwhile are freed, even while clients keep
	 * connecting faster than this takes them. */
	for (int batch = 0; batch < 32; batch++) {
		int fd = accept4(s->listener.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct crid_conn *conn;

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if ((errno == EMFILE || errno == ENFILE) && evict_one(s, "out of file descriptors"))
				continue;
			if ((errno == EMFILE || errno == ENFILE) && s->reserve_fd >= 0) {
				close(s->reserve_fd);
				fd = accept4(s->listener.fd, NULL, NULL, SOCK_CLOEXEC);
				if (fd >= 0)
					close(fd);
				s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
				log_warn("out of file descriptors: refused a connection");
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				log_warn("accept failed", "error", strerror(errno));
			return;
		}
		if (s->n_conns >= s->opts.max_connections && !evict_one(s, "connection limit reached")) {
			log_warn("too many connections, every one serving a call: refused one");
			close(fd);
			continue;
		}
		conn = crid_conn_new(s, fd);
		if (!conn) {
			log_warn("out of memory: refused a connection");
			close(fd);
			continue;
		}
		conn->epfd = s->epfd;
		conn->events = EPOLLIN;
		if (epoll_add(s->epfd, fd, EPOLLIN, conn) < 0) {
			conn->epfd = -1;
			crid_conn_free(conn);
			continue;
		}
		conn->next = s->conns;
		if (s->conns)
			s->conns->prev = conn;
		s->conns = conn;
		s->n_conns++;
		if (crid_conn_flush(conn) < 0) /* our SETTINGS go first */
			conn_close(s, conn);
	}
}

static void begin_shutdown(struct crid_server *s, const char *why)
{
	if (s->stopping)
		return;
	s->stopping = true;
	s->stop_deadline_ns = crid_now_ns() + (int64_t)s->opts.shutdown_grace_s * 1000000000LL;
	log_info("shutting down: finishing calls in flight", "signal", why);
	epoll_ctl(s->epfd, EPOLL_CTL_DEL, s->listener.fd, NULL);
	crid_listener_close(&s->listener);
	for (struct crid_conn *c = s->conns, *n; c; c = n) {
		n = c->next;
		/* Only handlers in flight are waited for, not requests a client
		 * has yet to finish sending. */
		crid_conn_refuse_unhandled(c, CRID_UNAVAILABLE, "crid is shutting down");
		crid_conn_goaway(c);
		if (crid_conn_flush(c) < 0)
			conn_close(s, c);
	}
	if (s->on_shutdown)
		s->on_shutdown(s->on_shutdown_data);
}

static void read_signals(struct crid_server *s)
{
	struct signalfd_siginfo si;

	while (read(s->signal_fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_info("SIGHUP ignored: restart crid to apply configuration changes");
			continue;
		}
		begin_shutdown(s, si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
	}
}

/* Closes connections that never completed their preface, or that have had
 * no call and no traffic for the idle timeout. */
static void housekeep(struct crid_server *s, int64_t now)
{
	int64_t preface_ns = (int64_t)s->opts.preface_timeout_s * 1000000000LL;
	int64_t idle_ns = (int64_t)s->opts.idle_timeout_s * 1000000000LL;

	for (struct crid_conn *c = s->conns, *n; c; c = n) {
		n = c->next;
		if (!c->got_settings && preface_ns && now - c->created_ns >= preface_ns) {
			log_debug("closing a connection that sent no HTTP/2 preface in time");
			conn_close(s, c);
		} else if (idle_ns && crid_conn_idle(c) && now - c->active_ns >= idle_ns) {
			log_debug("closing an idle connection");
			crid_conn_goaway(c);
			crid_conn_flush(c);
			conn_close(s, c);
		}
	}
	s->housekeeping_at = now + HOUSEKEEPING_NS;
}

/* Expires call deadlines; returns the epoll timeout until the next one. */
static int next_timeout_ms(struct crid_server *s)
{
	int64_t now = crid_now_ns(), next = 0;

	if (now >= s->housekeeping_at)
		housekeep(s, now);
	for (struct crid_conn *c = s->conns; c; c = c->next) {
		int64_t d = crid_conn_deadlines(c, now, true);

		if (d && (!next || d < next))
			next = d;
	}
	if (s->conns && (!next || s->housekeeping_at < next))
		next = s->housekeeping_at;
	if (s->stopping && (!next || s->stop_deadline_ns < next))
		next = s->stop_deadline_ns;
	if (!next)
		return -1;
	if (next <= now)
		return 0;
	/* Round up, so a deadline is never checked a moment early. */
	return (int)((next - now + 999999) / 1000000 > 60000 ? 60000 : (next - now + 999999) / 1000000);
}

static bool drained(struct crid_server *s)
{
	for (struct crid_conn *c = s->conns; c; c = c->next)
		if (crid_conn_serving(c))
			return false;
	return true;
}

int crid_server_run(struct crid_server *s, struct crid_err *err)
{
	struct epoll_event events[64];

	log_info("serving CRI", "socket", s->opts.socket_path);
	for (;;) {
		int timeout = next_timeout_ms(s);
		int n;

		free_closed(s); /* what housekeeping closed: no event names it now */
		if (s->stopping && drained(s))
			break;
		if (s->stopping && crid_now_ns() >= s->stop_deadline_ns) {
			log_warn("shutdown grace period over: cancelling calls still in flight");
			for (struct crid_conn *c = s->conns; c; c = c->next)
				crid_conn_abort_calls(c, CRID_UNAVAILABLE, "crid is shutting down");
			drain_queue(s);
			break;
		}
		n = epoll_wait(s->epfd, events, CRID_ARRAY_SIZE(events), timeout);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return crid_err_set(err, CRID_INTERNAL, errno, "wait for events");
		for (int i = 0; i < n; i++) {
			struct poll_tag *tag = events[i].data.ptr;

			switch (tag->kind) {
			case CRID_POLL_LISTENER:
				if (!s->stopping)
					accept_all(s);
				break;
			case CRID_POLL_NOTIFY:
				drain_queue(s);
				break;
			case CRID_POLL_SIGNAL:
				read_signals(s);
				break;
			case CRID_POLL_CONN: {
				struct crid_conn *conn = (struct crid_conn *)tag;
				int r = 0;

				if (conn->closed)
					break;
				if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
					r = crid_conn_on_readable(conn);
				if (r >= 0 && (events[i].events & EPOLLOUT))
					r = crid_conn_on_writable(conn);
				if (r < 0) {
					log_debug("closing connection", "error", strerror(-r));
					conn_close(s, conn);
				}
				break;
			}
			default:
				break;
			}
		}
		free_closed(s);
	}
	log_info("all calls finished");
	return 0;
}

const struct crid_rpc_methods *crid_server_methods(const struct crid_server *s)
{
	return s->methods;
}

bool crid_server_stopping(const struct crid_server *s)
{
	return s->stopping;
}

bool crid_server_warn_allowed(struct crid_server *s, unsigned *suppressed)
{
	return crid_ratelimit_allow(&s->protocol_warnings, crid_now_ns(), suppressed);
}

int crid_server_run_handler(struct crid_server *s, void (*fn)(void *), void *arg, struct crid_err *err)
{
	return crid_workers_submit(s->workers, fn, arg, err);
}

void crid_server_free(struct crid_server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_close(s, s->conns);
	free_closed(s);
	/* Handlers still running end here; their calls have no connection. */
	crid_workers_free(s->workers);
	if (s->notify_fd >= 0)
		drain_queue(s); /* drops what workers queued last */
	crid_listener_close(&s->listener);
	if (s->epfd >= 0)
		close(s->epfd);
	if (s->notify_fd >= 0)
		close(s->notify_fd);
	if (s->signal_fd >= 0)
		close(s->signal_fd);
	if (s->reserve_fd >= 0)
		close(s->reserve_fd);
	pthread_mutex_destroy(&s->queue_lock);
	free(s);
}
