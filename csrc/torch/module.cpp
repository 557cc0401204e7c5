// bigkernels._C: an empty Python module whose import loads this library, so
// that the TORCH_LIBRARY_IMPL registrations in csrc/torch/*.cpp run. No
// pybind11: the ops are reached through torch.ops.bigkernels.
#include <Python.h>

static struct PyModuleDef bk_module = {PyModuleDef_HEAD_INIT, "_C", "bigkernels native kernels", -1, nullptr};

PyMODINIT_FUNC PyInit__C(void) { return PyModule_Create(&bk_module); }
