/* ingot error codes, shared by every layer (header only, no library needed).
 *
 * Functions that can fail return an int: 0 on success, -errno for a failed
 * system call, or one of the IG_E... codes below, which sit in a reserved
 * negative range so they never collide with -errno. ig_strerror() names both.
 */
#ifndef INGOT_ERROR_H
#define INGOT_ERROR_H

#include <string.h>

#define IG_E_BASE (-30000)

enum ig_error {
	IG_EINVAL = IG_E_BASE - 1,     /* an argument is out of its domain */
	IG_ENOMEM = IG_E_BASE - 2,     /* an allocation failed */
	IG_ENOACTOR = IG_E_BASE - 3,   /* the actor ref names no live actor */
	IG_EFULL = IG_E_BASE - 4,      /* a bounded mailbox or queue is full */
	IG_ETIMEDOUT = IG_E_BASE - 5,  /* a deadline passed first */
	IG_EAGAIN = IG_E_BASE - 6,     /* not ready yet; try again */
	IG_EEXIST = IG_E_BASE - 7,     /* the name is taken */
	IG_ENOTFOUND = IG_E_BASE - 8,  /* nothing by that name or path */
	IG_ESTOPPED = IG_E_BASE - 9,   /* the system or object is shutting down */
	IG_ECANCELED = IG_E_BASE - 10, /* the operation was canceled */
	IG_EFAILED = IG_E_BASE - 11,   /* an actor failed (generic behavior error) */
	IG_ECORRUPT = IG_E_BASE - 12,  /* input bytes are malformed */
	IG_ERANGE = IG_E_BASE - 13,    /* a value does not fit its field */
	IG_ESTATE = IG_E_BASE - 14,    /* the call is not valid in this state */
	IG_ECLOSED = IG_E_BASE - 15,   /* the peer or connection is closed */
	IG_ECONFLICT = IG_E_BASE - 16, /* a row changed after the caller's commitMaxTxn */
	IG_E_LAST = IG_E_BASE - 17
};

/** Names an error code: an IG_E... code, a -errno value, or 0.
 *  Returns a static string; never NULL. Thread-safe for IG_E... codes and
 *  for the errno values glibc names (strerror's table is static there). */
static inline const char *ig_strerror(int err)
{
	switch (err) {
	case 0: return "success";
	case IG_EINVAL: return "invalid argument";
	case IG_ENOMEM: return "out of memory";
	case IG_ENOACTOR: return "no such actor";
	case IG_EFULL: return "mailbox or queue full";
	case IG_ETIMEDOUT: return "timed out";
	case IG_EAGAIN: return "not ready";
	case IG_EEXIST: return "name already taken";
	case IG_ENOTFOUND: return "not found";
	case IG_ESTOPPED: return "stopped";
	case IG_ECANCELED: return "canceled";
	case IG_EFAILED: return "actor failed";
	case IG_ECORRUPT: return "corrupt input";
	case IG_ERANGE: return "value out of range";
	case IG_ESTATE: return "invalid state for this call";
	case IG_ECLOSED: return "closed";
	case IG_ECONFLICT: return "conflict: row changed after the given txn";
	default: break;
	}
	if (err < 0 && err > IG_E_BASE)
		return strerror(-err);
	return "unknown error";
}

#endif
