// bigkernels._C: a Python module whose import loads this library, so that
// the TORCH_LIBRARY_IMPL registrations in csrc/torch/*.cpp run. No pybind11:
// the ops are reached through torch.ops.bigkernels; the module itself only
// answers cpu_isa(), the instruction set the CPU kernels dispatch to.
#include <Python.h>

#include "cpu/isa.h"

static PyObject* bk_cpu_isa(PyObject*, PyObject*) {
  switch (bk::cpu::best_isa()) {
    case bk::cpu::Isa::Avx512: return PyUnicode_FromString("avx512");
    case bk::cpu::Isa::Avx2: return PyUnicode_FromString("avx2");
    case bk::cpu::Isa::Base: break;
  }
  return PyUnicode_FromString("base");
}

static PyMethodDef bk_methods[] = {
    {"cpu_isa", bk_cpu_isa, METH_NOARGS, "The ISA of the CPU kernels' clones (BIGKERNELS_CPU_ISA caps it)."},
    {nullptr, nullptr, 0, nullptr}};

static struct PyModuleDef bk_module = {PyModuleDef_HEAD_INIT, "_C", "bigkernels native kernels", -1, bk_methods};

PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&bk_module); }
