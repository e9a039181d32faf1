/*
 * cb_common.h — conventions shared by every file of the pure C core.
 *
 * The core (src/core) knows nothing of PostgreSQL.  It follows three rules so
 * that the PostgreSQL layer can call it safely:
 *
 *   1. Errors are returned, never thrown: functions that can fail return a
 *      cb_status and fill a caller-provided cb_error with a message that names
 *      the problem (tensor name, offset, piece index ...).
 *   2. Every allocation goes through cb_malloc/cb_realloc/cb_free.  The
 *      defaults are malloc/realloc/free; the PostgreSQL layer installs hooks
 *      that allocate in the current memory context, so an ERROR (which
 *      longjmps out of the core) leaks nothing.  cb_malloc returns NULL on
 *      failure and the caller reports CB_ERR_NOMEM.
 *   3. Long loops call cb_check_interrupts() at safe points (every few
 *      thousand pieces).  The PostgreSQL layer installs a hook that runs
 *      CHECK_FOR_INTERRUPTS(), which may longjmp: code must therefore not
 *      hold anything but cb_malloc'ed memory when it calls it.
 *
 * The compute path (forward pass, generation, matrix products) takes these
 * from an explicit compute context instead, with its thread count
 * (compute.h); rules 2 and 3 are for the readers and the tokenizers.
 */
#ifndef CB_COMMON_H
#define CB_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

typedef enum cb_status
{
	CB_OK = 0,
	CB_ERR_IO,			/* a file could not be opened or read */
	CB_ERR_FORMAT,		/* a file is malformed, truncated or inconsistent */
	CB_ERR_UNSUPPORTED, /* well-formed, but a feature we do not implement */
	CB_ERR_NOMEM,		/* an allocation failed */
	CB_ERR_INVALID,		/* a bad argument from the caller */
	CB_ERR_LIMIT,		/* a size or count over a documented limit */
	CB_ERR_ACCESS,		/* a file outside the directory it is confined to */
	CB_ERR_CANCELED		/* the compute context's stop check said stop (compute.h) */
} cb_status;

#define CB_ERROR_MESSAGE_MAX 512

typedef struct cb_error
{
	cb_status	status;
	int			sys_errno;	/* errno for CB_ERR_IO, else 0 */
	char		message[CB_ERROR_MESSAGE_MAX];
} cb_error;

/* Fill *err (if not NULL) and return status.  printf-style message. */
cb_status	cb_set_error(cb_error *err, cb_status status, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));
void		cb_clear_error(cb_error *err);
const char *cb_status_name(cb_status status);

/* Allocation hooks (see rule 2). */
typedef struct cb_allocator
{
	void	   *(*alloc) (size_t size);
	void	   *(*realloc) (void *ptr, size_t size);
	void		(*free) (void *ptr);
} cb_allocator;

void		cb_set_allocator(const cb_allocator *allocator); /* NULL: libc */
void	   *cb_malloc(size_t size);
void	   *cb_calloc(size_t count, size_t size);	/* overflow-checked, zeroed */
void	   *cb_realloc(void *ptr, size_t size);
void		cb_free(void *ptr);

/*
 * The one growable array of the core: make room for at least `need` elements
 * of `elem` bytes in *ptr (capacity *cap, in elements), keeping its contents.
 * Grows by doubling (1.5x past 4 Mi elements, less slack on huge inputs), at
 * least 32 elements.  `what` names the array in the error message.  On error
 * *ptr and *cap are unchanged (the caller still owns and frees *ptr).
 */
cb_status	cb_grow_array(void **ptr, size_t *cap, size_t need, size_t elem,
						  const char *what, cb_error *err);

/*
 * cb_assert(cond): an invariant of the core, a bug if false — never a check of
 * input (bad input is a returned cb_status).  Active where CB_ASSERTS is 1:
 * the unit, sanitizer and fuzz builds, and the extension built for a server
 * with assertions (USE_ASSERT_CHECKING in its pg_config.h: see the Makefile);
 * there a false condition prints file, line and condition on stderr and
 * aborts, as PostgreSQL's Assert.  Elsewhere the condition is not evaluated.
 */
#if defined(CB_ASSERTS) && CB_ASSERTS
#define cb_assert(cond) ((cond) ? (void) 0 : cb_assert_fail(#cond, __FILE__, __LINE__))
#else
#define cb_assert(cond) ((void) sizeof(!(cond)))
#endif
_Noreturn void cb_assert_fail(const char *cond, const char *file, int line);

/*
 * s[0..len) for a message: copied into buf (bufsize > 3), control bytes as
 * '?', cut to bufsize - 1 bytes with "..." at the end when longer.  Returns buf.
 */
const char *cb_printable(const char *s, size_t len, char *buf, size_t bufsize);

/* Interrupt hook (see rule 3). */
void		cb_set_interrupt_hook(void (*hook) (void));
void		cb_check_interrupts(void);

/*
 * The pool's helper threads (thread_pool.c) mark themselves at start: they
 * only compute, and never allocate or check for interrupts (asserted in
 * cb_malloc, cb_free and the compute context's calls).
 */
void		cb_mark_helper_thread(void);
bool		cb_on_helper_thread(void);

/* Overflow-checked size arithmetic: false on overflow. */
static inline bool
cb_mul_size(size_t a, size_t b, size_t *out)
{
	return !__builtin_mul_overflow(a, b, out);
}
static inline bool
cb_add_size(size_t a, size_t b, size_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

/* Little-endian integers at p (file formats: zip, pickle), whatever the host's order. */
static inline uint16_t
cb_read_le16(const unsigned char *p)
{
	return (uint16_t) (p[0] | (p[1] << 8));
}
static inline uint32_t
cb_read_le32(const unsigned char *p)
{
	return (uint32_t) p[0] | ((uint32_t) p[1] << 8) | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}
static inline uint64_t
cb_read_le64(const unsigned char *p)
{
	return (uint64_t) cb_read_le32(p) | ((uint64_t) cb_read_le32(p + 4) << 32);
}

#endif							/* CB_COMMON_H */
