/* Pod networking: CNI plugins that give each pod sandbox its interfaces and
 * addresses, and the readiness the runtime reports to the kubelet. Owns
 * network namespaces' contents and IP leases; never touches containers. */
#ifndef CRID_NETWORK_H
#define CRID_NETWORK_H

#include <stdbool.h>

struct crid_network_readiness {
	bool ready;
	const char *reason;  /* CamelCase, for the NetworkReady condition */
	const char *message; /* a sentence for the operator */
};

/* Whether pods can get a network now. */
void crid_network_readiness(struct crid_network_readiness *out);

#endif
