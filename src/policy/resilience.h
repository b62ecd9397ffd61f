/* Resilience policies, pure code: retry backoff with full jitter, the
 * database circuit breaker, and adaptive timeouts from observed latency. */
#ifndef PGSCRIBE_RESILIENCE_H
#define PGSCRIBE_RESILIENCE_H

#include "policy/backoff.h"
#include "policy/breaker.h"
#include "policy/latency.h"

#endif
