/* The gpu mode's helper on oclgrind.
   canary: a kernel with one out-of-bounds write and one data race, run exactly like
     the specs; `scripts/check.sh gpu` requires both reported, so a silent oclgrind
     (wrong device, lost log) cannot pass as clean.
   canary <program.cl> <options>: builds moonflow's program as src/runtime.c does and
     prints its kernel names, one a line (the coverage report's denominator). */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *src =
    "kernel void canary(global int *a, local int *l) {\n"
    "  int i = get_global_id(0);\n"
    "  l[0] = i;                 /* every item of the group writes l[0]: a race */\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  a[i + 1] = l[0];          /* the last item writes one past the end */\n"
    "}\n";

static int names(cl_context c, cl_device_id d, const char *path, const char *opts) {
  FILE *f = fopen(path, "rb");
  if (!f) return 4;
  static char text[1 << 22];
  size_t n = fread(text, 1, sizeof text - 1, f);
  fclose(f);
  text[n] = 0;
  const char *t = text;
  cl_int e;
  cl_program pr = clCreateProgramWithSource(c, 1, &t, NULL, &e);
  if (clBuildProgram(pr, 1, &d, opts, NULL, NULL)) return 5;
  size_t len = 0;
  clGetProgramInfo(pr, CL_PROGRAM_KERNEL_NAMES, 0, NULL, &len);
  char *list = malloc(len + 1);
  clGetProgramInfo(pr, CL_PROGRAM_KERNEL_NAMES, len, list, NULL);
  for (char *k = strtok(list, ";"); k; k = strtok(NULL, ";")) printf("%s\n", k);
  free(list);
  return 0;
}

int main(int argc, char **argv) {
  cl_platform_id p;
  cl_device_id d;
  cl_int e;
  if (clGetPlatformIDs(1, &p, NULL) || clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, &d, NULL)) return 2;
  cl_context c = clCreateContext(NULL, 1, &d, NULL, NULL, &e);
  if (argc == 3) return names(c, d, argv[1], argv[2]);
  cl_command_queue q = clCreateCommandQueue(c, d, 0, &e);
  cl_program pr = clCreateProgramWithSource(c, 1, &src, NULL, &e);
  if (clBuildProgram(pr, 1, &d, "", NULL, NULL)) return 3;
  cl_kernel k = clCreateKernel(pr, "canary", &e);
  cl_mem a = clCreateBuffer(c, CL_MEM_READ_WRITE, 4 * sizeof(int), NULL, &e);
  clSetKernelArg(k, 0, sizeof a, &a);
  clSetKernelArg(k, 1, sizeof(int), NULL);
  size_t g = 4, l = 4;
  clEnqueueNDRangeKernel(q, k, 1, NULL, &g, &l, 0, NULL, NULL);
  clFinish(q);
  printf("canary ran\n");
  return 0;
}
