/* libFuzzer harness: mf_file_read (src/io_gzip.c), whole-file reads through zlib that
   inflate gzip members. The cap is what core.read_file callers should pass for a
   64 KiB input; output beyond it must be refused, never read. */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <string.h>

#include "io_gzip.h"
#include "memfile.h"

#define CAP (64u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64];
  int fd = memfile(data, size, path);
  unsigned char *out;
  size_t len;
  if (mf_file_read(path, CAP, &out, &len) == 0) {
    if (len > CAP) abort(); /* the cap was not honoured */
    if (len) out[len - 1] ^= 1; /* the whole buffer is ours */
    free(out);
  } else if (out != NULL) {
    abort(); /* a failure must not hand out a buffer */
  }
  close(fd);
  return 0;
}
