/* Network readiness (network.h). Pod networks through CNI are not set up
 * yet, so the kubelet is told so plainly instead of seeing pods fail. */
#include "network/network.h"

void crid_network_readiness(struct crid_network_readiness *out)
{
	out->ready = false;
	out->reason = "NetworkPluginNotReady";
	out->message = "crid does not set up pod networks through CNI yet";
}
