/* OpenCL runtime: platforms, the selected device, its context, one in-order
   queue, the one program holding every kernel, and launch/transfer stats. */
#ifndef MF_RUNTIME_H
#define MF_RUNTIME_H

#include "mf.h"

typedef struct {
  char name[256], vendor[256], version[128], platform[256];
  int is_gpu, fp64;
  uint64_t global_mem, max_alloc;
  int compute_units;
} mf_device_info;

typedef struct {
  uint64_t launches, reads, read_bytes, writes, write_bytes;
  uint64_t allocs, alloc_bytes, reuses;
} mf_stats;

typedef struct {
  cl_platform_id platform;
  cl_device_id device;
  cl_context ctx;
  cl_command_queue queue;
  cl_program program;
  mf_device_info info;
  int fp64; /* device has cl_khr_fp64 and MOONFLOW_DISABLE_FP64 is not set */
} mf_runtime;

/* Lists every device of every platform; returns count, or -1 (error set). */
int mf_list_devices(mf_device_info *out, int cap);

/* Initializes on first call (device chosen by MOONFLOW_DEVICE, else the first
   GPU, else the first CPU); returns NULL with the error set on failure. */
mf_runtime *mf_rt(void);
/* 1 once mf_rt() has succeeded (nothing is initialized by asking). */
int mf_rt_started(void);

/* The kernel named `name` from the one program (built on first use). */
cl_kernel mf_kernel(const char *name);

extern mf_stats mf_stat;

/* Enqueue helpers that count into mf_stat. `n` work-items in 1-D. */
int mf_launch(cl_kernel k, size_t global, size_t local);
int mf_read(cl_mem buf, size_t offset, size_t bytes, void *dst);
int mf_write(cl_mem buf, size_t offset, size_t bytes, const void *src);
int mf_finish(void);
const char *mf_cl_error_name(cl_int err);

#endif
