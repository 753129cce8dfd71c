/* Connecting to a Unix socket that lives in a directory whose absolute path
 * may be longer than sun_path allows (a deep run root). */
#ifndef CRID_COMMON_UNIX_CONNECT_H
#define CRID_COMMON_UNIX_CONNECT_H

/* Connects a new socket of type (SOCK_STREAM, SOCK_SEQPACKET; the
 * SOCK_CLOEXEC and SOCK_NONBLOCK flags may be or'ed in) to dir/name,
 * reaching it through an O_PATH fd of dir. Returns the connected fd, or
 * -errno as a syscall would: callers turn ENOENT and ECONNREFUSED into
 * their own "not serving" error. */
int crid_unix_connect_in(const char *dir, const char *name, int type);

#endif
