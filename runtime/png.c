/* png.c — image grids as 8-bit greyscale PNG through libpng, written
 * atomically (io.c). Gaps between tiles and unused tiles are white, so
 * dark-background images (MNIST-like) stay visibly separate. */
#include "vlm.h"

#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#define GAP 2
#define GAP_VALUE 255

typedef struct PngSink {
    VlmAtomicFile *f;
    char msg[256];
} PngSink;

static void png_write_cb(png_structp png, png_bytep data, png_size_t n)
{
    PngSink *s = png_get_io_ptr(png);
    if (vlm_atomic_write(s->f, data, n) < 0)
        png_error(png, "write failed");
}

static void png_flush_cb(png_structp png) { (void)png; }

static void png_error_cb(png_structp png, png_const_charp msg)
{
    PngSink *s = png_get_error_ptr(png);
    snprintf(s->msg, sizeof s->msg, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warning_cb(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

int vlm_png_grid(const char *path, const float *imgs, int n, int h, int w,
                 int cols, VlmErr *err)
{
    if (n <= 0 || h <= 0 || w <= 0) {
        vlm_err_set(err, "%s: nothing to draw (%d images of %dx%d)", path, n, h, w);
        return -1;
    }
    if (cols <= 0)
        cols = (int)ceil(sqrt((double)n));
    if (cols > n)
        cols = n;
    int rows = (n + cols - 1) / cols;
    long W = (long)cols * w + (long)(cols - 1) * GAP;
    long H = (long)rows * h + (long)(rows - 1) * GAP;
    if (W > 1000000 || H > 1000000 || W * H > (1L << 31)) {
        vlm_err_set(err, "%s: image grid of %ldx%ld pixels is too large", path, W, H);
        return -1;
    }
    uint8_t *pix = vlm_xmalloc((size_t)(W * H));
    memset(pix, GAP_VALUE, (size_t)(W * H));
    for (int k = 0; k < n; k++) {
        long y0 = (long)(k / cols) * (h + GAP), x0 = (long)(k % cols) * (w + GAP);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                float v = imgs[((size_t)k * h + y) * w + x];
                v = v > 0 ? (v < 1 ? v : 1) : 0;   /* NaN -> 0 too */
                pix[(y0 + y) * W + x0 + x] = (uint8_t)lrintf(v * 255.0f);
            }
    }

    VlmAtomicFile *f = vlm_xmalloc(sizeof *f);
    png_bytep *rowp = vlm_xmalloc((size_t)H * sizeof *rowp);
    for (long y = 0; y < H; y++)
        rowp[y] = pix + y * W;
    int rc = -1;
    if (vlm_atomic_open(f, path, err) < 0)
        goto out;
    /* volatile: these live across the setjmp */
    PngSink sink = {f, ""};
    png_structp volatile png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &sink,
                                                       png_error_cb, png_warning_cb);
    png_infop volatile info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        vlm_err_set(err, "%s: libpng initialisation failed", path);
        goto fail;
    }
    if (setjmp(png_jmpbuf(png))) {
        if (f->failed)
            vlm_err_set(err, "%s", f->err.msg);
        else
            vlm_err_set(err, "%s: PNG encoding failed: %s", path, sink.msg);
        goto fail;
    }
    png_set_write_fn(png, &sink, png_write_cb, png_flush_cb);
    png_set_IHDR(png, info, (png_uint_32)W, (png_uint_32)H, 8, PNG_COLOR_TYPE_GRAY,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    png_write_image(png, rowp);
    png_write_end(png, NULL);
    {
        png_structp pp = png;
        png_infop ip = info;
        png_destroy_write_struct(&pp, &ip);
    }
    rc = vlm_atomic_commit(f, err);
    goto out;
fail:
    if (png) {
        png_structp pp = png;
        png_infop ip = info;
        png_destroy_write_struct(&pp, ip ? &ip : NULL);
    }
    vlm_atomic_abort(f);
out:
    free(rowp);
    free(pix);
    free(f);
    return rc;
}
