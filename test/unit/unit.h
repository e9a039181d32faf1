/*
 * unit.h — a minimal unit-test harness for the pure C core.
 *
 * Each test/unit/test_*.c is its own program: it defines test functions,
 * lists them in main() with RUN(fn), and returns unit_finish().  Every CHECK
 * counts as one assertion; the program prints "<name>: N passed, N failed" and
 * exits non-zero if anything failed.  Paths to fixtures are relative to the
 * repository root (tests run from there; see Makefile target `unit`).
 */
#ifndef UNIT_H
#define UNIT_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int	unit_passed = 0;
static int	unit_failed = 0;
static const char *unit_current = "";

#define UNIT_FAIL(...) do { \
	unit_failed++; \
	fprintf(stderr, "FAIL %s (%s:%d): ", unit_current, __FILE__, __LINE__); \
	fprintf(stderr, __VA_ARGS__); \
	fputc('\n', stderr); \
} while (0)

#define CHECK(cond) do { \
	if (cond) unit_passed++; else UNIT_FAIL("%s", #cond); \
} while (0)

#define CHECK_MSG(cond, ...) do { \
	if (cond) unit_passed++; else UNIT_FAIL(__VA_ARGS__); \
} while (0)

#define CHECK_EQ_INT(a, b) do { \
	long long _a = (long long) (a), _b = (long long) (b); \
	if (_a == _b) unit_passed++; \
	else UNIT_FAIL("%s == %s: %lld != %lld", #a, #b, _a, _b); \
} while (0)

#define CHECK_EQ_STR(a, b) do { \
	const char *_a = (a), *_b = (b); \
	if (_a && _b && strcmp(_a, _b) == 0) unit_passed++; \
	else UNIT_FAIL("%s == %s: \"%s\" != \"%s\"", #a, #b, _a ? _a : "(null)", _b ? _b : "(null)"); \
} while (0)

#define CHECK_NEAR(a, b, tol) do { \
	double _a = (double) (a), _b = (double) (b); \
	if (fabs(_a - _b) <= (tol)) unit_passed++; \
	else UNIT_FAIL("|%s - %s| <= %g: %.9g vs %.9g", #a, #b, (double) (tol), _a, _b); \
} while (0)

#define RUN(fn) do { unit_current = #fn; fn(); } while (0)

static inline int
unit_finish(const char *name)
{
	printf("%s: %d passed, %d failed\n", name, unit_passed, unit_failed);
	return unit_failed == 0 ? 0 : 1;
}

#endif							/* UNIT_H */
