/*
 * transfer.h - the engine's symmetric switch, for the scheduler: a running
 * coroutine hands the CPU straight to a suspended sibling, which takes over
 * its resumer (the one ko_yield() goes back to). Not in korutin.h: only a
 * scheduler that knows both sides should do this.
 */
#ifndef KO_TRANSFER_H
#define KO_TRANSFER_H

#include "korutin.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Non-zero when coroutines on `be` can transfer in this build (backends
 * with copyable contexts, and not in ASan builds, whose fiber annotations
 * need the resumer to run after each switch). */
int ko__can_transfer(const ko_backend *be);

/* Inside coroutine `co` (the current one): suspends it and continues in
 * `to` (suspended, on the same backend, ko__can_transfer), which gets `value`
 * from its pending ko_yield() (a new one just starts) and from now on
 * yields to co's resumer. Returns, like ko_yield(), the value of whichever
 * ko_resume() or ko__transfer() wakes co next. */
void *ko__transfer(ko_coro *to, void *value);

#ifdef __cplusplus
}
#endif

#endif
