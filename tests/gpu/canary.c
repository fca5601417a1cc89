/* The gpu mode's self-test: a kernel with one out-of-bounds write and one data race,
   run under oclgrind exactly like the specs. `scripts/check.sh gpu` requires both
   reported, so a silent oclgrind (wrong device, lost log) cannot pass as clean. */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdio.h>

static const char *src =
    "kernel void canary(global int *a, local int *l) {\n"
    "  int i = get_global_id(0);\n"
    "  l[0] = i;                 /* every item of the group writes l[0]: a race */\n"
    "  barrier(CLK_LOCAL_MEM_FENCE);\n"
    "  a[i + 1] = l[0];          /* the last item writes one past the end */\n"
    "}\n";

int main(void) {
  cl_platform_id p;
  cl_device_id d;
  cl_int e;
  if (clGetPlatformIDs(1, &p, NULL) || clGetDeviceIDs(p, CL_DEVICE_TYPE_ALL, 1, &d, NULL)) return 2;
  cl_context c = clCreateContext(NULL, 1, &d, NULL, NULL, &e);
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
