/* Reading zip archives (numpy's .npz) through libzip: the member list, and
   each member read in a stream, stored or deflated, its CRC checked by
   libzip at the end. */
#ifndef MF_IO_ZIP_H
#define MF_IO_ZIP_H

#include <stdint.h>

#include "mf.h"

typedef struct mf_zip mf_zip;
typedef struct mf_zip_member mf_zip_member;

int mf_zip_open(mf_zip **z, const char *path);
void mf_zip_close(mf_zip *z);
/* number of members, and the name and uncompressed size (as the archive's
   directory states it) of member i (0-based) */
int64_t mf_zip_count(const mf_zip *z);
int mf_zip_stat(mf_zip *z, int64_t i, const char **name, uint64_t *size);
/* a member in a stream: *got < n only at its end */
int mf_zip_member_open(mf_zip *z, int64_t i, mf_zip_member **m);
int mf_zip_member_read(mf_zip_member *m, void *buf, size_t n, size_t *got);
void mf_zip_member_close(mf_zip_member *m);

#endif
