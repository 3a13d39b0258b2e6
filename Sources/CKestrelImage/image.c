#include "kestrel_image.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <png.h>

static int fail(char *error, size_t error_size, const char *message) {
    snprintf(error, error_size, "%s", message);
    return 1;
}

// The image's buffer with room for `bytes`, grown only when too small (decoding many files
// of one size then allocates once, not once per file).
static unsigned char *reserve(kestrel_image *image, size_t bytes) {
    if (image->capacity >= bytes && image->pixels) return image->pixels;
    free(image->pixels);
    image->pixels = malloc(bytes ? bytes : 1);
    image->capacity = image->pixels ? bytes : 0;
    return image->pixels;
}

// ---------------------------------------------------------------- PNG

typedef struct {
    const unsigned char *data;
    size_t size, offset;
    char message[200];
} png_reader;

static void png_read_memory(png_structp png, png_bytep out, png_size_t count) {
    png_reader *reader = png_get_io_ptr(png);
    if (count > reader->size - reader->offset) png_error(png, "the file ends early");
    memcpy(out, reader->data + reader->offset, count);
    reader->offset += count;
}

static void png_fail(png_structp png, png_const_charp message) {
    png_reader *reader = png_get_error_ptr(png);
    snprintf(reader->message, sizeof reader->message, "%s", message);
    png_longjmp(png, 1);
}

static void png_quiet(png_structp png, png_const_charp message) {
    (void)png;
    (void)message;
}

// The transformations TensorFlow's decode_png asks libpng for: 16-bit samples keep their
// high byte, palettes and low bit depths expand, transparency becomes alpha; gray requested
// from colour uses libpng's weights 0.299/0.587, and alpha is dropped, never composited.
static int decode_png(const unsigned char *data, size_t size, int gray, kestrel_image *image, char *error,
                      size_t error_size) {
    png_reader reader = {data, size, 0, ""};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &reader, png_fail, png_quiet);
    if (!png) return fail(error, error_size, "out of memory");
    png_infop info = png_create_info_struct(png);
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        free(rows);
        return fail(error, error_size, reader.message[0] ? reader.message : "out of memory");
    }
    png_set_read_fn(png, &reader, png_read_memory);
    png_read_info(png, info);
    int color_type = png_get_color_type(png, info), bit_depth = png_get_bit_depth(png, info);
    int color = (color_type & PNG_COLOR_MASK_COLOR) != 0;
    int alpha = (color_type & PNG_COLOR_MASK_ALPHA) != 0 || png_get_valid(png, info, PNG_INFO_tRNS);
    image->source_channels = (color ? 3 : 1) + (alpha ? 1 : 0);
    if (bit_depth == 16) png_set_strip_16(png);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS)) png_set_tRNS_to_alpha(png);
    if (gray) {
        if (color) png_set_rgb_to_gray(png, 1, 0.299, 0.587);
        png_set_strip_alpha(png);
    } else {
        if (!color) png_set_gray_to_rgb(png);
        png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    unsigned char *pixels = reserve(image, row_bytes * height);
    rows = malloc(sizeof(png_bytep) * (height + 1));
    if (!pixels || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + y * row_bytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    image->width = (int)width;
    image->height = (int)height;
    image->channels = png_get_channels(png, info);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    return 0;
}

// ---------------------------------------------------------------- JPEG

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
} jpeg_failure;

static void jpeg_fail(j_common_ptr info) {
    jpeg_failure *failure = (jpeg_failure *)info->err;
    info->err->format_message(info, failure->message);
    longjmp(failure->jump, 1);
}

static void jpeg_quiet(j_common_ptr info, int level) {
    (void)info;
    (void)level;
}

static int decode_jpeg(const unsigned char *data, size_t size, int gray, kestrel_image *image, char *error,
                       size_t error_size) {
    struct jpeg_decompress_struct info;
    jpeg_failure failure;
    info.err = jpeg_std_error(&failure.base);
    failure.base.error_exit = jpeg_fail;
    failure.base.emit_message = jpeg_quiet;
    if (setjmp(failure.jump)) {
        jpeg_destroy_decompress(&info);
        return fail(error, error_size, failure.message);
    }
    jpeg_create_decompress(&info);
    jpeg_mem_src(&info, data, (unsigned long)size);
    jpeg_read_header(&info, TRUE);
    image->source_channels = info.num_components == 1 ? 1 : 3;
    // libjpeg's own colour-to-gray conversion, as TensorFlow asks it for one channel.
    info.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
    // TensorFlow's decode_jpeg defaults: the fast integer DCT, fancy upsampling.
    info.dct_method = JDCT_IFAST;
    info.do_fancy_upsampling = TRUE;
    jpeg_start_decompress(&info);
    size_t row = (size_t)info.output_width * (size_t)info.output_components;
    unsigned char *pixels = reserve(image, row * info.output_height);
    if (!pixels) {
        jpeg_destroy_decompress(&info);
        return fail(error, error_size, "out of memory");
    }
    while (info.output_scanline < info.output_height) {
        JSAMPROW line = pixels + row * info.output_scanline;
        jpeg_read_scanlines(&info, &line, 1);
    }
    jpeg_finish_decompress(&info);
    image->width = (int)info.output_width;
    image->height = (int)info.output_height;
    image->channels = info.output_components;
    jpeg_destroy_decompress(&info);
    return 0;
}

int kestrel_image_decode(const unsigned char *data, size_t size, int gray, kestrel_image *image,
                         char *error, size_t error_size) {
    image->width = image->height = image->channels = image->source_channels = 0;
    static const unsigned char png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (size >= 8 && memcmp(data, png_signature, 8) == 0) return decode_png(data, size, gray, image, error, error_size);
    if (size >= 3 && data[0] == 0xff && data[1] == 0xd8 && data[2] == 0xff)
        return decode_jpeg(data, size, gray, image, error, error_size);
    return fail(error, error_size, "not a PNG or JPEG file (Kestrel decodes those two formats)");
}

void kestrel_image_free(kestrel_image *image) {
    free(image->pixels);
    image->pixels = NULL;
    image->capacity = 0;
}
