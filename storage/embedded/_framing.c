/*
 * The embedded log's per-partition steps of an append, in C.
 *
 * The batch framing: the twin of storage.embedded.codec's
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
 *
 * spread(batches, partitions, shards, limit): a request's batches for several
 * partitions grouped by the shard that writes each, the twin of
 * storage.embedded.spread.by_shard (tests/storage/test_spread.py holds it to that,
 * also under the sanitizers); None whenever by_shard answers None, and for what it
 * does not handle (see spread.py).
 *
 * write_files(fds, datas) writes datas[i] whole to fds[i] (write(2) in a loop over
 * short writes, EINTR retried) for every i, with the interpreter let go once for
 * them all, and returns each file's errno (0: written). It is the twin of
 * fileio.FileIO.write_files's loop over write_all (tests/storage/test_framing.py
 * holds it to that loop): a writer pass over many partitions writes one file each,
 * and getting the interpreter back after every one of those writes, with the
 * event loop holding it, was most of the pass.
 *
 * group_pass(groups, keys, packs, results, slots, item), frame_pass(groups, bases,
 * merged) and answer_pass(result_type, numbers, groups, starts): a writer pass's
 * keyed entries grouped by partition, framed as stamped batches for each of its
 * partitions, and answered once committed; the twins of
 * storage.embedded.passes.group_entries, frame_entries and answer_entries (see
 * there), held to them by tests/storage/test_passes.py, also under the sanitizers. A pass has an
 * entry for most partitions of every keyed request it holds, and doing the join,
 * the framing, the stamping and each entry's result in Python was most of the
 * writer's own time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
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

#define MAX_SPREAD_SHARDS 64 /* more shards in one request: the reference groups them */

/* An int within [low, high] into *out: 1; anything else (not an int, out of range): 0. */
static int plain_int(PyObject *o, long long low, long long high, long long *out) {
    if (!PyLong_Check(o)) return 0;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (overflow || v < low || v > high) return 0;
    *out = v;
    return 1;
}

/* spread.by_shard's twin: a request's batches grouped by the shard of each one's
 * partition, or None for anything by_shard answers None for and for what this does
 * not handle (see spread.py). */
static PyObject *spread(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "spread takes 4 arguments");
        return NULL;
    }
    PyObject *batches = args[0], *partitions = args[1], *shards = args[2];
    long long limit;
    if (!(PyList_Check(batches) || PyTuple_Check(batches)) || !PyList_Check(partitions) ||
        !PyList_Check(shards) || PyList_GET_SIZE(shards) != PyList_GET_SIZE(partitions) ||
        !plain_int(args[3], LLONG_MIN, LLONG_MAX, &limit))
        Py_RETURN_NONE;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(batches);
    Py_ssize_t count = PyList_GET_SIZE(partitions);
    PyObject **items = PySequence_Fast_ITEMS(batches);
    PyObject *result = NULL;
    PyObject *seen_shards[MAX_SPREAD_SHARDS];
    Py_ssize_t sizes[MAX_SPREAD_SHARDS] = {0};
    Py_ssize_t groups = 0;
    unsigned char *taken = PyMem_Calloc((size_t)count + 1, 1);
    int32_t *group_of = PyMem_Malloc((size_t)n * sizeof(int32_t) + 1);
    if (!taken || !group_of) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = items[i], *packed;
        long long p, records, first, last;
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) goto decline;
        packed = PyTuple_GET_ITEM(pair, 1);
        if (!PyTuple_Check(packed) || PyTuple_GET_SIZE(packed) != 4) goto decline;
        PyObject *data = PyTuple_GET_ITEM(packed, 0);
        if (!plain_int(PyTuple_GET_ITEM(pair, 0), 0, (long long)count - 1, &p) || taken[p] ||
            !plain_int(PyTuple_GET_ITEM(packed, 1), 1, 0xFFFFFFFFLL, &records) ||
            !PyBytes_Check(data) || PyBytes_GET_SIZE(data) > limit ||
            !plain_int(PyTuple_GET_ITEM(packed, 2), LLONG_MIN, LLONG_MAX, &first) ||
            !plain_int(PyTuple_GET_ITEM(packed, 3), LLONG_MIN, LLONG_MAX, &last))
            goto decline;
        taken[p] = 1;
        PyObject *shard = PyList_GET_ITEM(shards, p);
        Py_ssize_t g = 0;
        while (g < groups && seen_shards[g] != shard) g++;
        if (g == groups) {
            if (groups == MAX_SPREAD_SHARDS) goto decline;
            seen_shards[groups++] = shard;
        }
        sizes[g]++;
        group_of[i] = (int32_t)g;
    }
    result = PyList_New(groups);
    if (!result) goto done;
    Py_ssize_t filled[MAX_SPREAD_SHARDS] = {0};
    for (Py_ssize_t g = 0; g < groups; g++) {
        PyObject *group = PyTuple_New(4);
        if (!group) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, g, group);
        Py_INCREF(seen_shards[g]);
        PyTuple_SET_ITEM(group, 0, seen_shards[g]);
        for (int j = 1; j < 4; j++) {
            PyObject *list = PyList_New(sizes[g]);
            if (!list) {
                Py_CLEAR(result);
                goto done;
            }
            PyTuple_SET_ITEM(group, j, list);
        }
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *group = PyList_GET_ITEM(result, group_of[i]);
        PyObject *pair = items[i];
        PyObject *packed = PyTuple_GET_ITEM(pair, 1);
        PyObject *slot = PyLong_FromSsize_t(i);
        if (!slot) {
            Py_CLEAR(result);
            goto done;
        }
        Py_ssize_t at = filled[group_of[i]]++;
        long long p = PyLong_AsLongLong(PyTuple_GET_ITEM(pair, 0));
        PyObject *partition = PyList_GET_ITEM(partitions, p);
        Py_INCREF(partition);
        Py_INCREF(packed);
        PyList_SET_ITEM(PyTuple_GET_ITEM(group, 1), at, partition);
        PyList_SET_ITEM(PyTuple_GET_ITEM(group, 2), at, packed);
        PyList_SET_ITEM(PyTuple_GET_ITEM(group, 3), at, slot);
    }
    goto done;
decline:
    result = Py_None;
    Py_INCREF(result);
done:
    PyMem_Free(taken);
    PyMem_Free(group_of);
    return result;
}

/* Write all of buf to fd; 0 or the errno (EIO for a write that makes no progress). */
static int write_whole(int fd, const char *buf, Py_ssize_t size) {
    while (size > 0) {
        ssize_t n = write(fd, buf, (size_t)size);
        if (n < 0) {
            if (errno == EINTR) continue;
            return errno ? errno : EIO;
        }
        if (n == 0) return EIO;
        buf += n;
        size -= n;
    }
    return 0;
}

static PyObject *write_files(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyList_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "write_files takes two lists: descriptors, data");
        return NULL;
    }
    PyObject *fds = args[0], *datas = args[1];
    Py_ssize_t n = PyList_GET_SIZE(fds);
    if (PyList_GET_SIZE(datas) != n) {
        PyErr_SetString(PyExc_ValueError, "as many data as descriptors");
        return NULL;
    }
    /* Descriptors, buffers and sizes copied out first: the lists may not be touched
       while the interpreter is let go, and each bytes object is held by `held`. */
    int *fd = PyMem_Malloc(sizeof(int) * (size_t)(n ? n : 1));
    const char **buf = PyMem_Malloc(sizeof(char *) * (size_t)(n ? n : 1));
    Py_ssize_t *size = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n ? n : 1));
    int *err = PyMem_Malloc(sizeof(int) * (size_t)(n ? n : 1));
    PyObject *held = PyList_GetSlice(datas, 0, n);
    PyObject *out = NULL;
    if (!fd || !buf || !size || !err || !held) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        long v = PyLong_AsLong(PyList_GET_ITEM(fds, i));
        if (v == -1 && PyErr_Occurred()) goto done;
        if (v < 0 || v > INT_MAX) {
            PyErr_SetString(PyExc_ValueError, "a descriptor is a non-negative int");
            goto done;
        }
        PyObject *data = PyList_GET_ITEM(held, i);
        if (!PyBytes_Check(data)) {
            PyErr_SetString(PyExc_TypeError, "data must be bytes");
            goto done;
        }
        fd[i] = (int)v;
        buf[i] = PyBytes_AS_STRING(data);
        size[i] = PyBytes_GET_SIZE(data);
    }
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) err[i] = write_whole(fd[i], buf[i], size[i]);
    Py_END_ALLOW_THREADS
    out = PyList_New(n);
    if (!out) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *e = PyLong_FromLong(err[i]);
        if (!e) {
            Py_CLEAR(out);
            goto done;
        }
        PyList_SET_ITEM(out, i, e);
    }
done:
    Py_XDECREF(held);
    PyMem_Free(fd);
    PyMem_Free(buf);
    PyMem_Free(size);
    PyMem_Free(err);
    return out;
}


#define MAX_RECORDS 0xFFFFFFFFLL /* a batch header's record count is a u32 */
#define MAX_LENGTH 0xFFFFFFFFLL  /* and its batch_length */

/* One entry's records: entry[0], a 4-tuple (data bytes, count, first, max timestamp),
 * checked as frame_entries checks it; 0, or -1 with an exception set. */
static int entry_records(PyObject *entry, PyObject **data, long long *count, long long *first,
                         long long *last) {
    if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) < 3) {
        PyErr_SetString(PyExc_TypeError, "an entry is a tuple (records, results, slot, ...)");
        return -1;
    }
    PyObject *packed = PyTuple_GET_ITEM(entry, 0);
    if (!PyTuple_Check(packed) || PyTuple_GET_SIZE(packed) != 4 ||
        !PyBytes_Check(PyTuple_GET_ITEM(packed, 0))) {
        PyErr_SetString(PyExc_TypeError, "an entry's records are PackedRecords");
        return -1;
    }
    *data = PyTuple_GET_ITEM(packed, 0);
    if (int_in(PyTuple_GET_ITEM(packed, 1), 1, MAX_RECORDS, "record count", count) < 0 ||
        int_in(PyTuple_GET_ITEM(packed, 2), LLONG_MIN, LLONG_MAX, "first timestamp", first) < 0 ||
        int_in(PyTuple_GET_ITEM(packed, 3), LLONG_MIN, LLONG_MAX, "max timestamp", last) < 0)
        return -1;
    return 0;
}

/* Entries [start, end) of `entries` framed as one batch at `out`, stamped with `base`;
 * the batch's (base, count, max timestamp, size) appended to `placed` and each entry's
 * first offset to `starts`. Their records were checked by the caller's first walk. */
static int put_batch(PyObject **entries, Py_ssize_t start, Py_ssize_t end, long long base,
                     long long count, Py_ssize_t size, unsigned char *out, PyObject *placed,
                     PyObject *starts) {
    long long first = PyLong_AsLongLong(PyTuple_GET_ITEM(PyTuple_GET_ITEM(entries[start], 0), 2));
    long long last = LLONG_MIN;
    unsigned char *records = out + HEADER_SIZE;
    long long offset = base;
    for (Py_ssize_t j = start; j < end; j++) {
        PyObject *packed = PyTuple_GET_ITEM(entries[j], 0);
        PyObject *data = PyTuple_GET_ITEM(packed, 0);
        long long ts = PyLong_AsLongLong(PyTuple_GET_ITEM(packed, 3));
        if (ts > last) last = ts;
        memcpy(records, PyBytes_AS_STRING(data), (size_t)PyBytes_GET_SIZE(data));
        records += PyBytes_GET_SIZE(data);
        PyObject *at = PyLong_FromLongLong(offset);
        if (!at) return -1;
        int failed = PyList_Append(starts, at);
        Py_DECREF(at);
        if (failed) return -1;
        offset += PyLong_AsLongLong(PyTuple_GET_ITEM(packed, 1));
    }
    put_be(out, (uint64_t)base, 8);
    put_be(out + 8, (uint64_t)(HEADER_SIZE - LENGTH_START + size), 4);
    unsigned char *t = out + CRC_START;
    t[0] = FORMAT_VERSION;
    t[1] = 0;
    put_be(t + 2, (uint64_t)count, 4);
    put_be(t + 6, (uint64_t)first, 8);
    put_be(t + 14, (uint64_t)last, 8);
    uLong crc = crc_of(crc32(0L, Z_NULL, 0), t, HEADER_SIZE - CRC_START + size);
    put_be(out + LENGTH_START, (uint64_t)crc, 4);
    PyObject *row = Py_BuildValue("(LLLn)", base, count, last, (Py_ssize_t)(HEADER_SIZE + size));
    if (!row) return -1;
    int failed = PyList_Append(placed, row);
    Py_DECREF(row);
    return failed ? -1 : 0;
}

/* A batch's records: entries [start, end), `size` bytes and `count` records of them. */
typedef struct {
    Py_ssize_t start, end, size;
    long long count;
} Piece;

/* One partition's entries framed (frame_entries for one group): (data, placed, starts). */
static PyObject *frame_group(PyObject *group, PyObject *base_object, long long merged) {
    if (!PyList_Check(group)) {
        PyErr_SetString(PyExc_TypeError, "a partition's entries are a list");
        return NULL;
    }
    long long base;
    if (int_in(base_object, 0, LLONG_MAX, "base offset", &base) < 0) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(group);
    PyObject **entries = PySequence_Fast_ITEMS(group);
    Piece *pieces = PyMem_Malloc(sizeof(Piece) * (size_t)(n ? n : 1));
    if (!pieces) return PyErr_NoMemory();
    Py_ssize_t count_pieces = 0, total = 0;
    long long records_total = 0;
    Piece *piece = NULL;
    PyObject *data = NULL, *placed = NULL, *starts = NULL;
    for (Py_ssize_t j = 0; j < n; j++) {
        PyObject *data;
        long long count, first, last;
        if (entry_records(entries[j], &data, &count, &first, &last) < 0) goto fail;
        Py_ssize_t length = PyBytes_GET_SIZE(data);
        if (!piece || (j > piece->start && (long long)piece->size + length > merged)) {
            piece = &pieces[count_pieces++];
            piece->start = j;
            piece->size = 0;
            piece->count = 0;
        }
        piece->end = j + 1;
        piece->size += length;
        piece->count += count; /* at most n * 2**32: no overflow */
        if (piece->count > MAX_RECORDS) {
            PyErr_SetString(PyExc_ValueError, "record count out of range for a batch");
            goto fail;
        }
        if ((long long)piece->size > MAX_LENGTH - (HEADER_SIZE - LENGTH_START)) {
            PyErr_SetString(PyExc_ValueError, "records too large for one batch");
            goto fail;
        }
        records_total += count;
        if (records_total > LLONG_MAX - base) {
            PyErr_SetString(PyExc_ValueError, "offsets out of range");
            goto fail;
        }
    }
    for (Py_ssize_t k = 0; k < count_pieces; k++) total += HEADER_SIZE + pieces[k].size;
    data = PyBytes_FromStringAndSize(NULL, total);
    placed = PyList_New(0);
    starts = PyList_New(0);
    if (!data || !placed || !starts) goto fail_objects;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(data);
    long long offset = base;
    for (Py_ssize_t k = 0; k < count_pieces; k++) {
        Piece *pc = &pieces[k];
        if (put_batch(entries, pc->start, pc->end, offset, pc->count, pc->size, out, placed,
                      starts) < 0)
            goto fail_objects;
        out += HEADER_SIZE + pc->size;
        offset += pc->count;
    }
    PyMem_Free(pieces);
    PyObject *result = PyTuple_New(3);
    if (!result) {
        Py_DECREF(data);
        Py_DECREF(placed);
        Py_DECREF(starts);
        return NULL;
    }
    PyTuple_SET_ITEM(result, 0, data);
    PyTuple_SET_ITEM(result, 1, placed);
    PyTuple_SET_ITEM(result, 2, starts);
    return result;
fail_objects:
    Py_XDECREF(data);
    Py_XDECREF(placed);
    Py_XDECREF(starts);
fail:
    PyMem_Free(pieces);
    return NULL;
}

static PyObject *frame_pass(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 3 || !PyList_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "frame_pass takes two lists and an int");
        return NULL;
    }
    PyObject *groups = args[0], *bases = args[1];
    long long merged;
    if (int_in(args[2], 0, LLONG_MAX, "merged bytes", &merged) < 0) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(groups);
    if (PyList_GET_SIZE(bases) != n) {
        PyErr_SetString(PyExc_ValueError, "as many base offsets as partitions");
        return NULL;
    }
    PyObject *out = PyList_New(n);
    if (!out) return NULL;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *framed = frame_group(PyList_GET_ITEM(groups, k), PyList_GET_ITEM(bases, k), merged);
        if (!framed) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k, framed);
    }
    return out;
}

static PyObject *answer_pass(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyType_Check(args[0]) || !PyList_Check(args[1]) ||
        !PyList_Check(args[2]) || !PyList_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "answer_pass takes a type and three lists");
        return NULL;
    }
    PyTypeObject *type = (PyTypeObject *)args[0];
    /* What tuple.__new__ can fill in (a NamedTuple is): no instance fields of its own. */
    if (type == &PyTuple_Type || !PyType_IsSubtype(type, &PyTuple_Type) ||
        type->tp_basicsize != PyTuple_Type.tp_basicsize ||
        type->tp_itemsize != PyTuple_Type.tp_itemsize || type->tp_dictoffset) {
        PyErr_SetString(PyExc_TypeError, "result_type must be a NamedTuple of five fields");
        return NULL;
    }
    PyObject *numbers = args[1], *groups = args[2], *starts = args[3];
    Py_ssize_t n = PyList_GET_SIZE(groups);
    if (PyList_GET_SIZE(numbers) != n || PyList_GET_SIZE(starts) != n) {
        PyErr_SetString(PyExc_ValueError, "as many numbers and starts as partitions");
        return NULL;
    }
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *group = PyList_GET_ITEM(groups, k), *firsts = PyList_GET_ITEM(starts, k);
        PyObject *number = PyList_GET_ITEM(numbers, k);
        if (!PyList_Check(group) || !PyList_Check(firsts) ||
            PyList_GET_SIZE(group) != PyList_GET_SIZE(firsts)) {
            PyErr_SetString(PyExc_ValueError, "a start for each entry, both lists");
            return NULL;
        }
        for (Py_ssize_t j = 0; j < PyList_GET_SIZE(group); j++) {
            PyObject *entry = PyList_GET_ITEM(group, j);
            if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) < 3 ||
                !PyTuple_Check(PyTuple_GET_ITEM(entry, 0)) ||
                PyTuple_GET_SIZE(PyTuple_GET_ITEM(entry, 0)) != 4 ||
                !PyList_Check(PyTuple_GET_ITEM(entry, 1))) {
                PyErr_SetString(PyExc_TypeError, "an entry is (PackedRecords, list, slot, ...)");
                return NULL;
            }
            PyObject *packed = PyTuple_GET_ITEM(entry, 0), *results = PyTuple_GET_ITEM(entry, 1);
            Py_ssize_t slot = PyNumber_AsSsize_t(PyTuple_GET_ITEM(entry, 2), PyExc_IndexError);
            if (slot == -1 && PyErr_Occurred()) return NULL;
            if (slot < 0 || slot >= PyList_GET_SIZE(results)) {
                PyErr_SetString(PyExc_IndexError, "an entry's slot is outside its results");
                return NULL;
            }
            PyObject *result = type->tp_alloc(type, 5);
            if (!result) return NULL;
            PyObject *fields[5] = {number, PyList_GET_ITEM(firsts, j), PyTuple_GET_ITEM(packed, 1),
                                   PyTuple_GET_ITEM(packed, 2), Py_False};
            for (int f = 0; f < 5; f++) {
                Py_INCREF(fields[f]);
                PyTuple_SET_ITEM(result, f, fields[f]);
            }
            PyObject *old = PyList_GET_ITEM(results, slot);
            PyList_SET_ITEM(results, slot, result);
            Py_XDECREF(old);
        }
    }
    Py_RETURN_NONE;
}

static PyObject *group_pass(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 6 || !PyDict_Check(args[0]) || !PyList_Check(args[1]) ||
        !PyList_Check(args[2]) || !PyList_Check(args[3]) || !PyList_Check(args[4])) {
        PyErr_SetString(PyExc_TypeError, "group_pass takes a dict, four lists and an item");
        return NULL;
    }
    PyObject *groups = args[0], *keys = args[1], *packs = args[2], *results = args[3];
    PyObject *slots = args[4], *item = args[5];
    Py_ssize_t n = PyList_GET_SIZE(keys);
    if (PyList_GET_SIZE(packs) != n || PyList_GET_SIZE(slots) != n) {
        PyErr_SetString(PyExc_ValueError, "as many keys, packs and slots");
        return NULL;
    }
    /* Each step reads the lists again: a key's hash or equality (Python code) could
     * change them, and then the lengths are checked again rather than trusted. */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(keys); i++) {
        if (i >= PyList_GET_SIZE(packs) || i >= PyList_GET_SIZE(slots)) {
            PyErr_SetString(PyExc_ValueError, "as many keys, packs and slots");
            return NULL;
        }
        PyObject *key = PyList_GET_ITEM(keys, i);
        Py_INCREF(key);
        PyObject *entry = PyTuple_Pack(4, PyList_GET_ITEM(packs, i), results,
                                       PyList_GET_ITEM(slots, i), item);
        if (!entry) {
            Py_DECREF(key);
            return NULL;
        }
        PyObject *found = PyDict_GetItemWithError(groups, key); /* borrowed */
        int failed;
        if (found) {
            Py_INCREF(found);
            failed = PyList_Check(found) ? PyList_Append(found, entry) : -1;
            if (failed && !PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "a group is a list");
            Py_DECREF(found);
        } else if (PyErr_Occurred()) {
            failed = -1;
        } else {
            PyObject *group = PyList_New(1);
            if (!group) {
                failed = -1;
            } else {
                Py_INCREF(entry);
                PyList_SET_ITEM(group, 0, entry);
                failed = PyDict_SetItem(groups, key, group);
                Py_DECREF(group);
            }
        }
        Py_DECREF(entry);
        Py_DECREF(key);
        if (failed) return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"frame", (PyCFunction)(void (*)(void))frame, METH_FASTCALL,
     "Packed records framed as one batch (base offset 0): codec.frame_batch's twin."},
    {"spread", (PyCFunction)(void (*)(void))spread, METH_FASTCALL,
     "A request's batches grouped by shard, or None: spread.by_shard's twin."},
    {"write_files", (PyCFunction)(void (*)(void))write_files, METH_FASTCALL,
     "Each data written whole to its descriptor, the interpreter let go once; errnos."},
    {"frame_pass", (PyCFunction)(void (*)(void))frame_pass, METH_FASTCALL,
     "A pass's entries framed as stamped batches per partition: passes.frame_entries' twin."},
    {"answer_pass", (PyCFunction)(void (*)(void))answer_pass, METH_FASTCALL,
     "A pass's committed entries given their results: passes.answer_entries' twin."},
    {"group_pass", (PyCFunction)(void (*)(void))group_pass, METH_FASTCALL,
     "One item's entries onto their partitions' lists: passes.group_entries' twin."},
    {0},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "storage.embedded._framing",
    .m_doc = "The embedded log's batch framing, and its writer's writes of a pass, in C.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__framing(void) { return PyModule_Create(&module); }
