/* The fuzz input as a file path: the C loaders open paths, so the bytes go into an
   anonymous memory file named /proc/self/fd/N (no disk traffic, nothing to clean up). */
#ifndef MF_FUZZ_MEMFILE_H
#define MF_FUZZ_MEMFILE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static int memfile(const unsigned char *data, size_t size, char path[64]) {
  int fd = memfd_create("fuzz", 0);
  if (fd < 0) abort();
  size_t off = 0;
  while (off < size) {
    ssize_t w = write(fd, data + off, size - off);
    if (w <= 0) abort();
    off += (size_t)w;
  }
  snprintf(path, 64, "/proc/self/fd/%d", fd);
  return fd;
}

#endif
