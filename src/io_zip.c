#include "io_zip.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

struct mf_zip {
  zip_t *za;
  char *path;
};

struct mf_zip_member {
  zip_file_t *zf;
  const char *path, *name;
};

int mf_zip_open(mf_zip **out, const char *path) {
  *out = NULL;
  int code = 0;
  zip_t *za = zip_open(path, ZIP_RDONLY | ZIP_CHECKCONS, &code);
  if (!za) {
    zip_error_t e;
    zip_error_init_with_code(&e, code);
    int r = mf_fail("%s: cannot read the zip archive: %s", path, zip_error_strerror(&e));
    zip_error_fini(&e);
    return r;
  }
  mf_zip *z = malloc(sizeof *z);
  char *p = z ? malloc(strlen(path) + 1) : NULL;
  if (!p) {
    free(z);
    zip_discard(za);
    return mf_fail("%s: out of host memory", path);
  }
  strcpy(p, path);
  z->za = za;
  z->path = p;
  *out = z;
  return 0;
}

void mf_zip_close(mf_zip *z) {
  if (!z) return;
  zip_discard(z->za); /* read-only: nothing to write back */
  free(z->path);
  free(z);
}

int64_t mf_zip_count(const mf_zip *z) { return zip_get_num_entries(z->za, 0); }

int mf_zip_stat(mf_zip *z, int64_t i, const char **name, uint64_t *size) {
  zip_stat_t st;
  zip_stat_init(&st);
  if (zip_stat_index(z->za, (zip_uint64_t)i, 0, &st) != 0)
    return mf_fail("%s: member %" PRId64 ": %s", z->path, i + 1, zip_strerror(z->za));
  if (!(st.valid & ZIP_STAT_NAME) || !(st.valid & ZIP_STAT_SIZE))
    return mf_fail("%s: member %" PRId64 " has no name or size", z->path, i + 1);
  *name = st.name;
  *size = st.size;
  return 0;
}

int mf_zip_member_open(mf_zip *z, int64_t i, mf_zip_member **out) {
  *out = NULL;
  const char *name;
  uint64_t size;
  if (mf_zip_stat(z, i, &name, &size)) return -1;
  zip_file_t *zf = zip_fopen_index(z->za, (zip_uint64_t)i, 0);
  if (!zf) return mf_fail("%s: member %s: %s", z->path, name, zip_strerror(z->za));
  mf_zip_member *m = malloc(sizeof *m);
  if (!m) {
    zip_fclose(zf);
    return mf_fail("%s: out of host memory", z->path);
  }
  m->zf = zf;
  m->path = z->path;
  m->name = name;
  *out = m;
  return 0;
}

int mf_zip_member_read(mf_zip_member *m, void *buf, size_t n, size_t *got) {
  *got = 0;
  while (*got < n) {
    zip_int64_t r = zip_fread(m->zf, (char *)buf + *got, n - *got);
    if (r < 0) return mf_fail("%s: member %s: %s", m->path, m->name, zip_file_strerror(m->zf));
    if (r == 0) break;
    *got += (size_t)r;
  }
  return 0;
}

void mf_zip_member_close(mf_zip_member *m) {
  if (!m) return;
  zip_fclose(m->zf);
  free(m);
}
