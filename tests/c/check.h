/* tests/c/check.h: the counting check and the small helpers shared by the C
 * test programs (one translation unit each, so everything here is static). */
#ifndef TASKFARM_TEST_CHECK_H
#define TASKFARM_TEST_CHECK_H

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int passed;
static int failed;

/* Prints "ok   ..." or "FAIL ..." and counts the result. */
static void check(bool ok, const char *format, ...) {
    va_list args;
    va_start(args, format);
    fputs(ok ? "ok   " : "FAIL ", stdout);
    vprintf(format, args);
    fputc('\n', stdout);
    fflush(stdout);
    va_end(args);
    if (ok) {
        passed++;
    } else {
        failed++;
    }
}

/* The function name at the start of a stringified call ("tf_x(a, b)" -> "tf_x"). */
static void function_name(const char *call, char *name, size_t size) {
    size_t n = strcspn(call, "(");
    if (n >= size) {
        n = size - 1;
    }
    memcpy(name, call, n);
    name[n] = '\0';
}

#endif
