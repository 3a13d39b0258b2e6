#ifndef CKESTREL_IMAGE_H
#define CKESTREL_IMAGE_H
// PNG (libpng) and JPEG (libjpeg-turbo) decoding for KestrelDatasets' image folders. The
// libraries report errors by longjmp or by exiting, so they are called from C, which turns
// every failure into a return code and a message.

#include <stddef.h>

/// A decoded image: `height × width` pixels of `channels` 8-bit values, row-major.
/// `source_channels` is what the file holds (1 gray, 2 gray+alpha, 3 colour, 4 colour+alpha).
/// `pixels` holds `capacity` bytes and is reused by the next decode into the same struct when
/// large enough (start from a zeroed struct).
typedef struct {
    unsigned char *pixels;
    size_t capacity;
    int width, height, channels, source_channels;
} kestrel_image;

/// Decodes a PNG or JPEG (recognised by its signature) held in memory, as TensorFlow's
/// decode_image does: with `gray`, one channel (colour converted by libpng's or libjpeg's
/// weights); otherwise PNGs as RGBA (alpha 255 where the file has none) and JPEGs as RGB.
/// Returns 0 on success; otherwise writes a message to `error`. Free the pixels with
/// `kestrel_image_free` once done with the struct.
int kestrel_image_decode(const unsigned char *data, size_t size, int gray, kestrel_image *image,
                         char *error, size_t error_size);

/// Releases a decoded image's pixels.
void kestrel_image_free(kestrel_image *image);

#endif
