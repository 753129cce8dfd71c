/* crid-sandbox-init: the process of a pod's sandbox container under a
 * runtime that runs one sandbox per pod (gVisor). It is the sandbox's first
 * process and holds it open for the pod's containers: it reaps whatever is
 * re-parented to it and exits on SIGTERM or SIGINT. Linked statically: it
 * runs in a root file system that holds nothing else. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return 1;
	for (;;) {
		siginfo_t si;

		if (sigwaitinfo(&set, &si) < 0) {
			if (errno == EINTR)
				continue;
			return 1;
		}
		if (si.si_signo != SIGCHLD)
			return 0;
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
	}
}
