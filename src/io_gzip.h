/* Whole-file reads (gzip or plain, told apart by zlib) and atomic writes. */
#ifndef MF_IO_GZIP_H
#define MF_IO_GZIP_H

#include "mf.h"

/* Reads path whole, inflating it when it is gzip data; *data is malloc'ed
   (free it). Refuses outputs above max_bytes (a hostile file cannot
   exhaust memory). */
int mf_file_read(const char *path, size_t max_bytes, unsigned char **data, size_t *len);

/* Writes the n chunks to "<path>.tmp.<pid>", fsyncs it and renames it over
   path, so that path holds either its old content or all of the new one. With
   gzip set the content is gzip-compressed. */
int mf_file_write_atomic(const char *path, int n, const void *const *chunks, const size_t *lens,
                         int gzip);

#endif
