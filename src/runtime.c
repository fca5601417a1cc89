#include "runtime.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kernels_src.h" /* generated: const char mf_kernel_source[] */

mf_stats mf_stat;
static mf_runtime rt;
static int rt_state; /* 0 untouched, 1 ready, -1 failed */
static char rt_error[4096];

const char *mf_cl_error_name(cl_int e) {
  switch (e) {
#define E(x) case x: return #x;
    E(CL_SUCCESS) E(CL_DEVICE_NOT_FOUND) E(CL_OUT_OF_RESOURCES)
    E(CL_OUT_OF_HOST_MEMORY) E(CL_MEM_OBJECT_ALLOCATION_FAILURE)
    E(CL_BUILD_PROGRAM_FAILURE) E(CL_INVALID_VALUE) E(CL_INVALID_KERNEL_NAME)
    E(CL_INVALID_KERNEL_ARGS) E(CL_INVALID_ARG_SIZE) E(CL_INVALID_ARG_VALUE)
    E(CL_INVALID_WORK_GROUP_SIZE) E(CL_INVALID_BUFFER_SIZE) E(CL_INVALID_MEM_OBJECT)
    E(CL_INVALID_PLATFORM) E(CL_INVALID_DEVICE)
    E(CL_INVALID_GLOBAL_WORK_SIZE) E(CL_INVALID_COMMAND_QUEUE) E(CL_INVALID_OPERATION)
#undef E
    default: return "CL_ERROR";
  }
}

static void read_info(cl_device_id d, cl_platform_id p, mf_device_info *inf) {
  memset(inf, 0, sizeof *inf);
  cl_device_type type = 0;
  cl_ulong mem = 0, maxa = 0;
  cl_uint cu = 0;
  char ext[8192] = "";
  clGetDeviceInfo(d, CL_DEVICE_NAME, sizeof inf->name, inf->name, NULL);
  clGetDeviceInfo(d, CL_DEVICE_VENDOR, sizeof inf->vendor, inf->vendor, NULL);
  clGetDeviceInfo(d, CL_DEVICE_VERSION, sizeof inf->version, inf->version, NULL);
  clGetDeviceInfo(d, CL_DEVICE_TYPE, sizeof type, &type, NULL);
  clGetDeviceInfo(d, CL_DEVICE_GLOBAL_MEM_SIZE, sizeof mem, &mem, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_MEM_ALLOC_SIZE, sizeof maxa, &maxa, NULL);
  clGetDeviceInfo(d, CL_DEVICE_MAX_COMPUTE_UNITS, sizeof cu, &cu, NULL);
  clGetDeviceInfo(d, CL_DEVICE_EXTENSIONS, sizeof ext, ext, NULL);
  clGetPlatformInfo(p, CL_PLATFORM_NAME, sizeof inf->platform, inf->platform, NULL);
  inf->is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
  inf->fp64 = strstr(ext, "cl_khr_fp64") != NULL;
  inf->global_mem = mem;
  inf->max_alloc = maxa;
  inf->compute_units = (int)cu;
}

/* Walks every device of every platform; calls f until it returns nonzero. */
typedef int (*dev_visit)(cl_platform_id, cl_device_id, int index, void *ud);

static int each_device(dev_visit f, void *ud) {
  cl_uint np = 0;
  cl_int e = clGetPlatformIDs(0, NULL, &np);
  if (e != CL_SUCCESS || np == 0)
    return mf_fail("no OpenCL platform found (%s); install an OpenCL driver: "
                   "apt-get install ocl-icd-libopencl1 pocl-opencl-icd (CPU) or your GPU vendor's ICD",
                   e == CL_SUCCESS ? "0 platforms" : mf_cl_error_name(e));
  cl_platform_id ps[16];
  if (np > 16) np = 16;
  clGetPlatformIDs(np, ps, NULL);
  int index = 0;
  for (cl_uint i = 0; i < np; ++i) {
    cl_uint nd = 0;
    if (clGetDeviceIDs(ps[i], CL_DEVICE_TYPE_ALL, 0, NULL, &nd) != CL_SUCCESS) continue;
    cl_device_id ds[16];
    if (nd > 16) nd = 16;
    clGetDeviceIDs(ps[i], CL_DEVICE_TYPE_ALL, nd, ds, NULL);
    for (cl_uint j = 0; j < nd; ++j)
      if (f(ps[i], ds[j], index++, ud)) return 1;
  }
  return 0;
}

typedef struct { mf_device_info *out; int cap, n; } list_ud;

static int list_visit(cl_platform_id p, cl_device_id d, int index, void *ud) {
  list_ud *l = ud;
  (void)index;
  if (l->n < l->cap) read_info(d, p, &l->out[l->n]);
  l->n++;
  return 0;
}

int mf_list_devices(mf_device_info *out, int cap) {
  list_ud l = {out, cap, 0};
  if (each_device(list_visit, &l) < 0) return -1;
  return l.n;
}

typedef struct {
  const char *want; /* MOONFLOW_DEVICE or NULL */
  int want_index;   /* >= 0 when want is a number */
  int pass;         /* without `want`: 0 looks for a GPU, 1 for a CPU */
  cl_platform_id p;
  cl_device_id d;
} pick_ud;

static int ci_contains(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (; *hay; ++hay)
    if (strncasecmp(hay, needle, n) == 0) return 1;
  return 0;
}

static int pick_visit(cl_platform_id p, cl_device_id d, int index, void *ud) {
  pick_ud *k = ud;
  mf_device_info inf;
  read_info(d, p, &inf);
  int ok;
  if (k->want_index >= 0) ok = index == k->want_index;
  else if (k->want) ok = ci_contains(inf.name, k->want) || ci_contains(inf.vendor, k->want) ||
                         ci_contains(inf.platform, k->want);
  else ok = k->pass == 0 ? inf.is_gpu : 1;
  if (ok) { k->p = p; k->d = d; }
  return ok;
}

/* The process's stderr (fd 2) goes to a temporary file while a compiler
   runs (clBuildProgram, and clCreateKernel, where a compiler may finish its
   work), so that nothing it prints ("535 warnings generated.") reaches the
   user's terminal or a parent that reads our output. */
typedef struct { int saved; FILE *tmp; } quiet_stderr;

static void quiet_begin(quiet_stderr *q) {
  fflush(stderr);
  q->tmp = tmpfile();
  q->saved = q->tmp ? dup(2) : -1;
  if (q->saved >= 0 && dup2(fileno(q->tmp), 2) < 0) { close(q->saved); q->saved = -1; }
}

/* Restores fd 2; what was written meanwhile goes to keep (when not NULL). */
static void quiet_end(quiet_stderr *q, char *keep, size_t cap) {
  fflush(stderr);
  if (q->saved >= 0) { dup2(q->saved, 2); close(q->saved); }
  if (keep && cap) {
    size_t n = 0;
    if (q->tmp) { rewind(q->tmp); n = fread(keep, 1, cap - 1, q->tmp); }
    keep[n] = 0;
  }
  if (q->tmp) fclose(q->tmp);
}

/* The build log for an error: its error lines first (each names
   cl/<file>:<line>, from the #line markers that cmake/embed.cmake puts at the
   start of every file), then as much of the rest as fits. */
static void log_for_error(const char *log, char *out, size_t cap) {
  size_t n = 0;
  out[0] = 0;
  for (int pass = 0; pass < 2; ++pass) {
    for (const char *l = log; *l && n + 1 < cap;) {
      const char *e = strchr(l, '\n');
      size_t len = e ? (size_t)(e - l) : strlen(l);
      int is_err = strstr(l, "error") && (size_t)(strstr(l, "error") - l) < len;
      if (len && is_err == (pass == 0)) {
        size_t k = len < cap - 1 - n ? len : cap - 1 - n;
        memcpy(out + n, l, k);
        n += k;
        if (n + 1 < cap) out[n++] = '\n';
        out[n] = 0;
      }
      l += len + (e != NULL);
    }
  }
  if (n && out[n - 1] == '\n') out[--n] = 0;
}

static int build_program(void) {
  cl_int e;
  const char *src = mf_kernel_source;
  rt.program = clCreateProgramWithSource(rt.ctx, 1, &src, NULL, &e);
  if (e != CL_SUCCESS) return mf_fail("clCreateProgramWithSource: %s", mf_cl_error_name(e));
  /* MF_CPU picks the kernels' CPU loop shape (contiguous runs per work-item);
     MOONFLOW_KERNEL_OPTIONS: more compiler options (experiments, tests) */
  const char *extra = getenv("MOONFLOW_KERNEL_OPTIONS");
  char opts[1024];
  snprintf(opts, sizeof opts, "-cl-std=CL1.2%s%s %s", rt.fp64 ? " -DMF_FP64" : "", rt.info.is_gpu ? "" : " -DMF_CPU",
           extra ? extra : "");
  quiet_stderr q;
  char said[1024];
  quiet_begin(&q);
  e = clBuildProgram(rt.program, 1, &rt.device, opts, NULL, NULL);
  quiet_end(&q, said, sizeof said);
  if (e == CL_SUCCESS) return 0;
  size_t n = 0;
  clGetProgramBuildInfo(rt.program, rt.device, CL_PROGRAM_BUILD_LOG, 0, NULL, &n);
  char *log = malloc(n + 1), shown[3000];
  if (log) {
    if (clGetProgramBuildInfo(rt.program, rt.device, CL_PROGRAM_BUILD_LOG, n, log, NULL) != CL_SUCCESS) n = 0;
    log[n] = 0;
  }
  log_for_error(log && *log ? log : said, shown, sizeof shown);
  free(log);
  clReleaseProgram(rt.program);
  rt.program = NULL;
  return mf_fail("kernel build failed on %s (%s):\n%s", rt.info.name, mf_cl_error_name(e),
                 *shown ? shown : "(no build log)");
}

static int init(void) {
  pick_ud k = {getenv("MOONFLOW_DEVICE"), -1, 0, NULL, NULL};
  if (k.want && !*k.want) k.want = NULL;
  if (k.want) {
    char *end;
    long v = strtol(k.want, &end, 10);
    if (*end == 0) k.want_index = (int)v;
  }
  int found = each_device(pick_visit, &k);
  if (found < 0) return -1;
  if (!found && !k.want) { k.pass = 1; found = each_device(pick_visit, &k); }
  if (!found && k.want) { /* name the devices there are */
    char names[1024] = "";
    mf_device_info infos[16];
    int n = mf_list_devices(infos, 16);
    for (int i = 0; i < n && i < 16; ++i) {
      size_t used = strlen(names);
      snprintf(names + used, sizeof names - used, "%s%d %.120s (%.80s)", i ? ", " : "", i, infos[i].name, infos[i].platform);
    }
    return mf_fail("no OpenCL device matches MOONFLOW_DEVICE=%s; the devices are: %s", k.want, n > 0 ? names : "none");
  }
  if (!found) return mf_fail("no OpenCL device found");
  rt.platform = k.p;
  rt.device = k.d;
  read_info(rt.device, rt.platform, &rt.info);
  const char *nofp64 = getenv("MOONFLOW_DISABLE_FP64");
  rt.fp64 = rt.info.fp64 && !(nofp64 && *nofp64 && strcmp(nofp64, "0") != 0);
  cl_int e;
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)rt.platform, 0};
  rt.ctx = clCreateContext(props, 1, &rt.device, NULL, NULL, &e);
  if (e != CL_SUCCESS) return mf_fail("clCreateContext on %s: %s", rt.info.name, mf_cl_error_name(e));
  rt.queue = clCreateCommandQueue(rt.ctx, rt.device, 0, &e);
  if (e != CL_SUCCESS) return mf_fail("clCreateCommandQueue: %s", mf_cl_error_name(e));
  return build_program();
}

int mf_rt_started(void) { return rt_state == 1; }

mf_runtime *mf_rt(void) {
  if (rt_state == 1) return &rt;
  if (rt_state == -1) { mf_fail("%s", rt_error); return NULL; }
  if (init() == 0) { rt_state = 1; return &rt; }
  snprintf(rt_error, sizeof rt_error, "%s", mf_last_error());
  rt_state = -1;
  return NULL;
}

/* kernel cache: open addressing on the name's hash */
#define KCAP 1024
static struct { const char *name; cl_kernel k; } kcache[KCAP];

static unsigned hash(const char *s) {
  unsigned h = 2166136261u;
  while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
  return h;
}

cl_kernel mf_kernel(const char *name) {
  if (!mf_rt()) return NULL;
  unsigned h = hash(name) & (KCAP - 1);
  while (kcache[h].name) {
    if (strcmp(kcache[h].name, name) == 0) return kcache[h].k;
    h = (h + 1) & (KCAP - 1);
  }
  cl_int e;
  quiet_stderr q;
  quiet_begin(&q);
  cl_kernel k = clCreateKernel(rt.program, name, &e);
  quiet_end(&q, NULL, 0);
  if (e != CL_SUCCESS) {
    mf_fail("no kernel %s on %s (%s)", name, rt.info.name, mf_cl_error_name(e));
    return NULL;
  }
  kcache[h].name = strdup(name);
  kcache[h].k = k;
  return k;
}

int mf_launch(cl_kernel k, size_t global, size_t local) {
  if (global == 0) return 0;
  size_t g = global;
  /* PoCL (CPU) left to choose puts a small grid in one work-group, i.e. on
     one thread; a grid of long runs (mf_grid) wants one work-group each */
  if (!local && !rt.info.is_gpu && global <= 64 * (size_t)rt.info.compute_units) local = 1;
  if (local) g = (global + local - 1) / local * local;
  cl_int e = clEnqueueNDRangeKernel(rt.queue, k, 1, NULL, &g, local ? &local : NULL, 0, NULL, NULL);
  if (e != CL_SUCCESS) {
    char name[128] = "?";
    clGetKernelInfo(k, CL_KERNEL_FUNCTION_NAME, sizeof name, name, NULL);
    if (e == CL_OUT_OF_RESOURCES || e == CL_MEM_OBJECT_ALLOCATION_FAILURE)
      return mf_fail("device out of memory launching %s (%s)", name, mf_cl_error_name(e));
    return mf_fail("launching %s: %s", name, mf_cl_error_name(e));
  }
  mf_stat.launches++;
  return 0;
}

int mf_read(cl_mem buf, size_t offset, size_t bytes, void *dst) {
  if (bytes == 0) return 0;
  cl_int e = clEnqueueReadBuffer(rt.queue, buf, CL_TRUE, offset, bytes, dst, 0, NULL, NULL);
  if (e != CL_SUCCESS) return mf_fail("reading %zu bytes from the device: %s", bytes, mf_cl_error_name(e));
  mf_stat.reads++;
  mf_stat.read_bytes += bytes;
  return 0;
}

static void CL_CALLBACK free_staging(cl_event ev, cl_int status, void *p) {
  (void)ev;
  (void)status;
  free(p);
}

int mf_write(cl_mem buf, size_t offset, size_t bytes, const void *src) {
  if (bytes == 0) return 0;
  /* a private copy lets the write go without waiting for the queue */
  void *copy = malloc(bytes);
  if (!copy) return mf_fail("out of host memory staging %zu bytes", bytes);
  memcpy(copy, src, bytes);
  cl_event ev;
  cl_int e = clEnqueueWriteBuffer(rt.queue, buf, CL_FALSE, offset, bytes, copy, 0, NULL, &ev);
  if (e != CL_SUCCESS) {
    free(copy);
    return mf_fail("writing %zu bytes to the device: %s", bytes, mf_cl_error_name(e));
  }
  clSetEventCallback(ev, CL_COMPLETE, free_staging, copy);
  clReleaseEvent(ev);
  mf_stat.writes++;
  mf_stat.write_bytes += bytes;
  return 0;
}

int mf_finish(void) {
  if (!mf_rt()) return -1;
  cl_int e = clFinish(rt.queue);
  return e == CL_SUCCESS ? 0 : mf_fail("clFinish: %s", mf_cl_error_name(e));
}
