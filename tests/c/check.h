/* The C tests' one assertion: CHECK(cond, printf-args) counts a pass or
   prints the failure with its place; check_summary() prints the counts and
   gives the exit status. Included once per test program. */
#ifndef MF_TEST_CHECK_H
#define MF_TEST_CHECK_H

#include <stdio.h>

static int passed, failed;

#define CHECK(cond, ...)                          \
  do {                                            \
    if (cond) passed++;                           \
    else {                                        \
      failed++;                                   \
      printf("FAIL %s:%d: ", __FILE__, __LINE__); \
      printf(__VA_ARGS__);                        \
      printf("\n");                               \
    }                                             \
  } while (0)

static int check_summary(void) {
  printf("%d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}

#endif
