/* libFuzzer harness: mf_png_read (src/io_png.c), reachable from files through
   core.read_png. A decoded image must have the size it reports. */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <string.h>

#include "io_png.h"
#include "memfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64];
  int fd = memfile(data, size, path);
  int w, h, c;
  unsigned char *px;
  if (mf_png_read(path, &w, &h, &c, &px) == 0) {
    if (w < 1 || h < 1 || c < 1 || c > 4) abort();
    volatile unsigned char sink = px[(size_t)w * h * c - 1]; /* ASan checks the extent */
    (void)sink;
    free(px);
  }
  close(fd);
  return 0;
}
