/* Reads that inflate gzip data in a stream (plain files pass through) and
   atomic writes (temp + rename). */
#include "io_gzip.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

/* Streaming reader: plain files pass through; a file that starts with the
   gzip magic is inflated member after member, as gzip(1) does, and anything
   after the last member that is not another member is an error (zlib's
   gzread would ignore it). */
#define MF_IN_CAP (1u << 16)

struct mf_reader {
  FILE *f;
  char *path;
  int gz;        /* 1 when the file is gzip data */
  int member;    /* 1 while inside a gzip member, 0 between members */
  int eof;       /* no more bytes in the file */
  z_stream z;
  unsigned char in[MF_IN_CAP];
};

/* more input into r->in when it is empty; returns -1 on a read error */
static int fill(mf_reader *r) {
  if (r->z.avail_in > 0 || r->eof) return 0;
  size_t n = fread(r->in, 1, MF_IN_CAP, r->f);
  if (n < MF_IN_CAP) {
    if (ferror(r->f)) return mf_fail("%s: read failed: %s", r->path, strerror(errno));
    r->eof = 1;
  }
  r->z.next_in = r->in;
  r->z.avail_in = (uInt)n;
  return 0;
}

int mf_reader_open(mf_reader **out, const char *path) {
  *out = NULL;
  mf_reader *r = calloc(1, sizeof *r);
  char *p = r ? malloc(strlen(path) + 1) : NULL;
  if (!p) {
    free(r);
    return mf_fail("%s: out of host memory", path);
  }
  strcpy(p, path);
  r->path = p;
  errno = 0;
  r->f = fopen(path, "rb");
  if (!r->f) {
    int e = errno;
    free(p);
    free(r);
    return mf_fail("%s: cannot open: %s", path, strerror(e));
  }
  if (fill(r)) {
    mf_reader_close(r);
    return -1;
  }
  /* one byte may be a cut magic; treat a lone 0x1f as plain data */
  if (r->z.avail_in >= 2 && r->in[0] == 0x1f && r->in[1] == 0x8b) {
    r->gz = 1;
    if (inflateInit2(&r->z, 15 + 16) != Z_OK) { /* 15 + 16: gzip wrapper only */
      r->gz = 0;
      mf_reader_close(r);
      return mf_fail("%s: zlib could not start inflating", path);
    }
    r->member = 1;
  }
  *out = r;
  return 0;
}

/* the next member starts here, or the data ended; anything else is an error */
static int next_member(mf_reader *r, int *done) {
  *done = 0;
  if (fill(r)) return -1;
  if (r->z.avail_in == 0) {
    *done = 1;
    return 0;
  }
  if (r->z.avail_in == 1 && !r->eof) { /* the magic may straddle two reads */
    r->in[0] = r->z.next_in[0];
    size_t n = fread(r->in + 1, 1, MF_IN_CAP - 1, r->f);
    if (n < MF_IN_CAP - 1) {
      if (ferror(r->f)) return mf_fail("%s: read failed: %s", r->path, strerror(errno));
      r->eof = 1;
    }
    r->z.next_in = r->in;
    r->z.avail_in = (uInt)(n + 1);
  }
  if (r->z.avail_in < 2 || r->z.next_in[0] != 0x1f || r->z.next_in[1] != 0x8b)
    return mf_fail("%s: bytes after the gzip data that are not a gzip member", r->path);
  if (inflateReset(&r->z) != Z_OK) return mf_fail("%s: zlib could not restart", r->path);
  r->member = 1;
  return 0;
}

int mf_reader_read(mf_reader *r, void *buf, size_t n, size_t *got) {
  unsigned char *out = buf;
  *got = 0;
  if (!r->gz) {
    while (*got < n) {
      if (fill(r)) return -1;
      if (r->z.avail_in == 0) break;
      size_t m = n - *got < r->z.avail_in ? n - *got : r->z.avail_in;
      memcpy(out + *got, r->z.next_in, m);
      r->z.next_in += m;
      r->z.avail_in -= (uInt)m;
      *got += m;
    }
    return 0;
  }
  while (*got < n) {
    if (!r->member) {
      int done;
      if (next_member(r, &done)) return -1;
      if (done) break;
    }
    if (fill(r)) return -1;
    size_t want = n - *got > (1u << 30) ? (1u << 30) : n - *got;
    r->z.next_out = out + *got;
    r->z.avail_out = (uInt)want;
    int rc = inflate(&r->z, Z_NO_FLUSH);
    *got += want - r->z.avail_out;
    if (rc == Z_STREAM_END) {
      r->member = 0;
    } else if (rc == Z_BUF_ERROR || (rc == Z_OK && r->z.avail_out > 0 && r->z.avail_in == 0 && r->eof)) {
      if (r->z.avail_in == 0 && r->eof)
        return mf_fail("%s: corrupt or truncated gzip data (the stream ends early)", r->path);
    } else if (rc != Z_OK) {
      return mf_fail("%s: corrupt gzip data: %s", r->path, r->z.msg ? r->z.msg : "inflate failed");
    }
  }
  return 0;
}

int mf_reader_close(mf_reader *r) {
  if (!r) return 0;
  if (r->gz) inflateEnd(&r->z);
  if (r->f) fclose(r->f);
  free(r->path);
  free(r);
  return 0;
}

int mf_file_read(const char *path, size_t max_bytes, unsigned char **data, size_t *len) {
  *data = NULL;
  *len = 0;
  mf_reader *r;
  if (mf_reader_open(&r, path)) return -1;
  size_t cap = 1 << 16, n = 0;
  unsigned char *buf = malloc(cap);
  if (!buf) {
    mf_reader_close(r);
    return mf_fail("%s: out of host memory", path);
  }
  for (;;) {
    if (n == cap) {
      if (cap >= max_bytes) {
        free(buf);
        mf_reader_close(r);
        return mf_fail("%s: more than %zu bytes of content, refused", path, max_bytes);
      }
      size_t nc = cap * 2 > max_bytes ? max_bytes : cap * 2;
      unsigned char *nb = realloc(buf, nc);
      if (!nb) {
        free(buf);
        mf_reader_close(r);
        return mf_fail("%s: out of host memory at %zu bytes", path, nc);
      }
      buf = nb;
      cap = nc;
    }
    size_t got;
    if (mf_reader_read(r, buf + n, cap - n, &got)) {
      free(buf);
      mf_reader_close(r);
      return -1;
    }
    if (got == 0) break;
    n += got;
  }
  mf_reader_close(r);
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
