#include "mf.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static char err[4096];

int mf_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, sizeof err, fmt, ap);
  va_end(ap);
  return -1;
}

const char *mf_last_error(void) { return err; }

static const char *names[MF_NDTYPES] = {"f32", "f64", "i32"};
static const size_t sizes[MF_NDTYPES] = {4, 8, 4};

size_t mf_dtype_size(mf_dtype dt) { return sizes[dt]; }
const char *mf_dtype_name(mf_dtype dt) { return names[dt]; }

int mf_dtype_from_name(const char *name) {
  for (int i = 0; i < MF_NDTYPES; ++i)
    if (strcmp(name, names[i]) == 0) return i;
  return -1;
}

char *mf_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape) {
  size_t n = (size_t)snprintf(buf, cap, "{");
  for (int i = 0; i < ndim && n < cap; ++i)
    n += (size_t)snprintf(buf + n, cap - n, i ? ", %lld" : "%lld", (long long)shape[i]);
  if (n < cap) snprintf(buf + n, cap - n, "}");
  return buf;
}
