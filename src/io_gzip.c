/* Whole-file reads through zlib's gzread, which passes plain files through
   unchanged and inflates gzip members, and atomic writes (temp + rename). */
#include "io_gzip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

int mf_file_read(const char *path, size_t max_bytes, unsigned char **data, size_t *len) {
  *data = NULL;
  *len = 0;
  errno = 0;
  gzFile g = gzopen(path, "rb");
  if (!g) return mf_fail("%s: cannot open: %s", path, errno ? strerror(errno) : "zlib could not open it");
  size_t cap = 1 << 16, n = 0;
  unsigned char *buf = malloc(cap);
  if (!buf) {
    gzclose(g);
    return mf_fail("%s: out of host memory", path);
  }
  for (;;) {
    if (n == cap) {
      if (cap >= max_bytes) {
        free(buf);
        gzclose(g);
        return mf_fail("%s: more than %zu bytes of content, refused", path, max_bytes);
      }
      size_t nc = cap * 2 > max_bytes ? max_bytes : cap * 2;
      unsigned char *nb = realloc(buf, nc);
      if (!nb) {
        free(buf);
        gzclose(g);
        return mf_fail("%s: out of host memory at %zu bytes", path, nc);
      }
      buf = nb;
      cap = nc;
    }
    size_t want = cap - n > (1u << 30) ? (1u << 30) : cap - n;
    int r = gzread(g, buf + n, (unsigned)want);
    if (r < 0) {
      int code;
      const char *msg = gzerror(g, &code);
      char m[256];
      snprintf(m, sizeof m, "%s", code == Z_ERRNO ? strerror(errno) : msg);
      free(buf);
      gzclose(g);
      return mf_fail("%s: read failed (corrupt or truncated gzip data?): %s", path, m);
    }
    if (r == 0) break;
    n += (size_t)r;
  }
  /* gzread returns what it inflated from a cut stream; the error says so */
  int code;
  gzerror(g, &code);
  if (code == Z_BUF_ERROR) {
    free(buf);
    gzclose(g);
    return mf_fail("%s: corrupt or truncated gzip data (the stream ends early)", path);
  }
  gzclose(g);
  *data = buf;
  *len = n;
  return 0;
}

static int write_all(int fd, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = write(fd, c, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

/* the directory part of path, fsynced so the rename itself is durable */
static void sync_dir(const char *path) {
  char dir[4096];
  const char *slash = strrchr(path, '/');
  if (!slash) snprintf(dir, sizeof dir, ".");
  else snprintf(dir, sizeof dir, "%.*s", (int)(slash - path) + (slash == path), path);
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    fsync(fd);
    close(fd);
  }
}

int mf_file_write_atomic(const char *path, int n, const void *const *chunks, const size_t *lens,
                         int gzip) {
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
    return mf_fail("%s: path too long", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) return mf_fail("%s: cannot create %s: %s", path, tmp, strerror(errno));
  int bad = 0;
  char why[256] = "";
  if (gzip) {
    int fd2 = dup(fd);
    gzFile g = fd2 >= 0 ? gzdopen(fd2, "wb") : NULL;
    if (!g) {
      if (fd2 >= 0) close(fd2);
      bad = 1;
      snprintf(why, sizeof why, "zlib could not open the stream");
    }
    for (int i = 0; i < n && !bad; ++i) {
      size_t off = 0;
      while (off < lens[i] && !bad) {
        size_t m = lens[i] - off > (1u << 30) ? (1u << 30) : lens[i] - off;
        if (gzwrite(g, (const char *)chunks[i] + off, (unsigned)m) != (int)m) {
          int code;
          snprintf(why, sizeof why, "%s", gzerror(g, &code));
          bad = 1;
        }
        off += m;
      }
    }
    if (g && gzclose(g) != Z_OK && !bad) {
      bad = 1;
      snprintf(why, sizeof why, "gzclose failed");
    }
  } else {
    for (int i = 0; i < n && !bad; ++i)
      if (write_all(fd, chunks[i], lens[i])) {
        bad = 1;
        snprintf(why, sizeof why, "%s", strerror(errno));
      }
  }
  if (!bad && fsync(fd) != 0) {
    bad = 1;
    snprintf(why, sizeof why, "fsync: %s", strerror(errno));
  }
  if (close(fd) != 0 && !bad) {
    bad = 1;
    snprintf(why, sizeof why, "close: %s", strerror(errno));
  }
  if (bad) {
    remove(tmp);
    return mf_fail("%s: write failed, previous content kept: %s", path, why);
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    remove(tmp);
    return mf_fail("%s: cannot rename %s over it: %s", path, tmp, strerror(e));
  }
  sync_dir(path);
  return 0;
}
