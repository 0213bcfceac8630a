/*
 * The embedded log's batch framing, in C: the twin of storage.embedded.codec's
 * frame_batch, which stays the reference (tests/storage/test_framing.py holds
 * this one to it byte for byte, also under AddressSanitizer and UBSan: `make
 * sanitize`). It runs once for every partition an append writes, which a keyed
 * produce does for most of a topic's partitions, so the few struct packs and
 * the CRC around the records are worth doing without the interpreter.
 *
 * frame(data, count, first_timestamp, max_timestamp, identity, appended_ms)
 * returns the batch with base offset 0: the header (see codec.py for the layout),
 * the identity extension when `identity` is not None, then `data` as it is. It
 * raises ValueError for anything the reference refuses (a count below 1 or past
 * 32 bits, a timestamp past 64 bits, an identity not of 16 bytes, records too
 * many bytes for the batch length); the CRC is zlib's CRC-32, which the
 * reference's checksum.crc32 computes too.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#define FORMAT_VERSION 1
#define HAS_IDENTITY 0x01
#define HEADER_SIZE 38     /* base_offset .. max_timestamp */
#define LENGTH_START 12    /* batch_length counts the bytes from here on */
#define CRC_START 16       /* the CRC covers the bytes from here to the end */
#define IDENTITY_SIZE 16
#define IDENTITY_EXTENSION 24 /* identity, appended_ms */

static inline unsigned char *put_be(unsigned char *out, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    return out + bytes;
}

/* An int argument within [low, high], or -1 with ValueError set (any overflow included). */
static int int_in(PyObject *o, long long low, long long high, const char *what, long long *out) {
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (overflow || v < low || v > high) {
        PyErr_Format(PyExc_ValueError, "%s out of range for a batch", what);
        return -1;
    }
    *out = v;
    return 0;
}

static uLong crc_of(uLong crc, const unsigned char *p, Py_ssize_t n) {
    while (n > 0) {
        uInt piece = n > (Py_ssize_t)0x40000000 ? 0x40000000u : (uInt)n;
        crc = crc32(crc, p, piece);
        p += piece;
        n -= piece;
    }
    return crc;
}

static PyObject *frame(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6) {
        PyErr_SetString(PyExc_TypeError, "frame takes 6 arguments");
        return NULL;
    }
    if (!PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "records must be bytes");
        return NULL;
    }
    long long count, first, last, appended_ms = 0;
    if (int_in(args[1], LLONG_MIN, LLONG_MAX, "record count", &count) < 0) return NULL;
    if (count < 1) {
        PyErr_SetString(PyExc_ValueError, "a batch holds at least one record");
        return NULL;
    }
    if (count > 0xFFFFFFFFLL) {
        PyErr_SetString(PyExc_ValueError, "record count out of range for a batch");
        return NULL;
    }
    if (int_in(args[2], LLONG_MIN, LLONG_MAX, "first timestamp", &first) < 0 ||
        int_in(args[3], LLONG_MIN, LLONG_MAX, "max timestamp", &last) < 0)
        return NULL;
    PyObject *identity = args[4];
    Py_ssize_t extension = 0;
    if (identity != Py_None) {
        if (!PyBytes_Check(identity)) {
            PyErr_SetString(PyExc_TypeError, "an identity is bytes or None");
            return NULL;
        }
        if (PyBytes_GET_SIZE(identity) != IDENTITY_SIZE) {
            PyErr_Format(PyExc_ValueError, "a batch identity is %d bytes, not %zd", IDENTITY_SIZE,
                         PyBytes_GET_SIZE(identity));
            return NULL;
        }
        if (int_in(args[5], LLONG_MIN, LLONG_MAX, "appended_ms", &appended_ms) < 0) return NULL;
        extension = IDENTITY_EXTENSION;
    }
    const unsigned char *data = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t size = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t head = HEADER_SIZE + extension;
    Py_ssize_t length = head - LENGTH_START + size; /* batch_length, a u32 */
    if (size > (Py_ssize_t)0xFFFFFFFFLL - (head - LENGTH_START)) {
        PyErr_SetString(PyExc_ValueError, "records too large for one batch");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, head + size);
    if (!out) return NULL;
    unsigned char *p = (unsigned char *)PyBytes_AS_STRING(out);
    put_be(p, 0, 8); /* base offset: stamped by the writer */
    put_be(p + 8, (uint64_t)length, 4);
    unsigned char *t = p + CRC_START;
    t[0] = FORMAT_VERSION;
    t[1] = extension ? HAS_IDENTITY : 0;
    put_be(t + 2, (uint64_t)count, 4);
    put_be(t + 6, (uint64_t)first, 8);
    put_be(t + 14, (uint64_t)last, 8);
    if (extension) {
        memcpy(p + HEADER_SIZE, PyBytes_AS_STRING(identity), IDENTITY_SIZE);
        put_be(p + HEADER_SIZE + IDENTITY_SIZE, (uint64_t)appended_ms, 8);
    }
    memcpy(p + head, data, (size_t)size);
    uLong crc = crc_of(crc32(0L, Z_NULL, 0), t, head + size - CRC_START);
    put_be(p + LENGTH_START, (uint64_t)crc, 4);
    return out;
}

static PyMethodDef methods[] = {
    {"frame", (PyCFunction)(void (*)(void))frame, METH_FASTCALL,
     "Packed records framed as one batch (base offset 0): codec.frame_batch's twin."},
    {0},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "storage.embedded._framing",
    .m_doc = "The embedded log's batch framing in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__framing(void) { return PyModule_Create(&module); }
