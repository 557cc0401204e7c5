"""Test-harness helpers shared by every family's tests (installed with the
package so that `selftest` can use them): the tolerance rule, the Triton
interpreter's bf16 fix, and small tensor factories."""
