// The HDF5 C API (Debian's libhdf5-dev, serial build) for Swift.
//
// HDF5's predefined type and property-list identifiers are macros that call H5open() and read
// a global, which Swift cannot import; these inline functions expose them.
#ifndef KESTREL_CHDF5_SHIM_H
#define KESTREL_CHDF5_SHIM_H

#include <hdf5/serial/hdf5.h>
#include <string.h>

static inline hid_t kestrel_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t kestrel_h5s_all(void) { return H5S_ALL; }
static inline hid_t kestrel_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t kestrel_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t kestrel_h5t_ieee_f32le(void) { return H5T_IEEE_F32LE; }
static inline hid_t kestrel_h5t_std_i64le(void) { return H5T_STD_I64LE; }
static inline hid_t kestrel_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline hid_t kestrel_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }

/// Turns off HDF5's printing of its error stack: Kestrel reports errors itself.
static inline void kestrel_h5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/// Writes a UTF-8 variable-length string attribute, as h5py does for `attrs["name"] = "..."`.
static inline herr_t kestrel_h5_write_string_attribute(hid_t object, const char *name, const char *value) {
    hid_t type = H5Tcopy(H5T_C_S1);
    if (type < 0) return -1;
    herr_t status = H5Tset_size(type, H5T_VARIABLE);
    if (status >= 0) status = H5Tset_cset(type, H5T_CSET_UTF8);
    hid_t space = H5Screate(H5S_SCALAR);
    hid_t attribute = -1;
    if (status >= 0 && space >= 0) {
        attribute = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
        if (attribute >= 0) status = H5Awrite(attribute, type, &value); else status = -1;
    } else {
        status = -1;
    }
    if (attribute >= 0) H5Aclose(attribute);
    if (space >= 0) H5Sclose(space);
    H5Tclose(type);
    return status;
}

#endif
