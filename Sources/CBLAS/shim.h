// OpenBLAS's CBLAS interface and LAPACKE, as packaged by Debian
// (libopenblas-dev, liblapacke-dev).
#include <cblas.h>
#include <lapacke.h>

// Exported by OpenBLAS but not declared in every cblas.h.
char *openblas_get_corename(void);
char *openblas_get_config(void);
