/* Whole-file reads (gzip or plain, told apart by zlib) and atomic writes. */
#ifndef MF_IO_GZIP_H
#define MF_IO_GZIP_H

#include "mf.h"

/* A file read in a stream: gzip data (told by its magic bytes 1f 8b) is
   inflated member after member, as gzip(1) does; bytes after the last member
   that do not start another member are an error; plain files pass through. */
typedef struct mf_reader mf_reader;
int mf_reader_open(mf_reader **r, const char *path);
/* Fills buf with up to n bytes of content; *got < n only at the end. A
   corrupt, truncated or trailing-garbage stream is an error. */
int mf_reader_read(mf_reader *r, void *buf, size_t n, size_t *got);
int mf_reader_close(mf_reader *r);

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
