/* The registry client of registry.h. One GET is request(): it sends the
 * cached credentials, answers one auth challenge, retries connection
 * failures and 5xx/429 with back-off, and (for blobs) resumes with a Range
 * request where the last attempt stopped. */
#include "common/clock.h"
#include "image/registry.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cleanup.h"
#include "common/digest.h"
#include "common/lazylib.h"
#include "common/log.h"
#include "image/challenge.h"
#include "image/manifest.h"

#define MAX_MANIFEST_BYTES (4 << 20)
#define MAX_ERROR_BODY 4096
#define MAX_ATTEMPTS 4
#define MAX_TOKENS 16

struct endpoint {
	char *base; /* "https://host:port[/prefix]", no trailing slash */
	char *ca_file;
	bool mirror;
};

struct token {
	char *key;    /* endpoint base + " " + scope */
	char *header; /* "Authorization: Bearer ..." */
};

struct crid_registry {
	char *domain;
	struct endpoint eps[17];
	size_t n_eps;
	size_t preferred; /* the endpoint that served the manifest */
	unsigned progress_timeout_s;
	unsigned min_rate, rate_window_s; /* bytes/s over the window; window 0: off */
	const atomic_bool *stop;
	const atomic_bool *cancel;
	char *username, *password, *identity_token, *registry_token;

	pthread_mutex_t lock; /* tokens, preferred */
	struct token tokens[MAX_TOKENS];
	size_t n_tokens;

	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];
};

static pthread_mutex_t global_lock = PTHREAD_MUTEX_INITIALIZER;
static bool global_ready;

int crid_registry_global_init(struct crid_err *err)
{
	int r = 0;

	pthread_mutex_lock(&global_lock);
	if (!global_ready) {
		r = crid_lazylib_load(CRID_LIB_CURL, err);
		if (r >= 0 && curl_global_init(CURL_GLOBAL_ALL) != CURLE_OK)
			r = crid_err_set(err, CRID_INTERNAL, 0, "initialise libcurl");
		global_ready = r >= 0;
	}
	pthread_mutex_unlock(&global_lock);
	return r;
}

void crid_registry_global_cleanup(void)
{
	pthread_mutex_lock(&global_lock);
	if (global_ready)
		curl_global_cleanup();
	global_ready = false;
	pthread_mutex_unlock(&global_lock);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access, void *user)
{
	struct crid_registry *r = user;

	pthread_mutex_lock(&r->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *user)
{
	struct crid_registry *r = user;

	pthread_mutex_unlock(&r->share_locks[data]);
}

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static int add_endpoint(struct crid_registry *r, const char *base, const char *ca_file, bool mirror,
			struct crid_err *err)
{
	struct endpoint *ep;
	size_t len;

	if (r->n_eps >= CRID_ARRAY_SIZE(r->eps))
		return crid_err_set(err, CRID_INVALID_ARGUMENT, 0, "too many mirrors for %s", r->domain);
	ep = &r->eps[r->n_eps];
	ep->base = strdup(base);
	ep->ca_file = dup_or_null(ca_file);
	if (!ep->base || (ca_file && *ca_file && !ep->ca_file)) {
		free(ep->base);
		free(ep->ca_file);
		return crid_err_nomem(err, "registry endpoint");
	}
	len = strlen(ep->base);
	while (len > 0 && ep->base[len - 1] == '/')
		ep->base[--len] = '\0';
	ep->mirror = mirror;
	r->n_eps++;
	return 0;
}

int crid_registry_new(struct crid_registry **out, const struct crid_registry_options *o, struct crid_err *err)
{
	const struct crid_registry_config *rc = crid_config_find_registry(o->cfg, o->domain);
	struct crid_registry *r = calloc(1, sizeof(*r));
	_cleanup_free_ char *base = NULL;
	int ret;

	if ((ret = crid_registry_global_init(err)) < 0) {
		free(r);
		return ret;
	}
	if (!r)
		return crid_err_nomem(err, "registry client");
	pthread_mutex_init(&r->lock, NULL);
	for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&r->share_locks[i], NULL);
	r->stop = o->stop;
	r->cancel = o->cancel;
	r->progress_timeout_s = o->cfg->pull_progress_timeout_s;
	r->min_rate = o->cfg->pull_min_bytes_per_s;
	r->rate_window_s = o->cfg->pull_rate_window_s;
	r->domain = strdup(o->domain);
	if (!r->domain) {
		crid_registry_free(r);
		return crid_err_nomem(err, "registry client");
	}
	if (o->auth) {
		r->username = dup_or_null(o->auth->username);
		r->password = dup_or_null(o->auth->password);
		r->identity_token = dup_or_null(o->auth->identity_token);
		r->registry_token = dup_or_null(o->auth->registry_token);
	}
	for (size_t i = 0; rc && i < rc->n_mirrors; i++) {
		ret = add_endpoint(r, rc->mirrors[i].url, rc->mirrors[i].ca_file, true, err);
		if (ret < 0) {
			crid_registry_free(r);
			return ret;
		}
	}
	if (!rc || !rc->mirrors_only) {
		/* Docker Hub's API lives on another host than its image names say. */
		const char *host = strcmp(o->domain, "docker.io") == 0 ? "registry-1.docker.io" : o->domain;

		if (asprintf(&base, "%s://%s", rc && rc->insecure ? "http" : "https", host) < 0) {
			base = NULL;
			crid_registry_free(r);
			return crid_err_nomem(err, "registry URL");
		}
		ret = add_endpoint(r, base, rc ? rc->ca_file : NULL, false, err);
		if (ret < 0) {
			crid_registry_free(r);
			return ret;
		}
	}
	r->share = curl_share_init();
	if (!r->share) {
		crid_registry_free(r);
		return crid_err_nomem(err, "connection cache");
	}
	curl_share_setopt(r->share, CURLSHOPT_LOCKFUNC, share_lock);
	curl_share_setopt(r->share, CURLSHOPT_UNLOCKFUNC, share_unlock);
	curl_share_setopt(r->share, CURLSHOPT_USERDATA, r);
	curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	curl_share_setopt(r->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	*out = r;
	return 0;
}

void crid_registry_free(struct crid_registry *r)
{
	if (!r)
		return;
	if (r->share)
		curl_share_cleanup(r->share);
	for (size_t i = 0; i < r->n_eps; i++) {
		free(r->eps[i].base);
		free(r->eps[i].ca_file);
	}
	for (size_t i = 0; i < r->n_tokens; i++) {
		free(r->tokens[i].key);
		free(r->tokens[i].header);
	}
	free(r->domain);
	free(r->username);
	free(r->password);
	free(r->identity_token);
	free(r->registry_token);
	pthread_mutex_destroy(&r->lock);
	for (size_t i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_destroy(&r->share_locks[i]);
	free(r);
}

/* One transfer's state. Bodies of non-2xx answers are kept (bounded) for
 * the error message; 2xx bodies go to the buffer or the sink. */
struct xfer {
	struct crid_registry *r;
	CURL *curl;
	char *www_auth;
	char *content_type;
	char *body;
	size_t body_len, body_cap, body_max;
	/* Sink mode (blobs). */
	crid_blob_sink sink;
	void *sink_data;
	struct crid_sha256 *hash;
	uint64_t received; /* bytes given to the sink so far, across attempts */
	uint64_t skip;	   /* bytes of this answer already received before */
	uint64_t progress_seen; /* bytes at the last sign of progress */
	int64_t progress_at;	/* CLOCK_MONOTONIC seconds of that sign */
	bool stalled;
	uint64_t window_bytes; /* bytes when the current rate window began */
	int64_t window_at;     /* CLOCK_MONOTONIC seconds it began */
	bool too_slow;
	int64_t expected_size;
	int sink_rc;
	struct crid_err *sink_err;
};

static void xfer_reset_answer(struct xfer *x)
{
	free(x->www_auth);
	free(x->content_type);
	x->www_auth = x->content_type = NULL;
	x->body_len = 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
	struct xfer *x = user;
	size_t len = size * n;
	char **slot = NULL;
	size_t name_len;

	/* A new status line starts the headers of the next answer (redirect). */
	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		xfer_reset_answer(x);
		return len;
	}
	if (len > 17 && strncasecmp(data, "WWW-Authenticate:", 17) == 0) {
		slot = &x->www_auth;
		name_len = 17;
	} else if (len > 13 && strncasecmp(data, "Content-Type:", 13) == 0) {
		slot = &x->content_type;
		name_len = 13;
	}
	if (slot && !*slot) {
		const char *v = data + name_len;
		size_t vlen = len - name_len;

		while (vlen > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vlen--;
		}
		while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' || v[vlen - 1] == ' '))
			vlen--;
		*slot = strndup(v, vlen);
		if (!*slot)
			return 0; /* aborts the transfer: out of memory */
	}
	return len;
}

static bool status_ok(long status)
{
	return status >= 200 && status < 300;
}

static size_t append_body(struct xfer *x, const char *data, size_t len, size_t max)
{
	if (x->body_len + len > max)
		return 0; /* too large: abort */
	if (x->body_len + len + 1 > x->body_cap) {
		size_t cap = x->body_cap ? x->body_cap : 4096;
		char *grown;

		while (cap < x->body_len + len + 1)
			cap *= 2;
		grown = realloc(x->body, cap);
		if (!grown)
			return 0;
		x->body = grown;
		x->body_cap = cap;
	}
	memcpy(x->body + x->body_len, data, len);
	x->body_len += len;
	x->body[x->body_len] = '\0';
	return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *user)
{
	struct xfer *x = user;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
	if (!status_ok(status)) {
		/* Keep the start of an error body; drop the rest quietly. */
		if (x->body_len < MAX_ERROR_BODY)
			append_body(x, data, len < MAX_ERROR_BODY - x->body_len ? len : MAX_ERROR_BODY - x->body_len,
				    MAX_ERROR_BODY);
		return len;
	}
	if (!x->sink)
		return append_body(x, data, len, x->body_max);
	/* A server that ignored our Range sends from the start again. */
	if (x->skip > 0) {
		size_t drop = x->skip < len ? (size_t)x->skip : len;

		x->skip -= drop;
		data += drop;
		len -= drop;
		if (len == 0)
			return size * n;
	}
	if (x->expected_size >= 0 && x->received + len > (uint64_t)x->expected_size) {
		x->sink_rc = crid_err_set(x->sink_err, CRID_DATA_LOSS, 0,
					  "blob is larger than the %lld bytes its manifest says",
					  (long long)x->expected_size);
		return 0;
	}
	crid_sha256_update(x->hash, data, len);
	x->received += len;
	x->sink_rc = x->sink(x->sink_data, data, len, x->sink_err);
	return x->sink_rc < 0 ? 0 : size * n;
}

/* Called about once a second even when nothing arrives: aborts on shutdown,
 * and when no byte came for the progress timeout. (curl's own low-speed
 * check averages over several seconds, so it fires late.) */
static bool stopped(const struct crid_registry *r)
{
	return (r->stop && atomic_load(r->stop)) || (r->cancel && atomic_load(r->cancel));
}

/* A registry that trickles a byte now and then never stalls: the rate
 * over each window must reach the minimum too. */
static bool too_slow(struct xfer *x, int64_t now, uint64_t bytes)
{
	const struct crid_registry *r = x->r;

	if (!r->rate_window_s || !r->min_rate)
		return false;
	if (x->window_at == 0) {
		x->window_at = now;
		x->window_bytes = bytes;
		return false;
	}
	if (now - x->window_at < (int64_t)r->rate_window_s)
		return false;
	if (bytes - x->window_bytes < (uint64_t)r->min_rate * r->rate_window_s)
		return true;
	x->window_at = now;
	x->window_bytes = bytes;
	return false;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct xfer *x = user;
	int64_t now = crid_monotonic_ns() / 1000000000LL;

	if (stopped(x->r))
		return 1;
	if (too_slow(x, now, (uint64_t)dlnow)) {
		x->too_slow = true;
		return 1;
	}
	if ((uint64_t)dlnow != x->progress_seen || x->progress_at == 0) {
		x->progress_seen = (uint64_t)dlnow;
		x->progress_at = now;
		return 0;
	}
	if (now - x->progress_at >= (int64_t)x->r->progress_timeout_s) {
		x->stalled = true;
		return 1;
	}
	return 0;
}

static void slist_freep(struct curl_slist **l)
{
	curl_slist_free_all(*l);
}

static void curl_freep(CURL **c)
{
	if (*c)
		curl_easy_cleanup(*c);
}

static bool retryable_curl(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_GOT_NOTHING:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return true;
	default:
		return false;
	}
}

static void backoff(struct crid_registry *r, int attempt)
{
	/* 250 ms, 500 ms, 1 s, with a little jitter. */
	long ms = 250L << (attempt > 3 ? 3 : attempt);
	struct timespec ts;

	ms += rand() % 100;
	for (long waited = 0; waited < ms; waited += 50) {
		if (stopped(r))
			return;
		ts.tv_sec = 0;
		ts.tv_nsec = 50 * 1000000L;
		nanosleep(&ts, NULL);
	}
}

/* Sets the options every request shares. */
static int setup_curl(struct crid_registry *r, const struct endpoint *ep, CURL *c, struct xfer *x)
{
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_SHARE, r->share);
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "crid/" CRID_VERSION);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, x);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	if (ep && ep->ca_file) {
		/* Extra CAs on top of the system's. */
		curl_easy_setopt(c, CURLOPT_CAINFO, ep->ca_file);
		curl_easy_setopt(c, CURLOPT_CAPATH, "/etc/ssl/certs");
	}
	return 0;
}

static char *url_escape(const char *s)
{
	char *e = curl_easy_escape(NULL, s, 0);
	char *copy = e ? strdup(e) : NULL;

	curl_free(e);
	return copy;
}

/* Gets a bearer token from the challenge's realm. */
static int fetch_token(struct crid_registry *r, const struct endpoint *ep, const struct crid_challenge *ch,
		       const char *repo, char **header, struct crid_err *err)
{
	const char *realm = ch->realm, *service = ch->service;
	_cleanup_free_ char *scope = ch->scope ? strdup(ch->scope) : NULL;
	_cleanup_free_ char *url = NULL, *esc_service = NULL, *esc_scope = NULL, *form = NULL;
	_cleanup_(curl_freep) CURL *c = NULL;
	struct xfer x = { .r = r, .body_max = 1 << 20 };
	json_t *doc, *tok;
	CURLcode rc;
	long status = 0;
	int ret;

	if (ch->scope && !scope)
		return crid_err_nomem(err, "token scope");
	if (!realm || strncmp(realm, "http", 4) != 0)
		return crid_err_set(err, CRID_UNAUTHENTICATED, 0, "registry %s asks for a token without a usable realm",
				    r->domain);
	if (!scope && asprintf(&scope, "repository:%s:pull", repo) < 0) {
		scope = NULL;
		return crid_err_nomem(err, "token scope");
	}
	esc_service = url_escape(service ? service : "");
	esc_scope = url_escape(scope);
	if (!esc_service || !esc_scope)
		return crid_err_nomem(err, "token request");
	c = curl_easy_init();
	if (!c)
		return crid_err_nomem(err, "token request");
	x.curl = c;
	setup_curl(r, ep, c, &x);
	if (r->identity_token) {
		/* OAuth2: trade the refresh token for an access token. */
		_cleanup_free_ char *esc_refresh = url_escape(r->identity_token);

		if (!esc_refresh || asprintf(&form, "grant_type=refresh_token&client_id=crid&service=%s&scope=%s"
						    "&refresh_token=%s",
					     esc_service, esc_scope, esc_refresh) < 0) {
			form = NULL;
			return crid_err_nomem(err, "token request");
		}
		curl_easy_setopt(c, CURLOPT_URL, realm);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);
	} else {
		if (asprintf(&url, "%s%sservice=%s&scope=%s", realm, strchr(realm, '?') ? "&" : "?", esc_service,
			     esc_scope) < 0) {
			url = NULL;
			return crid_err_nomem(err, "token URL");
		}
		curl_easy_setopt(c, CURLOPT_URL, url);
		if (r->username) {
			curl_easy_setopt(c, CURLOPT_USERNAME, r->username);
			curl_easy_setopt(c, CURLOPT_PASSWORD, r->password ? r->password : "");
			curl_easy_setopt(c, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		}
	}
	rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK) {
		ret = crid_err_set(err, CRID_UNAVAILABLE, 0, "get a token from %s: %s", realm, curl_easy_strerror(rc));
		goto out;
	}
	/* OAuth2 answers a refused refresh token with 400 invalid_grant. */
	if (status == 401 || status == 403 || (status == 400 && r->identity_token)) {
		ret = crid_err_set(err, CRID_UNAUTHENTICATED, 0, "registry %s refused %s: the token server %s answered %ld",
				   r->domain, r->username || r->identity_token ? "the credentials" : "anonymous access",
				   realm, status);
		goto out;
	}
	if (!status_ok(status)) {
		ret = crid_err_set(err, CRID_UNAVAILABLE, 0, "get a token from %s: HTTP %ld", realm, status);
		goto out;
	}
	doc = json_loadb(x.body ? x.body : "", x.body_len, 0, NULL);
	tok = doc ? json_object_get(doc, "token") : NULL;
	if (!json_is_string(tok) || !*json_string_value(tok))
		tok = doc ? json_object_get(doc, "access_token") : NULL;
	if (!json_is_string(tok) || !*json_string_value(tok)) {
		json_decref(doc);
		ret = crid_err_set(err, CRID_UNAVAILABLE, 0, "token server %s sent no token", realm);
		goto out;
	}
	ret = asprintf(header, "Authorization: Bearer %s", json_string_value(tok)) < 0 ? -ENOMEM : 0;
	json_decref(doc);
	if (ret < 0) {
		*header = NULL;
		ret = crid_err_nomem(err, "token");
	}
out:
	xfer_reset_answer(&x);
	free(x.body);
	return ret;
}

static const char *cached_auth(struct crid_registry *r, const char *key)
{
	for (size_t i = 0; i < r->n_tokens; i++)
		if (strcmp(r->tokens[i].key, key) == 0)
			return r->tokens[i].header;
	return NULL;
}

/* Stores an Authorization header for an endpoint and repository. */
static void cache_auth(struct crid_registry *r, const char *key, char *header)
{
	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n_tokens; i++) {
		if (strcmp(r->tokens[i].key, key) == 0) {
			free(r->tokens[i].header);
			r->tokens[i].header = header;
			pthread_mutex_unlock(&r->lock);
			return;
		}
	}
	if (r->n_tokens < MAX_TOKENS) {
		char *k = strdup(key);

		if (k) {
			r->tokens[r->n_tokens].key = k;
			r->tokens[r->n_tokens].header = header;
			r->n_tokens++;
			pthread_mutex_unlock(&r->lock);
			return;
		}
	}
	pthread_mutex_unlock(&r->lock);
	free(header);
}

/* Answers a 401: works out the Authorization header to send next. */
static int answer_challenge(struct crid_registry *r, const struct endpoint *ep, const char *challenge,
			    const char *repo, const char *key, struct crid_err *err)
{
	_cleanup_(crid_challenge_free) struct crid_challenge ch = { 0 };
	char *header = NULL;
	int ret;

	if (!challenge)
		return crid_err_set(err, CRID_UNAUTHENTICATED, 0, "registry %s refused access and said no way to log in",
				    ep->base);
	if (crid_challenge_parse(challenge, &ch, err) < 0)
		return crid_err_set(err, CRID_UNAUTHENTICATED, 0, "registry %s: %s", ep->base, err->msg);
	if (ch.scheme == CRID_CHALLENGE_BEARER) {
		if (r->registry_token) {
			if (asprintf(&header, "Authorization: Bearer %s", r->registry_token) < 0)
				return crid_err_nomem(err, "token");
		} else {
			ret = fetch_token(r, ep, &ch, repo, &header, err);
			if (ret < 0)
				return ret;
		}
	} else if (ch.scheme == CRID_CHALLENGE_BASIC) {
		_cleanup_free_ char *pair = NULL;
		char *encoded;
		size_t len;

		if (!r->username)
			return crid_err_set(err, CRID_UNAUTHENTICATED, 0,
					    "registry %s requires credentials and none were given", ep->base);
		if (asprintf(&pair, "%s:%s", r->username, r->password ? r->password : "") < 0) {
			pair = NULL;
			return crid_err_nomem(err, "credentials");
		}
		len = strlen(pair);
		encoded = calloc(1, 4 * ((len + 2) / 3) + 1);
		if (!encoded)
			return crid_err_nomem(err, "credentials");
		EVP_EncodeBlock((unsigned char *)encoded, (const unsigned char *)pair, (int)len);
		ret = asprintf(&header, "Authorization: Basic %s", encoded);
		free(encoded);
		if (ret < 0)
			return crid_err_nomem(err, "credentials");
	} else {
		return crid_err_set(err, CRID_UNAUTHENTICATED, 0, "registry %s asks for an unsupported login: %s",
				    ep->base, ch.scheme_name);
	}
	cache_auth(r, key, header);
	return 0;
}

/* One GET of base + path against one endpoint. Returns the final HTTP
 * status (>= 200), or a negative errno with err set. For sink transfers,
 * x->received carries over between attempts so a retry resumes. */
static int request(struct crid_registry *r, const struct endpoint *ep, const char *path, const char *repo,
		   const char *accept, struct xfer *x, struct crid_err *err)
{
	_cleanup_free_ char *url = NULL, *key = NULL;
	bool answered_challenge = false;
	int attempt = 0;

	if (asprintf(&url, "%s%s", ep->base, path) < 0 || asprintf(&key, "%s %s", ep->base, repo) < 0)
		return crid_err_nomem(err, "request URL");
	for (;;) {
		_cleanup_(curl_freep) CURL *c = curl_easy_init();
		_cleanup_(slist_freep) struct curl_slist *headers = NULL;
		char range[64], accept_header[512];
		const char *auth;
		long status = 0;
		CURLcode rc;

		if (!c)
			return crid_err_nomem(err, "HTTP request");
		x->curl = c;
		x->stalled = x->too_slow = false;
		x->progress_seen = 0;
		x->progress_at = 0;
		x->window_at = 0;
		xfer_reset_answer(x);
		setup_curl(r, ep, c, x);
		curl_easy_setopt(c, CURLOPT_URL, url);
		if (accept) {
			snprintf(accept_header, sizeof(accept_header), "Accept: %s", accept);
			headers = curl_slist_append(headers, accept_header);
		}
		pthread_mutex_lock(&r->lock);
		auth = cached_auth(r, key);
		if (auth)
			headers = curl_slist_append(headers, auth);
		pthread_mutex_unlock(&r->lock);
		if (x->sink && x->received > 0) {
			snprintf(range, sizeof(range), "Range: bytes=%llu-", (unsigned long long)x->received);
			headers = curl_slist_append(headers, range);
		}
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
		rc = curl_easy_perform(c);
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
		x->curl = NULL;
		if (x->sink_rc < 0)
			return x->sink_rc; /* the sink's own error, already in err */
		if (rc == CURLE_ABORTED_BY_CALLBACK && r->stop && atomic_load(r->stop))
			return crid_err_set(err, CRID_CANCELLED, ECANCELED, "crid is shutting down");
		if (rc == CURLE_ABORTED_BY_CALLBACK && r->cancel && atomic_load(r->cancel))
			return crid_err_set(err, CRID_CANCELLED, ECANCELED,
					    "every client waiting for the pull has gone");
		if (rc == CURLE_ABORTED_BY_CALLBACK && x->stalled)
			return crid_err_set(err, CRID_UNAVAILABLE, ETIMEDOUT, "registry %s: no progress for %u s",
					    ep->base, r->progress_timeout_s);
		if (rc == CURLE_ABORTED_BY_CALLBACK && x->too_slow)
			return crid_err_set(err, CRID_UNAVAILABLE, ETIMEDOUT,
					    "registry %s: slower than %u bytes/s over %u s (pull_min_bytes_per_s)",
					    ep->base, r->min_rate, r->rate_window_s);
		if (rc == CURLE_WRITE_ERROR && !x->sink)
			return crid_err_set(err, CRID_RESOURCE_EXHAUSTED, 0, "%s: answer larger than %zu bytes", url,
					    x->body_max);
		if (rc != CURLE_OK) {
			if (retryable_curl(rc) && ++attempt < MAX_ATTEMPTS) {
				log_debug("registry request failed; retrying", "url", url, "error",
					  curl_easy_strerror(rc));
				backoff(r, attempt);
				continue;
			}
			return crid_err_set(err, CRID_UNAVAILABLE, 0, "registry %s is unreachable: %s", ep->base,
					    curl_easy_strerror(rc));
		}
		if (status == 401 && !answered_challenge) {
			int ret = answer_challenge(r, ep, x->www_auth, repo, key, err);

			if (ret < 0)
				return ret;
			answered_challenge = true;
			continue;
		}
		if (status == 401 || status == 403)
			return crid_err_set(err, CRID_UNAUTHENTICATED, 0, "registry %s refused %s (HTTP %ld)", ep->base,
					    r->username || r->registry_token || r->identity_token
						    ? "the credentials"
						    : "anonymous access",
					    status);
		if ((status >= 500 || status == 429) && ++attempt < MAX_ATTEMPTS) {
			log_debug("registry busy or failing; retrying", "url", url);
			backoff(r, attempt);
			continue;
		}
		if (x->sink && status == 200 && x->received > 0)
			x->skip = x->received; /* Range ignored: the bytes come again */
		return (int)status;
	}
}

/* "HTTP 404" plus the registry's own error text when it sent JSON. */
static void describe_failure(struct xfer *x, int status, char *out, size_t size)
{
	json_t *doc = x->body_len ? json_loadb(x->body, x->body_len, 0, NULL) : NULL;
	json_t *errors = doc ? json_object_get(doc, "errors") : NULL;
	json_t *first = json_is_array(errors) ? json_array_get(errors, 0) : NULL;
	const char *msg = first ? json_string_value(json_object_get(first, "message")) : NULL;

	if (msg)
		snprintf(out, size, "HTTP %d: %s", status, msg);
	else
		snprintf(out, size, "HTTP %d", status);
	json_decref(doc);
}

static bool is_digest_ref(const char *reference)
{
	return strncmp(reference, "sha256:", 7) == 0;
}

int crid_registry_get_manifest(struct crid_registry *r, const char *repo, const char *reference, char **body,
			       size_t *len, char **content_type, char **digest, struct crid_err *err)
{
	_cleanup_free_ char *path = NULL;
	struct crid_err last;
	bool any_reached = false;
	int ret = -ENOENT;

	if (r->n_eps == 0)
		return crid_err_set(err, CRID_FAILED_PRECONDITION, 0, "registry %s has no endpoint", r->domain);
	if (asprintf(&path, "/v2/%s/manifests/%s", repo, reference) < 0) {
		path = NULL;
		return crid_err_nomem(err, "manifest URL");
	}
	crid_err_clear(&last);
	for (size_t i = 0; i < r->n_eps; i++) {
		const struct endpoint *ep = &r->eps[i];
		struct xfer x = { .r = r, .body_max = MAX_MANIFEST_BYTES, .expected_size = -1 };
		char why[512], computed[CRID_DIGEST_LEN + 1];
		int status = request(r, ep, path, repo, CRID_MANIFEST_ACCEPT, &x, &last);

		if (status < 0) {
			ret = status;
			if (last.status == CRID_UNAUTHENTICATED || last.status == CRID_CANCELLED) {
				xfer_reset_answer(&x);
				free(x.body);
				break;
			}
			log_debug("registry endpoint failed", "endpoint", ep->base, "error", last.msg);
		} else if (status_ok(status)) {
			ret = crid_sha256_digest(x.body ? x.body : "", x.body_len, computed, &last);
			if (ret == 0 && is_digest_ref(reference) && strcmp(computed, reference) != 0)
				ret = crid_err_set(&last, CRID_DATA_LOSS, 0,
						   "manifest from %s does not match its digest %s (got %s)", ep->base,
						   reference, computed);
			if (ret == 0) {
				*digest = strdup(computed);
				*content_type = x.content_type ? strdup(x.content_type) : NULL;
				*body = x.body ? x.body : strdup("");
				*len = x.body_len;
				x.body = NULL;
				if (!*digest || !*body || (x.content_type && !*content_type)) {
					free(*digest);
					free(*content_type);
					free(*body);
					xfer_reset_answer(&x);
					return crid_err_nomem(err, "manifest");
				}
				xfer_reset_answer(&x);
				pthread_mutex_lock(&r->lock);
				r->preferred = i;
				pthread_mutex_unlock(&r->lock);
				return 0;
			}
		} else {
			any_reached = true;
			describe_failure(&x, status, why, sizeof(why));
			ret = crid_err_set(&last, status == 404 ? CRID_NOT_FOUND : CRID_UNAVAILABLE, 0,
					   "manifest %s:%s %s at %s (%s)", repo, reference,
					   status == 404 ? "not found" : "not available", ep->base, why);
		}
		xfer_reset_answer(&x);
		free(x.body);
	}
	(void)any_reached;
	*err = last;
	return ret < 0 ? ret : -EIO;
}

static int get_blob_from(struct crid_registry *r, const struct endpoint *ep, const char *repo, const char *digest,
			 struct xfer *x, struct crid_err *err)
{
	_cleanup_free_ char *path = NULL;
	char why[512];
	int status;

	if (asprintf(&path, "/v2/%s/blobs/%s", repo, digest) < 0) {
		path = NULL;
		return crid_err_nomem(err, "blob URL");
	}
	status = request(r, ep, path, repo, NULL, x, err);
	if (status < 0)
		return status;
	if (!status_ok(status)) {
		describe_failure(x, status, why, sizeof(why));
		return crid_err_set(err, status == 404 ? CRID_NOT_FOUND : CRID_UNAVAILABLE, 0,
				    "blob %s of %s from %s: %s", digest, repo, ep->base, why);
	}
	return 0;
}

int crid_registry_get_blob(struct crid_registry *r, const char *repo, const char *digest, int64_t size,
			   crid_blob_sink sink, void *data, struct crid_err *err)
{
	struct xfer x = { .r = r, .sink = sink, .sink_data = data, .expected_size = size, .sink_err = err };
	char computed[CRID_DIGEST_LEN + 1];
	size_t first;
	int ret;

	ret = crid_sha256_new(&x.hash, err);
	if (ret < 0)
		return ret;
	pthread_mutex_lock(&r->lock);
	first = r->preferred;
	pthread_mutex_unlock(&r->lock);
	ret = -ENOENT;
	/* The endpoint that served the manifest first, then the others — but
	 * only while nothing reached the sink: bytes cannot be taken back. */
	for (size_t k = 0; k < r->n_eps; k++) {
		size_t i = (first + k) % r->n_eps;

		ret = get_blob_from(r, &r->eps[i], repo, digest, &x, err);
		if (ret == 0 || x.received > 0 || err->status == CRID_CANCELLED || err->status == CRID_UNAUTHENTICATED)
			break;
	}
	if (ret == 0) {
		crid_sha256_final(x.hash, computed);
		if (size >= 0 && x.received != (uint64_t)size)
			ret = crid_err_set(err, CRID_DATA_LOSS, 0, "blob %s: got %llu bytes, its manifest says %lld",
					   digest, (unsigned long long)x.received, (long long)size);
		else if (strcmp(computed, digest) != 0)
			ret = crid_err_set(err, CRID_DATA_LOSS, 0, "blob %s does not match its digest (got %s)", digest,
					   computed);
	}
	xfer_reset_answer(&x);
	free(x.body);
	crid_sha256_free(x.hash);
	return ret;
}
