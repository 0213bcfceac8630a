/*
 * The gateway's per-record loops, in C: reading a produce body straight into
 * storage's packed record layout, writing fetched records as the API's JSON, and
 * writing a produce reply's offsets.
 *
 * Both are fast paths with a Python twin that stays the reference. Each answers
 * None for anything it is not certain about, and the caller then takes the Python
 * path, which also writes every error message. So the rule for changing this file:
 * when a function here returns a result, it must be byte for byte what the Python
 * path would have produced (the property tests in tests/gateway/test_speedups.py
 * hold it to that).
 *
 * scan_produce takes a body only when re-serialising each value with orjson could
 * not change a byte: compact JSON, integers within int64, strings whose
 * only escapes are the ones orjson writes, objects without duplicate names. Any
 * float, `\u` escape, whitespace inside a value, binary topic or header goes to
 * the Python path.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define FMT_JSON 0
#define FMT_STRING 1
#define FMT_BINARY 2

#define PACKED_RECORD_HEAD 18 /* timestamp i64, key_len i32, value_len i32, header_count u16 */
#define MAX_MEMBERS 64        /* larger objects in a value take the Python path */
#define MAX_DIGITS 19         /* 19 digits fit a uint64; the range is checked after */

/* ------------------------------------------------------------------ scanning -- */

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
    Py_ssize_t items;
    Py_ssize_t max_items;
    Py_ssize_t max_string;
} Scan;

typedef struct {
    const unsigned char *key;
    Py_ssize_t key_len; /* -1: null */
    const unsigned char *value;
    Py_ssize_t value_len; /* -1: null */
    long long timestamp;  /* -1: log-append time */
    long long partition;  /* -1: the partitioner picks */
} Span;

static inline void skip_ws(Scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

static inline int count_item(Scan *s) { return ++s->items <= s->max_items; }

/* One strict UTF-8 sequence starting at p (a byte >= 0x80); its length, or 0. */
static inline int utf8_sequence(const unsigned char *p, const unsigned char *end) {
    unsigned char c = p[0];
    Py_ssize_t room = end - p;
    if (c >= 0xC2 && c <= 0xDF) {
        return (room >= 2 && (p[1] & 0xC0) == 0x80) ? 2 : 0;
    }
    if (c >= 0xE0 && c <= 0xEF) {
        if (room < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && p[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && p[1] > 0x9F) return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (room < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && p[1] < 0x90) return 0; /* overlong */
        if (c == 0xF4 && p[1] > 0x8F) return 0; /* past U+10FFFF */
        return 4;
    }
    return 0;
}

/* A string at s->p (on its quote). `escapes`: allow the escapes orjson writes
 * itself; otherwise none, so the bytes between the quotes are the text. */
static int scan_string(Scan *s, int escapes, const unsigned char **text, Py_ssize_t *len) {
    const unsigned char *start = ++s->p;
    const unsigned char *p = start, *end = s->end;
    while (p < end) {
        unsigned char c = *p;
        if (c == '"') {
            if (p - start > s->max_string) return -1;
            *text = start;
            *len = p - start;
            s->p = p + 1;
            return 0;
        }
        if (c == '\\') {
            if (!escapes || p + 1 >= end) return -1;
            c = p[1];
            if (c != '"' && c != '\\' && c != 'n' && c != 'r' && c != 't' && c != 'b' && c != 'f')
                return -1;
            p += 2;
        } else if (c < 0x20) {
            return -1;
        } else if (c < 0x80) {
            p++;
        } else {
            int n = utf8_sequence(p, end);
            if (!n) return -1;
            p += n;
        }
    }
    return -1;
}

/* A canonical integer: no sign on zero, no fraction, within int64. */
static int scan_int(Scan *s, long long *out) {
    const unsigned char *p = s->p, *end = s->end;
    int negative = 0, digits = 0;
    unsigned long long value = 0;
    if (p < end && *p == '-') {
        negative = 1;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9') return -1;
    if (*p == '0') {
        if (negative) return -1;
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9') {
            if (++digits > MAX_DIGITS) return -1;
            value = value * 10 + (unsigned long long)(*p - '0');
            p++;
        }
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E')) return -1;
    if (value > (unsigned long long)INT64_MAX + (unsigned long long)negative) return -1;
    *out = negative ? (long long)(0ULL - value) : (long long)value;
    s->p = p;
    return 0;
}

static int scan_literal(Scan *s, const char *word, Py_ssize_t n) {
    if (s->end - s->p < n || memcmp(s->p, word, n) != 0) return -1;
    s->p += n;
    return 0;
}

/* Past a member or element: 1 at the closing bracket, 0 after a comma (either
 * consumed), -1 at anything else. `ws`: whitespace is allowed around them. */
static int after_item(Scan *s, unsigned char close, int ws) {
    if (ws) skip_ws(s);
    if (s->p >= s->end) return -1;
    if (*s->p == close) {
        s->p++;
        return 1;
    }
    if (*s->p != ',' || !count_item(s)) return -1;
    s->p++;
    if (ws) skip_ws(s);
    return 0;
}

/* Past an opening bracket (counted; `depth` left for it): 1 if the container is
 * empty (closed too), 0 if it has content, -1 if it may not open here. */
static int open_container(Scan *s, unsigned char close, int depth) {
    if (depth < 1 || !count_item(s)) return -1;
    s->p++;
    if (s->p < s->end && *s->p == close) {
        s->p++;
        return 1;
    }
    return 0;
}

/* A compact, canonical JSON value nesting at most `depth` containers. */
static int scan_value(Scan *s, int depth) {
    if (s->p >= s->end) return -1;
    unsigned char c = *s->p;
    if (c == '"') {
        const unsigned char *text;
        Py_ssize_t len;
        return scan_string(s, 1, &text, &len);
    }
    if (c == '{') {
        const unsigned char *names[MAX_MEMBERS];
        Py_ssize_t lengths[MAX_MEMBERS];
        int members = 0, opened = open_container(s, '}', depth);
        if (opened != 0) return opened < 0 ? -1 : 0;
        for (;;) {
            const unsigned char *name;
            Py_ssize_t len;
            if (s->p >= s->end || *s->p != '"' || members == MAX_MEMBERS) return -1;
            if (scan_string(s, 1, &name, &len) < 0) return -1;
            for (int i = 0; i < members; i++) {
                if (lengths[i] == len && memcmp(names[i], name, len) == 0) return -1;
            }
            names[members] = name;
            lengths[members++] = len;
            if (s->p >= s->end || *s->p != ':') return -1;
            s->p++;
            if (scan_value(s, depth - 1) < 0) return -1;
            int next = after_item(s, '}', 0);
            if (next != 0) return next < 0 ? -1 : 0;
        }
    }
    if (c == '[') {
        int opened = open_container(s, ']', depth);
        if (opened != 0) return opened < 0 ? -1 : 0;
        for (;;) {
            if (scan_value(s, depth - 1) < 0) return -1;
            int next = after_item(s, ']', 0);
            if (next != 0) return next < 0 ? -1 : 0;
        }
    }
    if (c == 't') return scan_literal(s, "true", 4);
    if (c == 'f') return scan_literal(s, "false", 5);
    if (c == 'n') return scan_literal(s, "null", 4);
    long long ignored;
    return scan_int(s, &ignored);
}

static int is_null(Scan *s) { return s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0; }

enum { F_KEY = 1, F_VALUE = 2, F_PARTITION = 4, F_TIMESTAMP = 8 };

static int field_of(const unsigned char *name, Py_ssize_t len) {
    if (len == 3 && memcmp(name, "key", 3) == 0) return F_KEY;
    if (len == 5 && memcmp(name, "value", 5) == 0) return F_VALUE;
    if (len == 9 && memcmp(name, "partition", 9) == 0) return F_PARTITION;
    if (len == 9 && memcmp(name, "timestamp", 9) == 0) return F_TIMESTAMP;
    return 0;
}

/* One record object; whitespace is allowed around its own tokens, not in a value. */
static int scan_record(Scan *s, Span *r, int fmt, long long partitions, int value_depth) {
    int seen = 0;
    r->key = r->value = NULL;
    r->key_len = r->value_len = -1;
    r->timestamp = r->partition = -1;
    if (s->p >= s->end || *s->p != '{' || !count_item(s)) return -1;
    s->p++;
    skip_ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return 0;
    }
    for (;;) {
        const unsigned char *name;
        Py_ssize_t len;
        if (s->p >= s->end || *s->p != '"' || scan_string(s, 0, &name, &len) < 0) return -1;
        int field = field_of(name, len);
        if (!field || (seen & field)) return -1;
        seen |= field;
        skip_ws(s);
        if (s->p >= s->end || *s->p != ':') return -1;
        s->p++;
        skip_ws(s);
        if (is_null(s)) {
            s->p += 4;
        } else if (field == F_KEY) {
            if (s->p >= s->end || *s->p != '"') return -1;
            if (scan_string(s, 0, &r->key, &r->key_len) < 0) return -1;
        } else if (field == F_VALUE) {
            if (fmt == FMT_JSON) {
                const unsigned char *start = s->p;
                if (scan_value(s, value_depth) < 0) return -1;
                r->value = start;
                r->value_len = s->p - start;
            } else if (fmt == FMT_STRING) {
                if (s->p >= s->end || *s->p != '"') return -1;
                if (scan_string(s, 0, &r->value, &r->value_len) < 0) return -1;
            } else {
                return -1;
            }
        } else {
            long long n;
            if (scan_int(s, &n) < 0 || n < 0) return -1;
            if (field == F_PARTITION) {
                if (n >= partitions) return -1;
                r->partition = n;
            } else {
                r->timestamp = n;
            }
        }
        int next = after_item(s, '}', 1);
        if (next != 0) return next < 0 ? -1 : 0;
    }
}

/* Kafka's Utils.murmur2 (seed 0x9747b28c), as an unsigned 32-bit value. */
static uint32_t murmur2(const unsigned char *data, Py_ssize_t length) {
    const uint32_t m = 0x5bd1e995;
    uint32_t h = 0x9747b28c ^ (uint32_t)length;
    Py_ssize_t end = length - (length & 3), i;
    for (i = 0; i < end; i += 4) {
        uint32_t k = (uint32_t)data[i] | ((uint32_t)data[i + 1] << 8) |
                     ((uint32_t)data[i + 2] << 16) | ((uint32_t)data[i + 3] << 24);
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (length & 3) {
        case 3:
            h ^= (uint32_t)data[end + 2] << 16;
            /* fall through */
        case 2:
            h ^= (uint32_t)data[end + 1] << 8;
            /* fall through */
        case 1:
            h ^= (uint32_t)data[end];
            h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

static inline unsigned char *put_be(unsigned char *out, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xFF);
        v >>= 8;
    }
    return out + bytes;
}

/* The packed records of `partition`, picked out of `spans` by `chosen` (NULL: all). */
static PyObject *pack_group(Span *spans, Py_ssize_t n, const long long *chosen, long long partition,
                            long long now_ms) {
    Py_ssize_t size = 0, count = 0, i;
    long long first = 0, max_ts = 0;
    for (i = 0; i < n; i++) {
        if (chosen && chosen[i] != partition) continue;
        size += PACKED_RECORD_HEAD + (spans[i].key_len > 0 ? spans[i].key_len : 0) +
                (spans[i].value_len > 0 ? spans[i].value_len : 0);
    }
    PyObject *data = PyBytes_FromStringAndSize(NULL, size);
    if (!data) return NULL;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(data);
    for (i = 0; i < n; i++) {
        Span *r = &spans[i];
        if (chosen && chosen[i] != partition) continue;
        long long ts = r->timestamp < 0 ? now_ms : r->timestamp;
        if (count == 0 || ts > max_ts) max_ts = ts;
        if (count == 0) first = ts;
        count++;
        out = put_be(out, (uint64_t)ts, 8);
        out = put_be(out, (uint32_t)(int32_t)r->key_len, 4);
        out = put_be(out, (uint32_t)(int32_t)r->value_len, 4);
        out = put_be(out, 0, 2);
        if (r->key_len > 0) {
            memcpy(out, r->key, r->key_len);
            out += r->key_len;
        }
        if (r->value_len > 0) {
            memcpy(out, r->value, r->value_len);
            out += r->value_len;
        }
    }
    return Py_BuildValue("(LNnLL)", partition, data, count, first, max_ts);
}

static PyObject *scan_produce(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"body",       "fmt",        "partitions", "max_records",
                            "max_record_bytes", "max_depth",  "max_items",  "max_string_bytes",
                            "now_ms",     "round_robin", NULL};
    Py_buffer body;
    int fmt, max_depth;
    long long partitions, max_record_bytes, now_ms, round_robin;
    Py_ssize_t max_records, max_items, max_string;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*iLnLinnLL", names, &body, &fmt, &partitions,
                                     &max_records, &max_record_bytes, &max_depth, &max_items,
                                     &max_string, &now_ms, &round_robin))
        return NULL;
    PyObject *result = NULL;
    Span *spans = NULL;
    long long *chosen = NULL;
    unsigned char *seen = NULL;
    Py_ssize_t n = 0, cap = 0, i;
    Scan s = {(const unsigned char *)body.buf, (const unsigned char *)body.buf + body.len, 0,
              max_items, max_string};
    const unsigned char *name;
    Py_ssize_t len;
    /* A value sits in a record (level 3 of the document: body, list, record). */
    int value_depth = max_depth - 3;
    if (value_depth < 0 || partitions < 1 || partitions > (1 << 20) || max_records < 1)
        goto fallback;

    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{' || !count_item(&s)) goto fallback;
    s.p++;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '"' || scan_string(&s, 0, &name, &len) < 0) goto fallback;
    if (len != 7 || memcmp(name, "records", 7) != 0) goto fallback;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != ':') goto fallback;
    s.p++;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '[' || !count_item(&s)) goto fallback;
    s.p++;
    skip_ws(&s);
    for (;;) {
        if (n == max_records) goto fallback;
        if (n == cap) {
            cap = cap ? cap * 2 : 128;
            Span *grown = PyMem_Realloc(spans, cap * sizeof(Span));
            if (!grown) {
                PyErr_NoMemory();
                goto done;
            }
            spans = grown;
        }
        if (scan_record(&s, &spans[n], fmt, partitions, value_depth) < 0) goto fallback;
        Span *r = &spans[n++];
        if ((r->key_len > 0 ? r->key_len : 0) + (r->value_len > 0 ? r->value_len : 0) >
            max_record_bytes)
            goto fallback;
        int next = after_item(&s, ']', 1);
        if (next < 0) goto fallback;
        if (next > 0) break;
    }
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '}') goto fallback;
    s.p++;
    skip_ws(&s);
    if (s.p != s.end) goto fallback;

    long long drawn = 0;
    int one_partition = 1;
    if (partitions > 1) {
        chosen = PyMem_Malloc(n * sizeof(long long));
        if (!chosen) {
            PyErr_NoMemory();
            goto done;
        }
        for (i = 0; i < n; i++) {
            Span *r = &spans[i];
            if (r->partition >= 0)
                chosen[i] = r->partition;
            else if (r->key_len >= 0)
                chosen[i] = (long long)((murmur2(r->key, r->key_len) & 0x7fffffff) % partitions);
            else
                chosen[i] = (long long)(((unsigned long long)round_robin + drawn++) % partitions);
            if (chosen[i] != chosen[0]) one_partition = 0;
        }
    }
    PyObject *groups = PyList_New(0);
    if (!groups) goto done;
    PyObject *order = Py_None;
    Py_INCREF(order);
    if (one_partition) {
        PyObject *group = pack_group(spans, n, NULL, chosen ? chosen[0] : 0, now_ms);
        if (!group || PyList_Append(groups, group) < 0) {
            Py_XDECREF(group);
            goto fail_groups;
        }
        Py_DECREF(group);
    } else {
        Py_DECREF(order);
        order = PyList_New(n);
        if (!order) goto fail_groups;
        seen = PyMem_Calloc((size_t)partitions, 1);
        if (!seen) {
            PyErr_NoMemory();
            goto fail_groups;
        }
        for (i = 0; i < n; i++) {
            PyObject *p = PyLong_FromLongLong(chosen[i]);
            if (!p) goto fail_groups;
            PyList_SET_ITEM(order, i, p);
            if (seen[chosen[i]]) continue; /* groups go in order of first appearance */
            seen[chosen[i]] = 1;
            PyObject *group = pack_group(spans, n, chosen, chosen[i], now_ms);
            if (!group || PyList_Append(groups, group) < 0) {
                Py_XDECREF(group);
                goto fail_groups;
            }
            Py_DECREF(group);
        }
    }
    result = Py_BuildValue("(NNL)", groups, order, drawn);
    goto done;
fail_groups:
    Py_DECREF(groups);
    Py_XDECREF(order);
    goto done;
fallback:
    result = Py_None;
    Py_INCREF(result);
done:
    PyMem_Free(spans);
    PyMem_Free(chosen);
    PyMem_Free(seen);
    PyBuffer_Release(&body);
    return result;
}

/* ------------------------------------------------------------------ rendering -- */

typedef struct {
    char *data;
    Py_ssize_t len;
    Py_ssize_t cap;
} Buf;

static int buf_grow(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + extra) cap *= 2;
    char *data = PyMem_Realloc(b->data, cap);
    if (!data) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline int buf_put(Buf *b, const void *src, Py_ssize_t n) {
    if (buf_grow(b, n) < 0) return -1;
    memcpy(b->data + b->len, src, n);
    b->len += n;
    return 0;
}

#define PUT_LITERAL(b, s) buf_put((b), (s), (Py_ssize_t)sizeof(s) - 1)

static const char DIGIT_PAIRS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* `v` in decimal at `out` (room for 20 characters); returns the characters written. */
static inline int write_int(char *out, long long v) {
    char tmp[24];
    char *end = tmp + sizeof tmp, *p = end;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    while (u >= 100) {
        unsigned pair = (unsigned)(u % 100) * 2;
        u /= 100;
        *--p = DIGIT_PAIRS[pair + 1];
        *--p = DIGIT_PAIRS[pair];
    }
    if (u >= 10) {
        *--p = DIGIT_PAIRS[u * 2 + 1];
        *--p = DIGIT_PAIRS[u * 2];
    } else {
        *--p = (char)('0' + u);
    }
    if (v < 0) *--p = '-';
    memcpy(out, p, end - p);
    return (int)(end - p);
}

static int buf_int(Buf *b, long long v) {
    if (buf_grow(b, 20) < 0) return -1;
    b->len += write_int(b->data + b->len, v);
    return 0;
}

/* `text` (UTF-8) as a JSON string the way orjson writes it; 1 when the bytes are not
 * valid UTF-8 (the caller falls back to Python's replacement rules). */
static int buf_string(Buf *b, const unsigned char *text, Py_ssize_t len) {
    static const char hex[] = "0123456789abcdef";
    if (buf_grow(b, len * 6 + 2) < 0) return -1;
    char *out = b->data + b->len;
    const unsigned char *p = text, *end = text + len;
    *out++ = '"';
    while (p < end) {
        unsigned char c = *p;
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            *out++ = (char)c;
            p++;
        } else if (c >= 0x80) {
            int n = utf8_sequence(p, end);
            if (!n) return 1;
            memcpy(out, p, n);
            out += n;
            p += n;
        } else {
            *out++ = '\\';
            switch (c) {
                case '"': *out++ = '"'; break;
                case '\\': *out++ = '\\'; break;
                case '\n': *out++ = 'n'; break;
                case '\r': *out++ = 'r'; break;
                case '\t': *out++ = 't'; break;
                case '\b': *out++ = 'b'; break;
                case '\f': *out++ = 'f'; break;
                default:
                    *out++ = 'u';
                    *out++ = '0';
                    *out++ = '0';
                    *out++ = hex[c >> 4];
                    *out++ = hex[c & 15];
            }
            p++;
        }
    }
    *out++ = '"';
    b->len = out - b->data;
    return 0;
}

static int buf_base64(Buf *b, const unsigned char *p, Py_ssize_t len) {
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (buf_grow(b, (len + 2) / 3 * 4 + 2) < 0) return -1;
    char *out = b->data + b->len;
    Py_ssize_t i = 0;
    *out++ = '"';
    for (; i + 2 < len; i += 3) {
        uint32_t v = ((uint32_t)p[i] << 16) | ((uint32_t)p[i + 1] << 8) | p[i + 2];
        *out++ = alphabet[v >> 18];
        *out++ = alphabet[(v >> 12) & 63];
        *out++ = alphabet[(v >> 6) & 63];
        *out++ = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len) v |= (uint32_t)p[i + 1] << 8;
        *out++ = alphabet[v >> 18];
        *out++ = alphabet[(v >> 12) & 63];
        *out++ = i + 1 < len ? alphabet[(v >> 6) & 63] : '=';
        *out++ = '=';
    }
    *out++ = '"';
    b->len = out - b->data;
    return 0;
}

/* bytes or None as a JSON string (or null); 1: not valid UTF-8. */
static int buf_text_or_null(Buf *b, PyObject *o) {
    if (o == Py_None) return PUT_LITERAL(b, "null");
    if (!PyBytes_Check(o)) return 1;
    return buf_string(b, (const unsigned char *)PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o));
}

static int render_headers(Buf *b, PyObject *headers) {
    if (!PyTuple_Check(headers)) return 1;
    Py_ssize_t n = PyTuple_GET_SIZE(headers);
    if (PUT_LITERAL(b, "[") < 0) return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *pair = PyTuple_GET_ITEM(headers, i);
        if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) return 1;
        PyObject *name = PyTuple_GET_ITEM(pair, 0), *value = PyTuple_GET_ITEM(pair, 1);
        if (!PyUnicode_Check(name) || !PyBytes_Check(value)) return 1;
        Py_ssize_t name_len;
        const char *utf8 = PyUnicode_AsUTF8AndSize(name, &name_len);
        if (!utf8) { /* lone surrogates: Python's path decides */
            PyErr_Clear();
            return 1;
        }
        int rc;
        if ((rc = buf_put(b, i ? ",[" : "[", i ? 2 : 1)) != 0) return rc;
        if ((rc = buf_string(b, (const unsigned char *)utf8, name_len)) != 0) return rc;
        if ((rc = PUT_LITERAL(b, ",")) != 0) return rc;
        if ((rc = buf_text_or_null(b, value)) != 0) return rc;
        if ((rc = PUT_LITERAL(b, "]")) != 0) return rc;
    }
    return PUT_LITERAL(b, "]");
}

/* One record (offset, timestamp, key, value, headers); 1: let Python render it. */
static int render_record(Buf *b, PyObject *rec, int fmt, const char *head, Py_ssize_t head_len) {
    if (!PyTuple_Check(rec) || PyTuple_GET_SIZE(rec) < 5) return 1;
    PyObject *offset = PyTuple_GET_ITEM(rec, 0), *ts = PyTuple_GET_ITEM(rec, 1);
    PyObject *key = PyTuple_GET_ITEM(rec, 2), *value = PyTuple_GET_ITEM(rec, 3);
    PyObject *headers = PyTuple_GET_ITEM(rec, 4);
    int overflow = 0, rc;
    long long o = PyLong_AsLongLongAndOverflow(offset, &overflow);
    if (o == -1 && PyErr_Occurred()) return -1;
    if (overflow) return 1;
    long long t = PyLong_AsLongLongAndOverflow(ts, &overflow);
    if (t == -1 && PyErr_Occurred()) return -1;
    if (overflow) return 1;
    /* The fixed text and the two numbers, with one check for room. */
    static const char TS[] = ",\"timestamp\":";
    static const char NULL_KEY[] = ",\"key\":null,\"value\":";
    if (buf_grow(b, head_len + 2 * 20 + sizeof TS + sizeof NULL_KEY) < 0) return -1;
    char *out = b->data + b->len;
    memcpy(out, head, head_len);
    out += head_len;
    out += write_int(out, o);
    memcpy(out, TS, sizeof TS - 1);
    out += sizeof TS - 1;
    out += write_int(out, t);
    if (key == Py_None) {
        memcpy(out, NULL_KEY, sizeof NULL_KEY - 1);
        b->len = out + sizeof NULL_KEY - 1 - b->data;
    } else {
        b->len = out - b->data;
        if ((rc = PUT_LITERAL(b, ",\"key\":")) != 0) return rc;
        if ((rc = buf_text_or_null(b, key)) != 0) return rc;
        if ((rc = PUT_LITERAL(b, ",\"value\":")) != 0) return rc;
    }
    if (value == Py_None) {
        rc = PUT_LITERAL(b, "null");
    } else if (!PyBytes_Check(value)) {
        rc = 1;
    } else if (fmt == FMT_JSON) {
        rc = buf_put(b, PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value));
    } else if (fmt == FMT_STRING) {
        rc = buf_text_or_null(b, value);
    } else {
        rc = buf_base64(b, (const unsigned char *)PyBytes_AS_STRING(value),
                        PyBytes_GET_SIZE(value));
    }
    if (rc != 0) return rc;
    if (PyTuple_Check(headers) && PyTuple_GET_SIZE(headers) == 0)
        return PUT_LITERAL(b, ",\"headers\":[]}");
    if ((rc = PUT_LITERAL(b, ",\"headers\":")) != 0) return rc;
    if ((rc = render_headers(b, headers)) != 0) return rc;
    return PUT_LITERAL(b, "}");
}

/* The records as a JSON array into `b`; 1: let Python render them. */
static int render_array(Buf *b, PyObject *records, long long partition, int fmt) {
    PyObject *seq = PySequence_Fast(records, "records must be a sequence");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), i;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Py_ssize_t guess = 64 + n * 128; /* the fixed text of a record, and its numbers */
    for (i = 0; i < n; i++) {
        if (PyTuple_Check(items[i]) && PyTuple_GET_SIZE(items[i]) >= 5) {
            PyObject *value = PyTuple_GET_ITEM(items[i], 3);
            if (PyBytes_Check(value)) guess += PyBytes_GET_SIZE(value) * (fmt == FMT_JSON ? 1 : 2);
        }
    }
    char head[64];
    int head_len = snprintf(head, sizeof head, "{\"partition\":%lld,\"offset\":", partition);
    int rc = buf_grow(b, guess);
    if (rc == 0) rc = PUT_LITERAL(b, "[");
    for (i = 0; rc == 0 && i < n; i++) {
        if (i) rc = PUT_LITERAL(b, ",");
        if (rc == 0) rc = render_record(b, items[i], fmt, head, head_len);
    }
    if (rc == 0) rc = PUT_LITERAL(b, "]");
    Py_DECREF(seq);
    return rc;
}

static PyObject *finish(Buf *b, int rc) {
    PyObject *result = NULL;
    if (rc == 0) {
        result = PyBytes_FromStringAndSize(b->data, b->len);
    } else if (rc == 1) {
        result = Py_None;
        Py_INCREF(result);
    }
    PyMem_Free(b->data);
    return result;
}

static PyObject *render_fetch(PyObject *self, PyObject *args) {
    PyObject *records;
    long long partition, next_offset, end_offset;
    int fmt;
    if (!PyArg_ParseTuple(args, "OLiLL", &records, &partition, &fmt, &next_offset, &end_offset))
        return NULL;
    Buf b = {NULL, 0, 0};
    int rc = PUT_LITERAL(&b, "{\"records\":");
    if (rc == 0) rc = render_array(&b, records, partition, fmt);
    if (rc == 0) rc = PUT_LITERAL(&b, ",\"next_offset\":");
    if (rc == 0) rc = buf_int(&b, next_offset);
    if (rc == 0) rc = PUT_LITERAL(&b, ",\"end_offset\":");
    if (rc == 0) rc = buf_int(&b, end_offset);
    if (rc == 0) rc = PUT_LITERAL(&b, "}");
    return finish(&b, rc);
}

static PyObject *offsets_json(PyObject *self, PyObject *args) {
    long long partition, base, count;
    if (!PyArg_ParseTuple(args, "LLL", &partition, &base, &count)) return NULL;
    if (count < 0) {
        PyErr_SetString(PyExc_ValueError, "count must not be negative");
        return NULL;
    }
    char head[48];
    int head_len = snprintf(head, sizeof head, "{\"partition\":%lld,\"offset\":", partition);
    Buf b = {NULL, 0, 0};
    int rc = PUT_LITERAL(&b, "[");
    for (long long i = 0; rc == 0 && i < count; i++) {
        if (i) rc = PUT_LITERAL(&b, ",");
        if (rc == 0) rc = buf_put(&b, head, head_len);
        if (rc == 0) rc = buf_int(&b, base + i);
        if (rc == 0) rc = PUT_LITERAL(&b, "}");
    }
    if (rc == 0) rc = PUT_LITERAL(&b, "]");
    PyObject *result = rc == 0 ? PyBytes_FromStringAndSize(b.data, b.len) : NULL;
    PyMem_Free(b.data);
    return result;
}

/* ------------------------------------------------------------------ module -- */

static PyMethodDef methods[] = {
    {"scan_produce", (PyCFunction)(void (*)(void))scan_produce, METH_VARARGS | METH_KEYWORDS,
     "A JSON produce body as packed records per partition, or None (take the Python path)."},
    {"render_fetch", render_fetch, METH_VARARGS,
     "A whole fetch reply: the records, next_offset and end_offset; or None."},
    {"offsets_json", offsets_json, METH_VARARGS,
     "The JSON array of `count` consecutive offsets of one partition from `base`."},
    {0},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "gateway._speedups",
    .m_doc = "C fast paths for produce and fetch.",
    .m_size = -1,
    .m_methods = methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    if (PyModule_AddIntConstant(m, "FMT_JSON", FMT_JSON) < 0 ||
        PyModule_AddIntConstant(m, "FMT_STRING", FMT_STRING) < 0 ||
        PyModule_AddIntConstant(m, "FMT_BINARY", FMT_BINARY) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
