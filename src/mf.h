/* moonflow C core: shared types and error reporting. No Lua in here. */
#ifndef MF_H
#define MF_H

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#include <CL/cl.h>
#include <stddef.h>
#include <stdint.h>

#define MF_MAX_DIMS 8

typedef enum { MF_F32 = 0, MF_F64 = 1, MF_I32 = 2, MF_NDTYPES = 3 } mf_dtype;

/* Every core function that can fail returns 0 on success and -1 on failure,
   after writing a message that the binding turns into a Lua error. */
int mf_fail(const char *fmt, ...);
const char *mf_last_error(void);

size_t mf_dtype_size(mf_dtype dt);
const char *mf_dtype_name(mf_dtype dt);
/* Returns -1 for an unknown name. */
int mf_dtype_from_name(const char *name);

/* "{4, 3}" into buf; returns buf. */
char *mf_shape_str(char *buf, size_t cap, int ndim, const int64_t *shape);

#endif
