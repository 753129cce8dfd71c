/* Unix sockets: connecting to one that lives in a directory whose absolute
 * path may be longer than sun_path allows (a deep run root), and taking the
 * file descriptor a peer passes (an OCI runtime's console socket). */
#ifndef CRID_COMMON_UNIX_SOCKET_H
#define CRID_COMMON_UNIX_SOCKET_H

/* Connects a new socket of type (SOCK_STREAM, SOCK_SEQPACKET; the
 * SOCK_CLOEXEC and SOCK_NONBLOCK flags may be or'ed in) to dir/name,
 * reaching it through an O_PATH fd of dir. Returns the connected fd, or
 * -errno as a syscall would: callers turn ENOENT and ECONNREFUSED into
 * their own "not serving" error. */
int crid_unix_connect_in(const char *dir, const char *name, int type);

/* Receives one message on sock and takes the first file descriptor passed
 * with it (O_CLOEXEC), closing any others. 0 with *fd -1 when none came;
 * -errno when the receive failed. */
int crid_unix_recv_fd(int sock, int *fd);

#endif
