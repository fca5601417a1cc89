/* PNG read/write through libpng. libpng reports errors by longjmp; each
   entry point sets its jump target and turns the message into mf_fail. */
#include "io_png.h"

#include <errno.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char png_msg[256];

static void on_error(png_structp p, png_const_charp msg) {
  snprintf(png_msg, sizeof png_msg, "%s", msg);
  png_longjmp(p, 1);
}

static void on_warning(png_structp p, png_const_charp msg) { (void)p; (void)msg; }

int mf_png_write(const char *path, int w, int h, int channels, const unsigned char *pixels) {
  static const int types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                               PNG_COLOR_TYPE_RGBA};
  if (w <= 0 || h <= 0 || channels < 1 || channels > 4)
    return mf_fail("%s: invalid image %dx%d with %d channels", path, w, h, channels);
  char tmp[4096];
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof tmp)
    return mf_fail("%s: path too long", path);
  FILE *volatile f = fopen(tmp, "wb");
  if (!f) return mf_fail("%s: cannot create %s: %s", path, tmp, strerror(errno));
  png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, on_error, on_warning);
  png_infop info = p ? png_create_info_struct(p) : NULL;
  if (!info) {
    png_destroy_write_struct(&p, NULL);
    fclose(f);
    remove(tmp);
    return mf_fail("%s: libpng could not allocate its state", path);
  }
  if (setjmp(png_jmpbuf(p))) {
    png_destroy_write_struct(&p, &info);
    fclose(f);
    remove(tmp);
    return mf_fail("%s: libpng: %s", path, png_msg);
  }
  png_init_io(p, f);
  png_set_IHDR(p, info, (png_uint_32)w, (png_uint_32)h, 8, types[channels], PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  png_write_info(p, info);
  size_t stride = (size_t)w * (size_t)channels;
  for (int y = 0; y < h; ++y) png_write_row(p, (png_const_bytep)(pixels + (size_t)y * stride));
  png_write_end(p, NULL);
  png_destroy_write_struct(&p, &info);
  int bad = fflush(f) != 0 || ferror(f);
  if (fclose(f) != 0 || bad) {
    remove(tmp);
    return mf_fail("%s: write failed: %s", path, strerror(errno));
  }
  if (rename(tmp, path) != 0) {
    int e = errno;
    remove(tmp);
    return mf_fail("%s: cannot rename %s over it: %s", path, tmp, strerror(e));
  }
  return 0;
}

int mf_png_read(const char *path, int *w, int *h, int *channels, unsigned char **pixels) {
  *pixels = NULL;
  FILE *volatile f = fopen(path, "rb");
  if (!f) return mf_fail("%s: cannot open: %s", path, strerror(errno));
  unsigned char sig[8];
  if (fread(sig, 1, 8, f) != 8 || png_sig_cmp(sig, 0, 8)) {
    fclose(f);
    return mf_fail("%s: not a PNG file (bad signature)", path);
  }
  png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, on_error, on_warning);
  png_infop info = p ? png_create_info_struct(p) : NULL;
  if (!info) {
    png_destroy_read_struct(&p, NULL, NULL);
    fclose(f);
    return mf_fail("%s: libpng could not allocate its state", path);
  }
  unsigned char *volatile buf = NULL;
  png_bytep *volatile rows = NULL;
  if (setjmp(png_jmpbuf(p))) {
    png_destroy_read_struct(&p, &info, NULL);
    fclose(f);
    free(buf);
    free(rows);
    return mf_fail("%s: libpng: %s", path, png_msg);
  }
  png_init_io(p, f);
  png_set_sig_bytes(p, 8);
  png_set_user_limits(p, 1 << 15, 1 << 15);
  png_read_info(p, info);
  png_set_expand(p);      /* palette -> RGB, low-bit gray -> 8 bits, tRNS -> alpha */
  png_set_strip_16(p);
  png_set_interlace_handling(p);
  png_read_update_info(p, info);
  png_uint_32 pw = png_get_image_width(p, info), ph = png_get_image_height(p, info);
  int ch = png_get_channels(p, info);
  size_t stride = png_get_rowbytes(p, info);
  if (stride != (size_t)pw * (size_t)ch) png_error(p, "unexpected row layout");
  buf = malloc(stride * ph);
  if (!buf) png_error(p, "out of host memory");
  rows = malloc(sizeof(png_bytep) * ph);
  if (!rows) png_error(p, "out of host memory");
  for (png_uint_32 y = 0; y < ph; ++y) rows[y] = buf + (size_t)y * stride;
  png_read_image(p, rows);
  free(rows);
  rows = NULL;
  png_read_end(p, NULL);
  png_destroy_read_struct(&p, &info, NULL);
  fclose(f);
  *w = (int)pw;
  *h = (int)ph;
  *channels = ch;
  *pixels = buf;
  return 0;
}
