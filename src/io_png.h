/* PNG files through libpng: 8-bit gray, gray+alpha, RGB or RGBA. */
#ifndef MF_IO_PNG_H
#define MF_IO_PNG_H

#include "mf.h"

/* Writes h rows of w * channels bytes (channels 1..4) to path through a
   temporary file in the same directory, renamed over path when complete. */
int mf_png_write(const char *path, int w, int h, int channels, const unsigned char *pixels);

/* Reads any PNG, converted to 8 bits per channel (palette expanded, 16-bit
   stripped); *pixels is malloc'ed (free it), rows packed. */
int mf_png_read(const char *path, int *w, int *h, int *channels, unsigned char **pixels);

#endif
