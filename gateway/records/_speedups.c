/*
 * The gateway's per-record loops, in C: reading a produce body straight into
 * storage's packed record layout (checking each value against a compiled schema
 * as it goes, on a schema-bound topic), writing fetched records as the API's JSON,
 * and writing a produce reply's offsets, and adding the schema id header to packed
 * records.
 *
 * Each is a fast path with a Python twin that stays the reference. Each answers
 * None for anything it is not certain about, and the caller then takes the Python
 * path, which also writes every error message. So the rule for changing this file:
 * when a function here returns a result, it must be byte for byte what the Python
 * path would have produced (the differential property tests in
 * tests/gateway/records/test_speedups.py and, for the group fetch's records,
 * tests/gateway/groups/test_recordjson.py hold it to that, also under
 * AddressSanitizer and UBSan: `make sanitize`).
 *
 * scan_produce reads JSON as RFC 8259 defines it, as strictly as msgspec does
 * (the reference's reader), and stores what the reference stores
 * (gateway/records/validation.py, values.py):
 * - a json value: its text as sent without insignificant whitespace
 *   (`msgspec.json.format(text, indent=-1)`): numbers, escapes and member order
 *   untouched, duplicate names kept;
 * - keys, string values and header names and values: the decoded text in UTF-8
 *   (escapes decoded, surrogate pairs joined; an unpaired surrogate is refused);
 * - a binary value: its base64 text decoded;
 * - headers given as `[[name, value], ...]` or `{name: value}` (a repeated name
 *   keeps its first place and its last value, as a Python dict does), a null
 *   header value stored empty;
 * - a record field given twice: the last one counts, as in a Python dict.
 * Records are placed as partitioner.choose_partition places them (Kafka's murmur2
 * for a key) and packed in one more pass over them, each partition's bytes sized
 * first and then written in request order; each partition's records come back as
 * one storage.records.PackedRecords (the type passed in), made here.
 * It declines anything the reference refuses, and what it does not mean to
 * handle: a body member other than one `records`, a header object of more than
 * MAX_HEADER_NAMES names, values nested past MAX_VALUE_DEPTH, base64 padded past
 * its data (`QUJD====`).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#define FMT_JSON 0
#define FMT_STRING 1
#define FMT_BINARY 2

#define PACKED_RECORD_HEAD 18  /* timestamp i64, key_len i32, value_len i32, header_count u16 */
#define PACKED_HEADER_HEAD 6   /* name_len u16, value_len i32 */
#define MAX_HEADERS 1000       /* validation.MAX_HEADERS */
#define MAX_HEADER_NAMES 64    /* larger header objects take the Python path (names are
                                  compared pairwise for repeats) */
#define MAX_HEADER_NAME 0xFFFF /* a header name's length is packed in 16 bits */
#define MAX_VALUE_DEPTH 500    /* deeper values take the Python path: the C recursion stays
                                  short, and well within where msgspec gives up (about 1000
                                  levels less the Python stack in use) */
#ifdef __SANITIZE_ADDRESS__
#define ARENA_BLOCK 0 /* each piece its own allocation, so that ASan sees past its end */
#else
#define ARENA_BLOCK 65536
#endif

/* ------------------------------------------------------------------ scanning -- */

/* Bytes that do not sit in the body as they are stored (decoded strings,
 * values without their whitespace) are written here; blocks never move. */
typedef struct Block {
    struct Block *next;
    Py_ssize_t used, cap;
    unsigned char data[];
} Block;

typedef struct {
    const unsigned char *p;
    const unsigned char *end;
    Py_ssize_t items;
    Py_ssize_t max_items;
    Py_ssize_t max_string;
    int spaced; /* whitespace was skipped inside the value being scanned */
    int nomem;  /* an allocation failed: the scan stops with MemoryError */
    Block *arena;
} Scan;

/* A text to store: `len` bytes at `p`; len -1 is null (absent). */
typedef struct {
    const unsigned char *p;
    Py_ssize_t len;
} Text;

typedef struct {
    Text name;
    Text value;
    int bad; /* the value is not a string or null (a later repeat may replace it) */
} Header;

typedef struct {
    Header *items;
    Py_ssize_t n;
    Py_ssize_t cap;
} Headers;

typedef struct {
    Text key;
    Text value;
    long long timestamp;      /* -1: log-append time */
    long long partition;      /* -1: the partitioner picks */
    Py_ssize_t header_first;  /* this record's headers in the Headers array */
    Py_ssize_t header_count;
    Py_ssize_t packed;        /* bytes packed for the headers */
} Span;

/* Room for `n` bytes in the arena; arena_keep then keeps the ones written. */
static unsigned char *arena_room(Scan *s, Py_ssize_t n) {
    Block *b = s->arena;
    if (!b || ARENA_BLOCK == 0 || b->cap - b->used < n) {
        Py_ssize_t cap = n > ARENA_BLOCK ? n : ARENA_BLOCK;
        Block *fresh = PyMem_Malloc(sizeof(Block) + (size_t)cap);
        if (!fresh) {
            s->nomem = 1;
            return NULL;
        }
        fresh->next = b;
        fresh->used = 0;
        fresh->cap = cap;
        s->arena = b = fresh;
    }
    return b->data + b->used;
}

static inline void arena_keep(Scan *s, Py_ssize_t n) { s->arena->used += n; }

static void arena_free(Block *b) {
    while (b) {
        Block *next = b->next;
        PyMem_Free(b);
        b = next;
    }
}

static inline int is_ws(unsigned char c) { return c == ' ' || c == '\n' || c == '\r' || c == '\t'; }

/* Past any whitespace; whether there was some. */
static inline int skip_ws(Scan *s) {
    const unsigned char *start = s->p;
    while (s->p < s->end && is_ws(*s->p)) s->p++;
    return s->p != start;
}

static inline int count_item(Scan *s) { return ++s->items <= s->max_items; }

static inline int at(Scan *s, unsigned char c) { return s->p < s->end && *s->p == c; }

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

static inline int hex_digit(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* The four hex digits at p (room checked by the caller); -1 if they are not. */
static inline long hex4(const unsigned char *p) {
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p[i]);
        if (d < 0) return -1;
        v = v << 4 | d;
    }
    return v;
}

/* The bytes of the word `v` that are a quote, a backslash, a control character or not
 * ASCII, each marked by its top bit: the bytes scan_string must look at one by one
 * (the rest it skips 8 at a time). The lowest marked byte is always such a byte
 * (bit-twiddling's haszero and hasless, n <= 128: a borrow only runs past a byte
 * that is marked itself), so on a little-endian machine it is the first of them. */
#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL
static inline uint64_t specials(uint64_t v) {
    uint64_t quote = v ^ (ONES * '"'), backslash = v ^ (ONES * '\\');
    uint64_t zero_q = (quote - ONES) & ~quote, zero_b = (backslash - ONES) & ~backslash;
    uint64_t control = (v - ONES * 0x20) & ~v;
    return (zero_q | zero_b | control | v) & HIGHS;
}

/* A string at s->p (on its quote): `raw` is its text between the quotes, checked:
 * valid UTF-8, no raw control character, escapes as JSON defines them, surrogate
 * escapes in pairs. `escaped`: whether it holds an escape (its text then needs
 * decoding). */
static int scan_string(Scan *s, Text *raw, int *escaped) {
    const unsigned char *start = ++s->p;
    const unsigned char *p = start, *end = s->end;
    int any = 0;
    while (p < end) {
        while (end - p >= 8) { /* plain ASCII text, a word at a time */
            uint64_t v;
            memcpy(&v, p, 8);
            uint64_t marked = specials(v);
            if (marked) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                p += __builtin_ctzll(marked) >> 3; /* straight to the first of them */
#endif
                break;
            }
            p += 8;
        }
        if (p >= end) break;
        unsigned char c = *p;
        if (c == '"') {
            if (p - start > s->max_string) return -1;
            raw->p = start;
            raw->len = p - start;
            *escaped = any;
            s->p = p + 1;
            return 0;
        }
        if (c == '\\') {
            any = 1;
            if (end - p < 2) return -1;
            c = p[1];
            if (c == 'u') {
                if (end - p < 6) return -1;
                long u = hex4(p + 2);
                if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF)) return -1;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    if (end - p < 12 || p[6] != '\\' || p[7] != 'u') return -1;
                    long low = hex4(p + 8);
                    if (low < 0xDC00 || low > 0xDFFF) return -1;
                    p += 12;
                } else {
                    p += 6;
                }
            } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                       c == 'r' || c == 't') {
                p += 2;
            } else {
                return -1;
            }
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

static inline unsigned char *put_utf8(unsigned char *out, unsigned long u) {
    if (u < 0x80) {
        *out++ = (unsigned char)u;
    } else if (u < 0x800) {
        *out++ = (unsigned char)(0xC0 | (u >> 6));
        *out++ = (unsigned char)(0x80 | (u & 0x3F));
    } else if (u < 0x10000) {
        *out++ = (unsigned char)(0xE0 | (u >> 12));
        *out++ = (unsigned char)(0x80 | ((u >> 6) & 0x3F));
        *out++ = (unsigned char)(0x80 | (u & 0x3F));
    } else {
        *out++ = (unsigned char)(0xF0 | (u >> 18));
        *out++ = (unsigned char)(0x80 | ((u >> 12) & 0x3F));
        *out++ = (unsigned char)(0x80 | ((u >> 6) & 0x3F));
        *out++ = (unsigned char)(0x80 | (u & 0x3F));
    }
    return out;
}

/* The decoded UTF-8 of `raw`, a string's text checked by scan_string, into `out`
 * (room for raw.len bytes: no escape decodes longer than itself); its length. */
static Py_ssize_t decode_into(Text raw, unsigned char *out) {
    const unsigned char *p = raw.p, *end = raw.p + raw.len;
    unsigned char *start = out;
    while (p < end) {
        unsigned char c = *p;
        if (c != '\\') {
            *out++ = c;
            p++;
            continue;
        }
        c = p[1];
        p += 2;
        switch (c) {
            case 'b': *out++ = '\b'; break;
            case 'f': *out++ = '\f'; break;
            case 'n': *out++ = '\n'; break;
            case 'r': *out++ = '\r'; break;
            case 't': *out++ = '\t'; break;
            case 'u': {
                unsigned long u = (unsigned long)hex4(p);
                p += 4;
                if (u >= 0xD800 && u <= 0xDBFF) {
                    unsigned long low = (unsigned long)hex4(p + 2);
                    p += 6;
                    u = 0x10000 + ((u - 0xD800) << 10) + (low - 0xDC00);
                }
                out = put_utf8(out, u);
                break;
            }
            default: *out++ = c; /* " \ / */
        }
    }
    return out - start;
}

/* A string's stored text: its raw bytes, or, when it holds escapes, their
 * decoding in the arena. */
static int string_text(Scan *s, Text raw, int escaped, Text *out) {
    if (!escaped) {
        *out = raw;
        return 0;
    }
    unsigned char *room = arena_room(s, raw.len);
    if (!room) return -1;
    out->p = room;
    out->len = decode_into(raw, room);
    arena_keep(s, out->len);
    return 0;
}

/* A string at s->p, scanned and decoded. */
static int scan_text(Scan *s, Text *out) {
    Text raw;
    int escaped;
    if (scan_string(s, &raw, &escaped) < 0) return -1;
    return string_text(s, raw, escaped, out);
}

/* A number as JSON writes one: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static int scan_number(Scan *s) {
    const unsigned char *p = s->p, *end = s->end;
    if (p < end && *p == '-') p++;
    if (p >= end) return -1;
    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') p++;
    } else {
        return -1;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') return -1;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9') return -1;
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    s->p = p;
    return 0;
}

static int scan_literal(Scan *s, const char *word, Py_ssize_t n) {
    if (s->end - s->p < n || memcmp(s->p, word, n) != 0) return -1;
    s->p += n;
    return 0;
}

/* Past a member or element and the whitespace around it: 1 at the closing bracket,
 * 0 after a comma (either consumed), -1 at anything else. */
static int after_item(Scan *s, unsigned char close) {
    s->spaced |= skip_ws(s);
    if (s->p >= s->end) return -1;
    if (*s->p == close) {
        s->p++;
        return 1;
    }
    if (*s->p != ',' || !count_item(s)) return -1;
    s->p++;
    s->spaced |= skip_ws(s);
    return 0;
}

/* Past an opening bracket (counted; `depth` left for it) and whitespace: 1 if the
 * container is empty (closed too), 0 if it has content, -1 if it may not open here. */
static int open_container(Scan *s, unsigned char close, int depth) {
    if (depth < 1 || !count_item(s)) return -1;
    s->p++;
    s->spaced |= skip_ws(s);
    if (at(s, close)) {
        s->p++;
        return 1;
    }
    return 0;
}

/* Past a member's name and its colon, with the whitespace around the colon. */
static int member_name(Scan *s, Text *raw, int *escaped) {
    if (!at(s, '"') || scan_string(s, raw, escaped) < 0) return -1;
    s->spaced |= skip_ws(s);
    if (!at(s, ':')) return -1;
    s->p++;
    s->spaced |= skip_ws(s);
    return 0;
}

/* Any JSON value nesting at most `depth` containers; s->spaced is set when it
 * holds whitespace. */
static int scan_value(Scan *s, int depth) {
    if (s->p >= s->end) return -1;
    unsigned char c = *s->p;
    if (c == '"') {
        Text raw;
        int escaped;
        return scan_string(s, &raw, &escaped);
    }
    if (c == '{') {
        int opened = open_container(s, '}', depth);
        if (opened != 0) return opened < 0 ? -1 : 0;
        for (;;) {
            Text raw;
            int escaped;
            if (member_name(s, &raw, &escaped) < 0 || scan_value(s, depth - 1) < 0) return -1;
            int next = after_item(s, '}');
            if (next != 0) return next < 0 ? -1 : 0;
        }
    }
    if (c == '[') {
        int opened = open_container(s, ']', depth);
        if (opened != 0) return opened < 0 ? -1 : 0;
        for (;;) {
            if (scan_value(s, depth - 1) < 0) return -1;
            int next = after_item(s, ']');
            if (next != 0) return next < 0 ? -1 : 0;
        }
    }
    if (c == 't') return scan_literal(s, "true", 4);
    if (c == 'f') return scan_literal(s, "false", 5);
    if (c == 'n') return scan_literal(s, "null", 4);
    return scan_number(s);
}

/* `src`, a value checked by scan_value, without its whitespace, into `out`. */
static Py_ssize_t compact_into(const unsigned char *src, Py_ssize_t len, unsigned char *out) {
    unsigned char *start = out;
    int in_string = 0;
    for (Py_ssize_t i = 0; i < len; i++) {
        unsigned char c = src[i];
        if (in_string) {
            *out++ = c;
            if (c == '\\') {
                *out++ = src[++i];
            } else if (c == '"') {
                in_string = 0;
            }
        } else if (!is_ws(c)) {
            *out++ = c;
            if (c == '"') in_string = 1;
        }
    }
    return out - start;
}

/* A value's check against its schema, and the record headers a checked scan declines
 * (the schema checks section below). */
typedef struct SchemaNode SchemaNode;
static int check_value(Scan *s, const SchemaNode *n, int depth);
static const SchemaNode *schema_root(PyObject *compiled);
static int schema_declines(const SchemaNode *schema, const Span *r, const Header *headers);

/* A json value's stored text: as sent, or without its whitespace (in the arena);
 * checked against `schema` unless that is NULL. */
static int scan_json(Scan *s, int depth, const SchemaNode *schema, Text *out) {
    const unsigned char *start = s->p;
    s->spaced = 0;
    if ((schema ? check_value(s, schema, depth) : scan_value(s, depth)) < 0) return -1;
    out->p = start;
    out->len = s->p - start;
    if (!s->spaced) return 0;
    unsigned char *room = arena_room(s, out->len);
    if (!room) return -1;
    out->len = compact_into(start, out->len, room);
    out->p = room;
    arena_keep(s, out->len);
    return 0;
}

static inline int base64_digit(unsigned char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
}

/* Strict base64 (`base64.b64decode(text, validate=True)`): groups of four, `=`
 * only as the last one or two characters. Returns 1 when the text is not that. */
static int base64_text(Scan *s, Text text, Text *out) {
    Py_ssize_t n = text.len;
    const unsigned char *in = text.p;
    if (n % 4) return 1;
    unsigned char *room = arena_room(s, n / 4 * 3);
    if (!room) return -1;
    unsigned char *o = room;
    for (Py_ssize_t i = 0; i < n; i += 4) {
        int last = i + 4 == n;
        int a = base64_digit(in[i]), b = base64_digit(in[i + 1]);
        int c = base64_digit(in[i + 2]), d = base64_digit(in[i + 3]);
        if (a < 0 || b < 0) return 1;
        if (c < 0) {
            if (!last || in[i + 2] != '=' || in[i + 3] != '=') return 1;
            *o++ = (unsigned char)(a << 2 | b >> 4);
        } else if (d < 0) {
            if (!last || in[i + 3] != '=') return 1;
            *o++ = (unsigned char)(a << 2 | b >> 4);
            *o++ = (unsigned char)((b & 15) << 4 | c >> 2);
        } else {
            *o++ = (unsigned char)(a << 2 | b >> 4);
            *o++ = (unsigned char)((b & 15) << 4 | c >> 2);
            *o++ = (unsigned char)((c & 3) << 6 | d);
        }
    }
    out->p = room;
    out->len = o - room;
    arena_keep(s, out->len);
    return 0;
}

static int is_null(Scan *s) { return s->end - s->p >= 4 && memcmp(s->p, "null", 4) == 0; }

static inline int same_text(Text a, Text b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, (size_t)a.len) == 0);
}

/* A member name as its decoded text (a short stack buffer is enough to compare it
 * with the names this file knows). 0, or -1 when it cannot be one of them. */
static int known_name(Text raw, int escaped, unsigned char *buf, Py_ssize_t room, Text *out) {
    if (!escaped) {
        *out = raw;
        return 0;
    }
    if (raw.len > room) return -1;
    out->p = buf;
    out->len = decode_into(raw, buf);
    return 0;
}

enum { F_KEY = 1, F_VALUE = 2, F_PARTITION = 4, F_TIMESTAMP = 8, F_HEADERS = 16 };

static int field_of(Text name) {
    if (name.len == 3 && memcmp(name.p, "key", 3) == 0) return F_KEY;
    if (name.len == 5 && memcmp(name.p, "value", 5) == 0) return F_VALUE;
    if (name.len == 7 && memcmp(name.p, "headers", 7) == 0) return F_HEADERS;
    if (name.len == 9 && memcmp(name.p, "partition", 9) == 0) return F_PARTITION;
    if (name.len == 9 && memcmp(name.p, "timestamp", 9) == 0) return F_TIMESTAMP;
    return 0;
}

/* A slot for one more header of the record; NULL when out of memory. */
static Header *new_header(Scan *s, Headers *h) {
    if (h->n == h->cap) {
        Py_ssize_t cap = h->cap ? h->cap * 2 : 64;
        Header *grown = PyMem_Realloc(h->items, (size_t)cap * sizeof(Header));
        if (!grown) {
            s->nomem = 1;
            return NULL;
        }
        h->items = grown;
        h->cap = cap;
    }
    return &h->items[h->n++];
}

/* A header's value at s->p: a string (decoded), null (stored empty), or any other
 * JSON (skipped; `bad`). */
static int header_value(Scan *s, Header *header, int depth) {
    header->bad = 0;
    if (is_null(s)) {
        s->p += 4;
        header->value.p = NULL;
        header->value.len = 0;
        return 0;
    }
    if (at(s, '"')) return scan_text(s, &header->value);
    header->bad = 1;
    return scan_value(s, depth);
}

/* `{name: value, ...}` (at `depth`): a repeated name keeps its first place and takes
 * the last value. 0, 1 when the reference would refuse them, -1 to decline. */
static int header_object(Scan *s, Headers *h, Span *r, int depth) {
    int opened = open_container(s, '}', depth);
    if (opened != 0) return opened < 0 ? -1 : 0;
    for (;;) {
        Text raw, name;
        int escaped;
        if (member_name(s, &raw, &escaped) < 0 || string_text(s, raw, escaped, &name) < 0)
            return -1;
        Header *header = NULL;
        for (Py_ssize_t i = r->header_first; i < h->n; i++) {
            if (same_text(h->items[i].name, name)) {
                header = &h->items[i];
                break;
            }
        }
        if (!header) {
            if (h->n - r->header_first == MAX_HEADER_NAMES) return -1;
            if (!(header = new_header(s, h))) return -1;
            header->name = name;
        }
        if (header_value(s, header, depth - 1) < 0) return -1;
        int next = after_item(s, '}');
        if (next < 0) return -1;
        if (next > 0) break;
    }
    int bad = 0;
    for (Py_ssize_t i = r->header_first; i < h->n; i++) {
        if (h->items[i].bad || h->items[i].name.len == 0) bad = 1;
    }
    return bad;
}

/* `[[name, value], ...]` (at `depth`): names non-empty strings, values strings or
 * null. 0, 1 when the reference would refuse them, -1 to decline. */
static int header_pairs(Scan *s, Headers *h, int depth) {
    int bad = 0;
    int opened = open_container(s, ']', depth);
    if (opened != 0) return opened < 0 ? -1 : 0;
    for (;;) {
        if (!at(s, '[')) {
            bad = 1; /* not a pair */
            if (scan_value(s, depth - 1) < 0) return -1;
        } else {
            Header *header = new_header(s, h);
            if (!header) return -1;
            header->name.len = -1;
            header->bad = 1;
            int items = 0, next = open_container(s, ']', depth - 1);
            if (next < 0) return -1;
            while (next == 0) {
                if (items == 0 && at(s, '"')) {
                    if (scan_text(s, &header->name) < 0) return -1;
                } else if (items == 1) {
                    if (header_value(s, header, depth - 2) < 0) return -1;
                } else if (scan_value(s, depth - 2) < 0) {
                    return -1;
                }
                items++;
                if ((next = after_item(s, ']')) < 0) return -1;
            }
            if (items != 2 || header->bad || header->name.len <= 0) bad = 1;
        }
        int next = after_item(s, ']');
        if (next < 0) return -1;
        if (next > 0) break;
    }
    return bad;
}

/* The headers field at s->p (not null). 0, 1 when the reference would refuse them,
 * -1 to decline. */
static int scan_headers(Scan *s, Headers *h, Span *r, int depth) {
    int rc;
    h->n = r->header_first; /* a repeated field replaces the earlier headers */
    if (at(s, '{'))
        rc = header_object(s, h, r, depth);
    else if (at(s, '['))
        rc = header_pairs(s, h, depth);
    else
        return scan_value(s, depth) < 0 ? -1 : 1;
    if (rc != 0) return rc;
    r->header_count = h->n - r->header_first;
    if (r->header_count > MAX_HEADERS) return 1;
    r->packed = 0;
    for (Py_ssize_t i = r->header_first; i < h->n; i++) {
        if (h->items[i].name.len > MAX_HEADER_NAME) return 1; /* cannot be packed */
        r->packed += PACKED_HEADER_HEAD + h->items[i].name.len + h->items[i].value.len;
    }
    return 0;
}

/* An integer field (partition, timestamp) at s->p: 0 and *out when it is an
 * integer in 0..INT64_MAX (`-0` is 0), 1 for any other JSON, -1 to decline. */
static int scan_count(Scan *s, int depth, long long *out) {
    const unsigned char *p = s->p;
    if (scan_value(s, depth) < 0) return -1;
    int negative = p < s->p && *p == '-';
    p += negative;
    if (p == s->p || *p < '0' || *p > '9') return 1; /* not a number */
    unsigned long long value = 0;
    for (int digits = 0; p < s->p; p++) {
        if (*p < '0' || *p > '9' || ++digits > 19) return 1; /* a fraction, or too large */
        value = value * 10 + (unsigned long long)(*p - '0');
    }
    if (value > (unsigned long long)INT64_MAX || (negative && value)) return 1;
    *out = (long long)value;
    return 0;
}

/* One record object. Whitespace is allowed anywhere JSON allows it; a field given
 * twice counts by its last value. -1 to decline. */
static int scan_record(Scan *s, Span *r, Headers *h, int fmt, long long partitions,
                       int value_depth, const SchemaNode *schema) {
    int bad = 0; /* fields whose last value the reference would refuse */
    r->key.p = r->value.p = NULL;
    r->key.len = r->value.len = -1;
    r->timestamp = r->partition = -1;
    r->header_first = h->n;
    r->header_count = r->packed = 0;
    if (!at(s, '{')) return -1;
    int opened = open_container(s, '}', value_depth + 1);
    if (opened != 0) return opened < 0 ? -1 : 0;
    for (;;) {
        Text raw, name;
        int escaped, rc = 0;
        unsigned char buf[64];
        if (member_name(s, &raw, &escaped) < 0 || known_name(raw, escaped, buf, 64, &name) < 0)
            return -1;
        int field = field_of(name);
        if (!field) return -1; /* an unknown field */
        if (is_null(s)) {
            s->p += 4;
            if (field == F_KEY) r->key.len = -1;
            if (field == F_VALUE) r->value.len = -1;
            if (field == F_PARTITION) r->partition = -1;
            if (field == F_TIMESTAMP) r->timestamp = -1;
            if (field == F_HEADERS) h->n = r->header_first, r->header_count = r->packed = 0;
        } else if (field == F_KEY) {
            if (at(s, '"'))
                rc = scan_text(s, &r->key);
            else
                rc = scan_value(s, value_depth) < 0 ? -1 : 1;
        } else if (field == F_VALUE) {
            if (fmt == FMT_JSON) {
                rc = scan_json(s, value_depth, schema, &r->value);
            } else if (!at(s, '"')) {
                rc = scan_value(s, value_depth) < 0 ? -1 : 1;
            } else if ((rc = scan_text(s, &r->value)) == 0 && fmt == FMT_BINARY) {
                rc = base64_text(s, r->value, &r->value);
            }
        } else if (field == F_HEADERS) {
            rc = scan_headers(s, h, r, value_depth);
        } else {
            long long n = 0;
            rc = scan_count(s, value_depth, &n);
            if (rc == 0 && field == F_PARTITION && n >= partitions) rc = 1;
            if (field == F_PARTITION) r->partition = n;
            if (field == F_TIMESTAMP) r->timestamp = n;
        }
        if (rc < 0) return -1;
        bad = rc ? bad | field : bad & ~field;
        int next = after_item(s, '}');
        if (next < 0) return -1;
        if (next > 0) return bad ? -1 : 0;
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

static inline unsigned char *put_text(unsigned char *out, Text t) {
    if (t.len > 0) {
        memcpy(out, t.p, (size_t)t.len);
        out += t.len;
    }
    return out;
}

static inline Py_ssize_t text_size(Text t) { return t.len > 0 ? t.len : 0; }

/* One partition's records in a request, while they are packed. */
typedef struct {
    long long partition;
    Py_ssize_t size, count;
    long long first, max_ts;
    PyObject *data;     /* its bytes, once sized */
    unsigned char *out; /* where its next record goes */
} Bucket;

static inline Py_ssize_t packed_size(const Span *r) {
    return PACKED_RECORD_HEAD + text_size(r->key) + text_size(r->value) + r->packed;
}

/* One record in storage.records.pack_records' layout at `out`; the end. */
static unsigned char *put_record(unsigned char *out, const Span *r, const Header *headers,
                                 long long ts) {
    out = put_be(out, (uint64_t)ts, 8);
    out = put_be(out, (uint32_t)(int32_t)r->key.len, 4);
    out = put_be(out, (uint32_t)(int32_t)r->value.len, 4);
    out = put_be(out, (uint64_t)r->header_count, 2);
    out = put_text(out, r->key);
    out = put_text(out, r->value);
    for (Py_ssize_t j = 0; j < r->header_count; j++) {
        const Header *header = &headers[r->header_first + j];
        out = put_be(out, (uint64_t)header->name.len, 2);
        out = put_text(out, header->name);
        out = put_be(out, (uint64_t)header->value.len, 4);
        out = put_text(out, header->value);
    }
    return out;
}

/* A storage.records.PackedRecords (a NamedTuple: a tuple subtype with no fields of its
 * own), made as tuple.__new__ makes one, without a call into Python. Steals `data`. */
static PyObject *packed_records(PyTypeObject *type, PyObject *data, const Bucket *b) {
    PyObject *count = PyLong_FromSsize_t(b->count);
    PyObject *first = PyLong_FromLongLong(b->first);
    PyObject *max_ts = PyLong_FromLongLong(b->max_ts);
    PyObject *packed = count && first && max_ts ? type->tp_alloc(type, 4) : NULL;
    if (!packed) {
        Py_DECREF(data);
        Py_XDECREF(count);
        Py_XDECREF(first);
        Py_XDECREF(max_ts);
        return NULL;
    }
    PyTuple_SET_ITEM(packed, 0, data);
    PyTuple_SET_ITEM(packed, 1, count);
    PyTuple_SET_ITEM(packed, 2, first);
    PyTuple_SET_ITEM(packed, 3, max_ts);
    return packed;
}

/* Every bucket's records packed in one pass over them (record i goes to bucket
 * `slot[i]`; NULL: all to bucket 0), as the list of (partition, PackedRecords) in
 * bucket order. */
static PyObject *pack_buckets(const Span *spans, Py_ssize_t n, const Header *headers,
                              const int32_t *slot, Bucket *buckets, Py_ssize_t nb,
                              long long now_ms, PyTypeObject *packed_type) {
    Py_ssize_t i, k;
    for (i = 0; i < n; i++) {
        const Span *r = &spans[i];
        Bucket *b = &buckets[slot ? slot[i] : 0];
        long long ts = r->timestamp < 0 ? now_ms : r->timestamp;
        if (b->count == 0) b->first = b->max_ts = ts;
        else if (ts > b->max_ts) b->max_ts = ts;
        b->count++;
        b->size += packed_size(r);
    }
    for (k = 0; k < nb; k++) {
        buckets[k].data = PyBytes_FromStringAndSize(NULL, buckets[k].size);
        if (!buckets[k].data) goto fail;
        buckets[k].out = (unsigned char *)PyBytes_AS_STRING(buckets[k].data);
    }
    for (i = 0; i < n; i++) {
        const Span *r = &spans[i];
        Bucket *b = &buckets[slot ? slot[i] : 0];
        b->out = put_record(b->out, r, headers, r->timestamp < 0 ? now_ms : r->timestamp);
    }
    PyObject *groups = PyList_New(nb);
    if (!groups) goto fail;
    for (k = 0; k < nb; k++) {
        PyObject *data = buckets[k].data;
        buckets[k].data = NULL;
        PyObject *packed = packed_records(packed_type, data, &buckets[k]);
        PyObject *partition = packed ? PyLong_FromLongLong(buckets[k].partition) : NULL;
        PyObject *group = partition ? PyTuple_New(2) : NULL;
        if (!group) {
            Py_XDECREF(packed);
            Py_XDECREF(partition);
            Py_DECREF(groups);
            goto fail;
        }
        PyTuple_SET_ITEM(group, 0, partition);
        PyTuple_SET_ITEM(group, 1, packed);
        PyList_SET_ITEM(groups, k, group);
    }
    return groups;
fail:
    for (k = 0; k < nb; k++) Py_CLEAR(buckets[k].data);
    return NULL;
}

static PyObject *scan_produce(PyObject *self, PyObject *args, PyObject *kwargs) {
    static char *names[] = {"body",       "fmt",        "partitions", "max_records",
                            "max_record_bytes", "max_depth",  "max_items",  "max_string_bytes",
                            "now_ms",     "round_robin", "packed_type", "schema", NULL};
    Py_buffer body;
    int fmt, max_depth;
    long long partitions, max_record_bytes, now_ms, round_robin;
    Py_ssize_t max_records, max_items, max_string;
    PyTypeObject *packed_type;
    PyObject *schema_object = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "y*iLnLinnLLO!|$O", names, &body, &fmt,
                                     &partitions, &max_records, &max_record_bytes, &max_depth,
                                     &max_items, &max_string, &now_ms, &round_robin, &PyType_Type,
                                     &packed_type, &schema_object))
        return NULL;
    /* What tuple.__new__ can fill in (a NamedTuple is): no instance fields of its own. */
    if (packed_type == &PyTuple_Type || !PyType_IsSubtype(packed_type, &PyTuple_Type) ||
        packed_type->tp_basicsize != PyTuple_Type.tp_basicsize ||
        packed_type->tp_itemsize != PyTuple_Type.tp_itemsize || packed_type->tp_dictoffset) {
        PyBuffer_Release(&body);
        PyErr_SetString(PyExc_TypeError, "packed_type must be a NamedTuple of four fields");
        return NULL;
    }
    const SchemaNode *schema = NULL;
    if (schema_object != Py_None && !(schema = schema_root(schema_object))) {
        PyBuffer_Release(&body);
        return NULL;
    }
    PyObject *result = NULL;
    Span *spans = NULL;
    Headers headers = {NULL, 0, 0};
    int32_t *slot = NULL, *slot_of = NULL;
    Bucket *buckets = NULL;
    Py_ssize_t n = 0, cap = 0, i;
    Scan s = {(const unsigned char *)body.buf, (const unsigned char *)body.buf + body.len, 0,
              max_items, max_string, 0, 0, NULL};
    Text raw, name;
    int escaped;
    unsigned char buf[64];
    /* A value sits in a record (level 3 of the document: body, list, record). */
    int value_depth = max_depth - 3;
    if (value_depth > MAX_VALUE_DEPTH) value_depth = MAX_VALUE_DEPTH;
    if (value_depth < 0 || partitions < 1 || partitions > (1 << 20) || max_records < 1 ||
        fmt < FMT_JSON || fmt > FMT_BINARY || body.len > INT32_MAX || (schema && fmt != FMT_JSON))
        goto fallback;

    skip_ws(&s);
    if (!at(&s, '{') || open_container(&s, '}', 1) != 0) goto fallback;
    if (member_name(&s, &raw, &escaped) < 0 || known_name(raw, escaped, buf, 64, &name) < 0)
        goto fallback;
    if (name.len != 7 || memcmp(name.p, "records", 7) != 0) goto fallback;
    if (!at(&s, '[') || open_container(&s, ']', 1) != 0) goto fallback;
    for (;;) {
        if (n == max_records) goto fallback;
        if (n == cap) {
            cap = cap ? cap * 2 : 128;
            Span *grown = PyMem_Realloc(spans, (size_t)cap * sizeof(Span));
            if (!grown) {
                PyErr_NoMemory();
                goto done;
            }
            spans = grown;
        }
        if (scan_record(&s, &spans[n], &headers, fmt, partitions, value_depth, schema) < 0)
            goto fallback;
        Span *r = &spans[n++];
        if (schema && schema_declines(schema, r, headers.items)) goto fallback;
        if (text_size(r->key) + text_size(r->value) + r->packed -
                PACKED_HEADER_HEAD * r->header_count >
            max_record_bytes)
            goto fallback;
        int next = after_item(&s, ']');
        if (next < 0) goto fallback;
        if (next > 0) break;
    }
    if (after_item(&s, '}') != 1) goto fallback; /* `records` is the only member */
    skip_ws(&s);
    if (s.p != s.end) goto fallback;

    /* Each record's partition, and its partition's bucket (in order of first
     * appearance), in one pass; then every bucket packed in one more. */
    long long drawn = 0;
    Py_ssize_t nb = 1;
    PyObject *order = Py_None;
    /* A bucket for each partition the records can reach, at most one a record. */
    buckets = PyMem_Calloc((size_t)(partitions > 1 ? (n < partitions ? n : partitions) : 1),
                           sizeof(Bucket));
    if (!buckets) {
        PyErr_NoMemory();
        goto done;
    }
    if (partitions > 1) {
        slot = PyMem_Malloc((size_t)n * sizeof(int32_t));
        slot_of = PyMem_Malloc((size_t)partitions * sizeof(int32_t));
        if (!slot || !slot_of) {
            PyErr_NoMemory();
            goto done;
        }
        memset(slot_of, 0xff, (size_t)partitions * sizeof(int32_t)); /* -1: no bucket yet */
        nb = 0;
        for (i = 0; i < n; i++) {
            Span *r = &spans[i];
            long long p;
            if (r->partition >= 0)
                p = r->partition;
            else if (r->key.len >= 0)
                p = (long long)((murmur2(r->key.p, r->key.len) & 0x7fffffff) % partitions);
            else
                p = (long long)(((unsigned long long)round_robin + drawn++) % partitions);
            if (slot_of[p] < 0) {
                slot_of[p] = (int32_t)nb;
                buckets[nb++].partition = p;
            }
            slot[i] = slot_of[p];
        }
        if (nb > 1) {
            order = PyList_New(n);
            if (!order) goto done;
            for (i = 0; i < n; i++) {
                PyObject *p = PyLong_FromLongLong(buckets[slot[i]].partition);
                if (!p) {
                    Py_DECREF(order);
                    goto done;
                }
                PyList_SET_ITEM(order, i, p);
            }
        } else {
            Py_INCREF(order);
        }
    } else {
        Py_INCREF(order);
    }
    PyObject *groups = pack_buckets(spans, n, headers.items, nb > 1 ? slot : NULL, buckets, nb,
                                    now_ms, packed_type);
    if (!groups) {
        Py_DECREF(order);
        goto done;
    }
    result = Py_BuildValue("(NNL)", groups, order, drawn);
    goto done;
fallback:
    if (s.nomem) {
        PyErr_NoMemory();
        goto done;
    }
    result = Py_None;
    Py_INCREF(result);
done:
    PyMem_Free(spans);
    PyMem_Free(headers.items);
    arena_free(s.arena);
    PyMem_Free(slot);
    PyMem_Free(slot_of);
    PyMem_Free(buckets);
    PyBuffer_Release(&body);
    return result;
}

/* ------------------------------------------------------------- schema checks -- */
/*
 * A compiled form of a topic's value schema that the scanner checks each value
 * against while it scans it, with no Python object per JSON value. The Python
 * side (gateway/schemas/fast_types.py) translates the JSON Schema into a tree of
 * node tuples (`fast_types.Node`, the field order below); compile_schema turns it
 * into SchemaNode structs once. A check only accepts: a value it refuses, or one
 * it is unsure of (an integer past 18 digits, a number past what a double holds
 * exactly), makes the scan decline, and the reference (jsonschema-rs) decides.
 * So it must never accept a value the reference refuses (the differential tests
 * in tests/gateway/records/test_speedups.py), and may refuse more.
 */

#define K_NULL 1
#define K_BOOL 2
#define K_INT 4
#define K_NUM 8
#define K_STR 16
#define K_ARR 32
#define K_OBJ 64
#define K_ANY 128
#define NODE_FIELDS 17
#define AUTOMATON_SYMBOLS 129 /* ASCII, then one for any character past it */
#define A_MATCHED 1             /* automata.py's flags */
#define A_AT_END 2
#define A_DEAD 4
#define MAX_SCHEMA_NODES 1024
#define MAX_REQUIRED 64 /* required members of one object: a bit each */
#define SCHEMA_CAPSULE "tidegate.schema"
#define SCHEMA_ID_HEADER "tidegate-schema-id" /* gateway.http.value_schemas */

typedef struct {
    Text name;        /* UTF-8, in a bytes object the description holds */
    SchemaNode *node;
    int required_bit; /* -1: optional */
} Property;

struct SchemaNode {
    int kinds;
    long long int_min, int_max, int_step; /* K_INT; step 0: none */
    long long *ints;                      /* the integers an enum allows */
    Py_ssize_t int_count;                 /* -1: no enum */
    int has_ge, has_gt, has_le, has_lt;   /* K_NUM */
    double ge, gt, le, lt;
    Py_ssize_t str_min, str_max; /* code points; str_max -1: none */
    PyObject *pattern;           /* a callable, `re.Pattern.search`: not None on a match */
    const unsigned char *automaton_flags; /* or the pattern's DFA (gateway/schemas/automata.py) */
    const uint16_t *automaton;            /* AUTOMATON_SYMBOLS transitions a state */
    Text *strs;                  /* the strings an enum allows */
    Py_ssize_t str_count;        /* -1: no enum */
    SchemaNode *items;           /* K_ARR */
    Py_ssize_t items_min, items_max;
    Property *props; /* K_OBJ */
    Py_ssize_t prop_count;
    int16_t *slots; /* the properties by name: an open-addressed table, -1 empty */
    size_t slot_mask;
    uint64_t required;
    int closed;        /* additionalProperties false */
    SchemaNode *extra; /* the map form: every member's value (no properties) */
};

typedef struct {
    PyObject *description; /* held: names, enum strings and patterns point into it */
    Py_ssize_t count, cap;
    PyObject **keys; /* the tuple each node was compiled from (borrowed) */
    SchemaNode **nodes;
} Compiled;

static void compiled_free(Compiled *c) {
    for (Py_ssize_t i = 0; i < c->count; i++) {
        SchemaNode *n = c->nodes[i];
        PyMem_Free(n->ints);
        PyMem_Free(n->strs);
        PyMem_Free(n->props);
        PyMem_Free(n->slots);
        PyMem_Free(n);
    }
    PyMem_Free(c->keys);
    PyMem_Free(c->nodes);
    Py_XDECREF(c->description);
    PyMem_Free(c);
}

static void schema_capsule_free(PyObject *capsule) {
    Compiled *c = PyCapsule_GetPointer(capsule, SCHEMA_CAPSULE);
    if (c) compiled_free(c);
}

static int node_error(const char *what) {
    PyErr_Format(PyExc_ValueError, "a schema node's %s", what);
    return -1;
}

static int long_item(PyObject *t, Py_ssize_t i, long long *out) {
    *out = PyLong_AsLongLong(PyTuple_GET_ITEM(t, i));
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

static int text_of(PyObject *o, Text *out) {
    if (!PyBytes_Check(o)) return node_error("name or string (not bytes)");
    out->p = (const unsigned char *)PyBytes_AS_STRING(o);
    out->len = PyBytes_GET_SIZE(o);
    return 0;
}

static int bound_of(PyObject *bounds, Py_ssize_t i, int *has, double *out) {
    PyObject *b = PyTuple_GET_ITEM(bounds, i);
    *has = b != Py_None;
    if (!*has) return 0;
    *out = PyFloat_AsDouble(b);
    return (*out == -1.0 && PyErr_Occurred()) ? -1 : 0;
}

static SchemaNode *compile_node(Compiled *c, PyObject *t);

/* A member name's hash, for the table of an object's properties: its length and its
 * first and last bytes, which tell most names of one object apart at no cost per byte
 * (the rest share a slot's chain). */
static inline size_t name_hash(Text name) {
    if (name.len == 0) return 0;
    return (size_t)name.len * 0x9E3779B1u ^ (size_t)name.p[0] * 31 ^ (size_t)name.p[name.len - 1];
}

/* Whether two names are the same bytes, compared in line a word at a time (they are
 * short). */
static inline int same_name(Text a, Text b) {
    if (a.len != b.len) return 0;
    Py_ssize_t i = 0;
    for (; i + 8 <= a.len; i += 8) {
        uint64_t x, y;
        memcpy(&x, a.p + i, 8);
        memcpy(&y, b.p + i, 8);
        if (x != y) return 0;
    }
    if (i + 4 <= a.len) {
        uint32_t x, y;
        memcpy(&x, a.p + i, 4);
        memcpy(&y, b.p + i, 4);
        if (x != y) return 0;
        i += 4;
    }
    for (; i < a.len; i++)
        if (a.p[i] != b.p[i]) return 0;
    return 1;
}

/* The table of `n`'s properties by name: at least twice their count, a power of two. */
static int property_slots(SchemaNode *n) {
    size_t size = 4;
    while (size < 2 * (size_t)n->prop_count) size *= 2;
    if (n->prop_count > 0x7FFF) return node_error("properties (too many)");
    n->slots = PyMem_Malloc(size * sizeof(int16_t));
    if (!n->slots) {
        PyErr_NoMemory();
        return -1;
    }
    memset(n->slots, 0xFF, size * sizeof(int16_t));
    n->slot_mask = size - 1;
    for (Py_ssize_t i = 0; i < n->prop_count; i++) {
        size_t slot = name_hash(n->props[i].name) & n->slot_mask;
        while (n->slots[slot] >= 0) {
            if (same_text(n->props[n->slots[slot]].name, n->props[i].name)) break; /* a repeat */
            slot = (slot + 1) & n->slot_mask;
        }
        if (n->slots[slot] < 0) n->slots[slot] = (int16_t)i;
    }
    return 0;
}

/* A pattern's automaton, (flags, transitions): every transition checked to stay
 * within the states, so that running it never reads outside the table. */
static int automaton_of(PyObject *o, SchemaNode *n) {
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 2) return node_error("automaton");
    PyObject *flags = PyTuple_GET_ITEM(o, 0), *table = PyTuple_GET_ITEM(o, 1);
    if (!PyBytes_Check(flags) || !PyBytes_Check(table)) return node_error("automaton");
    Py_ssize_t states = PyBytes_GET_SIZE(flags);
    if (states < 1 || states > 0xFFFF ||
        PyBytes_GET_SIZE(table) != states * AUTOMATON_SYMBOLS * (Py_ssize_t)sizeof(uint16_t))
        return node_error("automaton's size");
    const uint16_t *t = (const uint16_t *)PyBytes_AS_STRING(table);
    for (Py_ssize_t i = 0; i < states * AUTOMATON_SYMBOLS; i++)
        if (t[i] >= states) return node_error("automaton's transition");
    n->automaton_flags = (const unsigned char *)PyBytes_AS_STRING(flags);
    n->automaton = t;
    return 0;
}

/* A node that may be None (anything). */
static int child_of(Compiled *c, PyObject *o, SchemaNode **out) {
    *out = NULL;
    if (o == Py_None) return 0;
    *out = compile_node(c, o);
    return *out ? 0 : -1;
}

static SchemaNode *compile_node(Compiled *c, PyObject *t) {
    for (Py_ssize_t i = 0; i < c->count; i++) /* a definition used twice: one node */
        if (c->keys[i] == t) return c->nodes[i];
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != NODE_FIELDS) {
        node_error("shape (not a tuple of 17)");
        return NULL;
    }
    if (c->count == MAX_SCHEMA_NODES) {
        node_error("count (too many)");
        return NULL;
    }
    if (c->count == c->cap) {
        Py_ssize_t cap = c->cap ? c->cap * 2 : 16;
        PyObject **keys = PyMem_Realloc(c->keys, (size_t)cap * sizeof(PyObject *));
        if (!keys) {
            PyErr_NoMemory();
            return NULL;
        }
        c->keys = keys;
        SchemaNode **nodes = PyMem_Realloc(c->nodes, (size_t)cap * sizeof(SchemaNode *));
        if (!nodes) {
            PyErr_NoMemory();
            return NULL;
        }
        c->nodes = nodes;
        c->cap = cap;
    }
    SchemaNode *n = PyMem_Calloc(1, sizeof(SchemaNode));
    if (!n) {
        PyErr_NoMemory();
        return NULL;
    }
    c->keys[c->count] = t;
    c->nodes[c->count++] = n;
    long long v;
    PyObject *o;
    if (long_item(t, 0, &v) < 0) return NULL;
    n->kinds = (int)v;
    if (long_item(t, 1, &n->int_min) < 0 || long_item(t, 2, &n->int_max) < 0 ||
        long_item(t, 3, &n->int_step) < 0)
        return NULL;
    if (n->int_step < 0) {
        node_error("step");
        return NULL;
    }
    n->int_count = n->str_count = -1;
    if ((o = PyTuple_GET_ITEM(t, 4)) != Py_None) {
        if (!PyTuple_Check(o)) return node_error("integers"), NULL;
        n->int_count = PyTuple_GET_SIZE(o);
        n->ints = PyMem_Calloc((size_t)n->int_count + 1, sizeof(long long));
        if (!n->ints) return PyErr_NoMemory(), NULL;
        for (Py_ssize_t i = 0; i < n->int_count; i++)
            if (long_item(o, i, &n->ints[i]) < 0) return NULL;
    }
    o = PyTuple_GET_ITEM(t, 5);
    if (!PyTuple_Check(o) || PyTuple_GET_SIZE(o) != 4) return node_error("bounds"), NULL;
    if (bound_of(o, 0, &n->has_ge, &n->ge) < 0 || bound_of(o, 1, &n->has_gt, &n->gt) < 0 ||
        bound_of(o, 2, &n->has_le, &n->le) < 0 || bound_of(o, 3, &n->has_lt, &n->lt) < 0)
        return NULL;
    if (long_item(t, 6, &v) < 0) return NULL;
    n->str_min = (Py_ssize_t)v;
    if (long_item(t, 7, &v) < 0) return NULL;
    n->str_max = (Py_ssize_t)v;
    if ((o = PyTuple_GET_ITEM(t, 8)) != Py_None) {
        if (!PyCallable_Check(o)) return node_error("pattern"), NULL;
        n->pattern = o;
    }
    if ((o = PyTuple_GET_ITEM(t, 9)) != Py_None) {
        if (!PyTuple_Check(o)) return node_error("strings"), NULL;
        n->str_count = PyTuple_GET_SIZE(o);
        n->strs = PyMem_Calloc((size_t)n->str_count + 1, sizeof(Text));
        if (!n->strs) return PyErr_NoMemory(), NULL;
        for (Py_ssize_t i = 0; i < n->str_count; i++)
            if (text_of(PyTuple_GET_ITEM(o, i), &n->strs[i]) < 0) return NULL;
    }
    if (child_of(c, PyTuple_GET_ITEM(t, 10), &n->items) < 0) return NULL;
    if (long_item(t, 11, &v) < 0) return NULL;
    n->items_min = (Py_ssize_t)v;
    if (long_item(t, 12, &v) < 0) return NULL;
    n->items_max = (Py_ssize_t)v;
    if ((o = PyTuple_GET_ITEM(t, 13)) != Py_None) {
        if (!PyTuple_Check(o)) return node_error("properties"), NULL;
        n->prop_count = PyTuple_GET_SIZE(o);
        n->props = PyMem_Calloc((size_t)n->prop_count + 1, sizeof(Property));
        if (!n->props) return PyErr_NoMemory(), NULL;
        int bits = 0;
        for (Py_ssize_t i = 0; i < n->prop_count; i++) {
            PyObject *p = PyTuple_GET_ITEM(o, i);
            if (!PyTuple_Check(p) || PyTuple_GET_SIZE(p) != 3) return node_error("property"), NULL;
            if (text_of(PyTuple_GET_ITEM(p, 0), &n->props[i].name) < 0) return NULL;
            if (child_of(c, PyTuple_GET_ITEM(p, 1), &n->props[i].node) < 0) return NULL;
            int required = PyObject_IsTrue(PyTuple_GET_ITEM(p, 2));
            if (required < 0) return NULL;
            n->props[i].required_bit = -1;
            if (required) {
                if (bits == MAX_REQUIRED) return node_error("required (more than 64)"), NULL;
                n->props[i].required_bit = bits;
                n->required |= 1ULL << bits++;
            }
        }
        if (property_slots(n) < 0) return NULL;
    }
    int closed = PyObject_IsTrue(PyTuple_GET_ITEM(t, 14));
    if (closed < 0) return NULL;
    n->closed = closed;
    if (child_of(c, PyTuple_GET_ITEM(t, 15), &n->extra) < 0) return NULL;
    if ((o = PyTuple_GET_ITEM(t, 16)) != Py_None && automaton_of(o, n) < 0) return NULL;
    return n;
}

/* compile_schema(root): the description (a tree of node tuples) compiled, as an
 * object scan_produce takes as its `schema`. */
static PyObject *compile_schema(PyObject *self, PyObject *root) {
    Compiled *c = PyMem_Calloc(1, sizeof(Compiled));
    if (!c) return PyErr_NoMemory();
    c->description = Py_NewRef(root);
    if (!compile_node(c, root)) {
        compiled_free(c);
        return NULL;
    }
    PyObject *capsule = PyCapsule_New(c, SCHEMA_CAPSULE, schema_capsule_free);
    if (!capsule) compiled_free(c);
    return capsule;
}

/* Code points in UTF-8 text (checked valid): the bytes that do not continue one. */
static Py_ssize_t code_points(Text t) {
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < t.len; i++) count += (t.p[i] & 0xC0) != 0x80;
    return count;
}

/* Whether the automaton finds its pattern in `text` (UTF-8, checked valid): one
 * symbol per ASCII byte, one for each character past ASCII (its lead byte). */
static int automaton_matches(const SchemaNode *n, Text text) {
    unsigned state = 0;
    const unsigned char *flags = n->automaton_flags;
    for (Py_ssize_t i = 0; i < text.len; i++) {
        if (flags[state] & (A_MATCHED | A_DEAD)) break;
        unsigned char c = text.p[i];
        if ((c & 0xC0) == 0x80) continue; /* within a character */
        state = n->automaton[state * AUTOMATON_SYMBOLS + (c < 0x80 ? c : AUTOMATON_SYMBOLS - 1)];
    }
    return (flags[state] & (A_MATCHED | A_AT_END)) != 0;
}

static int check_string(Scan *s, const SchemaNode *n) {
    Text raw, text;
    int escaped;
    if (scan_string(s, &raw, &escaped) < 0 || string_text(s, raw, escaped, &text) < 0) return -1;
    if (n->str_min > 0 || n->str_max >= 0) {
        Py_ssize_t length = code_points(text);
        if (length < n->str_min || (n->str_max >= 0 && length > n->str_max)) return -1;
    }
    if (n->str_count >= 0) {
        Py_ssize_t i = 0;
        while (i < n->str_count && !same_text(n->strs[i], text)) i++;
        if (i == n->str_count) return -1;
    }
    if (n->automaton) {
        if (!automaton_matches(n, text)) return -1;
    } else if (n->pattern) {
        PyObject *str = PyUnicode_DecodeUTF8((const char *)text.p, text.len, NULL);
        PyObject *found = str ? PyObject_CallOneArg(n->pattern, str) : NULL;
        Py_XDECREF(str);
        if (!found) {
            if (PyErr_ExceptionMatches(PyExc_MemoryError)) s->nomem = 1;
            PyErr_Clear();
            return -1;
        }
        int matched = found != Py_None;
        Py_DECREF(found);
        if (!matched) return -1;
    }
    return 0;
}

/* The number `text` (checked by scan_number) as an integer in *out: 0, or 1 when it
 * has a fraction or an exponent, -1 when it is an integer past 18 digits. */
static int integer_of(Text text, long long *out) {
    const unsigned char *p = text.p, *end = text.p + text.len;
    int negative = *p == '-';
    p += negative;
    const unsigned char *digits = p;
    unsigned long long v = 0; /* wraps past 18 digits, and is then not used */
    for (; p < end && *p >= '0' && *p <= '9'; p++) v = v * 10 + (unsigned)(*p - '0');
    if (p < end) return 1;
    if (p - digits > 18) return -1;
    *out = negative ? -(long long)v : (long long)v;
    return 0;
}

static int integer_holds(const SchemaNode *n, long long v) {
    if (v < n->int_min || v > n->int_max) return 0;
    if (n->int_step && v % n->int_step != 0) return 0;
    if (n->int_count >= 0) {
        Py_ssize_t i = 0;
        while (i < n->int_count && n->ints[i] != v) i++;
        if (i == n->int_count) return 0;
    }
    return 1;
}

static int number_holds(const SchemaNode *n, double d) {
    return (!n->has_ge || d >= n->ge) && (!n->has_gt || d > n->gt) && (!n->has_le || d <= n->le) &&
           (!n->has_lt || d < n->lt);
}

static int check_number(Scan *s, const SchemaNode *n) {
    Text text = {s->p, 0};
    if (scan_number(s) < 0) return -1;
    text.len = s->p - text.p;
    long long v;
    int integral = integer_of(text, &v);
    if (integral < 0) return -1;
    if (integral == 0) {
        if ((n->kinds & K_INT) && integer_holds(n, v)) return 0;
        /* a double holds it exactly within 2^53 (the bounds are kept within it too) */
        if ((n->kinds & K_NUM) && v < (1LL << 53) && v > -(1LL << 53) &&
            number_holds(n, (double)v))
            return 0;
        return -1;
    }
    if (!(n->kinds & K_NUM)) return -1;
    char buf[64];
    if (text.len >= (Py_ssize_t)sizeof buf) return -1;
    memcpy(buf, text.p, (size_t)text.len);
    buf[text.len] = '\0';
    double d = PyOS_string_to_double(buf, NULL, NULL);
    if (d == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    if (!isfinite(d)) return -1;
    return number_holds(n, d) ? 0 : -1;
}

/* Containers are checked out of line: check_value stays small, and the checks of
 * scalars it calls are inlined into it. */
#if defined(__GNUC__)
#define OUT_OF_LINE __attribute__((noinline))
#else
#define OUT_OF_LINE
#endif

static OUT_OF_LINE int check_array(Scan *s, const SchemaNode *n, int depth) {
    Py_ssize_t count = 0;
    int opened = open_container(s, ']', depth);
    if (opened < 0) return -1;
    while (opened == 0) {
        if (check_value(s, n->items, depth - 1) < 0) return -1;
        count++;
        int next = after_item(s, ']');
        if (next < 0) return -1;
        if (next > 0) break;
    }
    if (count < n->items_min || (n->items_max >= 0 && count > n->items_max)) return -1;
    return 0;
}

/* The property named `name`, or NULL. */
static const Property *property_of(const SchemaNode *n, Text name) {
    for (size_t slot = name_hash(name) & n->slot_mask; n->slots[slot] >= 0;
         slot = (slot + 1) & n->slot_mask) {
        const Property *p = &n->props[n->slots[slot]];
        if (same_name(p->name, name)) return p;
    }
    return NULL;
}

static OUT_OF_LINE int check_object(Scan *s, const SchemaNode *n, int depth) {
    uint64_t seen = 0;
    int opened = open_container(s, '}', depth);
    if (opened < 0) return -1;
    while (opened == 0) {
        Text raw, name;
        int escaped;
        if (member_name(s, &raw, &escaped) < 0) return -1;
        const SchemaNode *member = n->extra;
        if (!member && n->prop_count) {
            if (string_text(s, raw, escaped, &name) < 0) return -1;
            const Property *p = property_of(n, name);
            if (p) {
                member = p->node;
                if (p->required_bit >= 0) seen |= 1ULL << p->required_bit;
            } else if (n->closed) {
                return -1;
            }
        } else if (!member && n->closed) {
            return -1;
        }
        if ((member ? check_value(s, member, depth - 1) : scan_value(s, depth - 1)) < 0) return -1;
        int next = after_item(s, '}');
        if (next < 0) return -1;
        if (next > 0) break;
    }
    return (seen & n->required) == n->required ? 0 : -1;
}

/* The value at s->p scanned as scan_value does (the same limits, s->spaced set the
 * same way) and checked against `n` (NULL: anything); -1 when it is not JSON or
 * the check does not accept it. */
static int check_value(Scan *s, const SchemaNode *n, int depth) {
    if (!n || (n->kinds & K_ANY)) return scan_value(s, depth);
    if (s->p >= s->end) return -1;
    switch (*s->p) {
        case '"': return (n->kinds & K_STR) ? check_string(s, n) : -1;
        case '{': return (n->kinds & K_OBJ) ? check_object(s, n, depth) : -1;
        case '[': return (n->kinds & K_ARR) ? check_array(s, n, depth) : -1;
        case 't': return (n->kinds & K_BOOL) ? scan_literal(s, "true", 4) : -1;
        case 'f': return (n->kinds & K_BOOL) ? scan_literal(s, "false", 5) : -1;
        case 'n': return (n->kinds & K_NULL) ? scan_literal(s, "null", 4) : -1;
        default: return (n->kinds & (K_INT | K_NUM)) ? check_number(s, n) : -1;
    }
}

/* The root of a compile_schema result; NULL with ValueError for anything else. */
static const SchemaNode *schema_root(PyObject *compiled) {
    Compiled *c = PyCapsule_GetPointer(compiled, SCHEMA_CAPSULE);
    return c ? c->nodes[0] : NULL;
}

/* Whether a scan checked against `schema` declines the record `r` it has read: its
 * value is null or absent (checked as null) and the schema does not take null, or it
 * names the header a checked record is given (gateway.http.value_schemas.
 * SCHEMA_ID_HEADER), which the reference replaces. */
static int schema_declines(const SchemaNode *schema, const Span *r, const Header *headers) {
    static const Text reserved = {(const unsigned char *)SCHEMA_ID_HEADER,
                                  sizeof SCHEMA_ID_HEADER - 1};
    if (r->value.len < 0 && !(schema->kinds & (K_NULL | K_ANY))) return 1;
    for (Py_ssize_t i = 0; i < r->header_count; i++)
        if (same_text(headers[r->header_first + i].name, reserved)) return 1;
    return 0;
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

/* The records into `b`, joined by commas, each opening with `head` (up to its
 * offset's digits); 1: let Python render them. */
static int render_records(Buf *b, PyObject *records, int fmt, const char *head,
                          Py_ssize_t head_len) {
    PyObject *seq = PySequence_Fast(records, "records must be a sequence");
    if (!seq) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), i;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    Py_ssize_t guess = 64 + n * (128 + head_len); /* the fixed text of a record, its numbers */
    for (i = 0; i < n; i++) {
        if (PyTuple_Check(items[i]) && PyTuple_GET_SIZE(items[i]) >= 5) {
            PyObject *value = PyTuple_GET_ITEM(items[i], 3);
            if (PyBytes_Check(value)) guess += PyBytes_GET_SIZE(value) * (fmt == FMT_JSON ? 1 : 2);
        }
    }
    int rc = buf_grow(b, guess);
    for (i = 0; rc == 0 && i < n; i++) {
        if (i) rc = PUT_LITERAL(b, ",");
        if (rc == 0) rc = render_record(b, items[i], fmt, head, head_len);
    }
    Py_DECREF(seq);
    return rc;
}

/* The records as a JSON array into `b`; 1: let Python render them. */
static int render_array(Buf *b, PyObject *records, long long partition, int fmt) {
    char head[64];
    int head_len = snprintf(head, sizeof head, "{\"partition\":%lld,\"offset\":", partition);
    int rc = PUT_LITERAL(b, "[");
    if (rc == 0) rc = render_records(b, records, fmt, head, head_len);
    if (rc == 0) rc = PUT_LITERAL(b, "]");
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

/* A group fetch's records of one partition, each with its topic first
 * (`{"topic":<topic>,"partition":...}`), joined by commas; or None. `topic` is the
 * topic name's JSON text, written as given. The twin of
 * gateway.http.recordjson.topic_records_json. */
static PyObject *render_topic_records(PyObject *self, PyObject *args) {
    PyObject *records;
    Py_buffer topic;
    long long partition;
    int fmt;
    if (!PyArg_ParseTuple(args, "Oy*Li", &records, &topic, &partition, &fmt)) return NULL;
    Buf head = {NULL, 0, 0}, b = {NULL, 0, 0};
    int rc = PUT_LITERAL(&head, "{\"topic\":");
    if (rc == 0) rc = buf_put(&head, topic.buf, topic.len);
    if (rc == 0) rc = PUT_LITERAL(&head, ",\"partition\":");
    if (rc == 0) rc = buf_int(&head, partition);
    if (rc == 0) rc = PUT_LITERAL(&head, ",\"offset\":");
    PyBuffer_Release(&topic);
    if (rc == 0) rc = render_records(&b, records, fmt, head.data, head.len);
    PyMem_Free(head.data);
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

/* The JSON array of `{"partition","offset"}` for records placed over several
 * partitions, in request order: `order` names each record's partition, `results`
 * holds each partition's append result (storage.records.AppendResult: a tuple whose
 * first items are the partition and its first offset; its records are consecutive
 * from there). The twin of rendering.offsets_json over those pairs. */
static PyObject *placed_offsets_json(PyObject *self, PyObject *args) {
    PyObject *order, *results;
    if (!PyArg_ParseTuple(args, "O!O!", &PyList_Type, &order, &PyList_Type, &results))
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(order), nr = PyList_GET_SIZE(results);
    PyObject *reply = NULL;
    long long most = -1;
    long long *placed = PyMem_Malloc((size_t)n * sizeof(long long) + 1);
    if (!placed) return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++) {
        long long p = PyLong_AsLongLong(PyList_GET_ITEM(order, i));
        if (p == -1 && PyErr_Occurred()) goto done;
        if (p < 0 || p > 1000000) {
            PyErr_SetString(PyExc_ValueError, "a partition must be within 0..1000000");
            goto done;
        }
        placed[i] = p;
        if (p > most) most = p;
    }
    /* Each partition's next offset, and whether a result named it. */
    long long *next = PyMem_Calloc((size_t)(most + 1), sizeof(long long));
    char *known = PyMem_Calloc((size_t)(most + 1), 1);
    if (!next || !known) {
        PyErr_NoMemory();
        goto free_next;
    }
    for (Py_ssize_t i = 0; i < nr; i++) {
        PyObject *result = PyList_GET_ITEM(results, i);
        if (!PyTuple_Check(result) || PyTuple_GET_SIZE(result) < 2) {
            PyErr_SetString(PyExc_TypeError, "a result is a tuple of partition and offset");
            goto free_next;
        }
        long long p = PyLong_AsLongLong(PyTuple_GET_ITEM(result, 0));
        long long base = PyLong_AsLongLong(PyTuple_GET_ITEM(result, 1));
        if (PyErr_Occurred()) goto free_next;
        if (p < 0 || p > most) continue; /* no record of the request went there */
        next[p] = base;
        known[p] = 1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!known[placed[i]]) {
            PyErr_SetObject(PyExc_KeyError, PyList_GET_ITEM(order, i));
            goto free_next;
        }
    }
    /* `{"partition":` 13, the partition at most 7, `,"offset":` 10, the offset at most
     * 20, `}` and `,` 2: 52 bytes a record at most, and the brackets. */
    reply = PyBytes_FromStringAndSize(NULL, n * 52 + 2);
    if (!reply) goto free_next;
    char *start = PyBytes_AS_STRING(reply), *out = start;
    *out++ = '[';
    for (Py_ssize_t i = 0; i < n; i++) {
        long long p = placed[i];
        if (i) *out++ = ',';
        memcpy(out, "{\"partition\":", 13);
        out += 13;
        out += write_int(out, p);
        memcpy(out, ",\"offset\":", 10);
        out += 10;
        out += write_int(out, next[p]++);
        *out++ = '}';
    }
    *out++ = ']';
    if (_PyBytes_Resize(&reply, out - start) < 0) reply = NULL;
free_next:
    PyMem_Free(next);
    PyMem_Free(known);
done:
    PyMem_Free(placed);
    return reply;
}

/* ------------------------------------------------------------ schema header -- */

static uint32_t read_be(const unsigned char *p, int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

/* `count` packed records (storage.records.PackedRecords.data) with `header`, one
 * packed header (name and value with their lengths), appended to each record's
 * headers; None when the data does not hold `count` whole records or a record
 * already has the most headers a count holds. The twin of
 * schema_check.with_header. */
static PyObject *add_header(PyObject *self, PyObject *args) {
    Py_buffer data, header;
    Py_ssize_t count;
    if (!PyArg_ParseTuple(args, "y*ny*", &data, &count, &header)) return NULL;
    PyObject *result = NULL;
    const unsigned char *in = data.buf, *end = in + data.len;
    if (count < 0 || header.len > (PY_SSIZE_T_MAX - data.len) / (count ? count : 1)) goto none;
    result = PyBytes_FromStringAndSize(NULL, data.len + count * header.len);
    if (result == NULL) goto done;
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    for (Py_ssize_t r = 0; r < count; r++) {
        const unsigned char *start = in;
        if (end - in < PACKED_RECORD_HEAD) goto none;
        int32_t klen = (int32_t)read_be(in + 8, 4), vlen = (int32_t)read_be(in + 12, 4);
        uint32_t headers = read_be(in + 16, 2);
        if (headers >= 0xFFFF) goto none;
        in += PACKED_RECORD_HEAD;
        if (klen > 0) {
            if (end - in < klen) goto none;
            in += klen;
        }
        if (vlen > 0) {
            if (end - in < vlen) goto none;
            in += vlen;
        }
        for (uint32_t h = 0; h < headers; h++) { /* name_len u16, name, value_len i32, value */
            if (end - in < 2) goto none;
            uint32_t nlen = read_be(in, 2);
            if (end - in - 2 < (Py_ssize_t)nlen + 4) goto none;
            in += 2 + nlen;
            int32_t hlen = (int32_t)read_be(in, 4);
            if (hlen < 0 || end - in - 4 < hlen) goto none;
            in += 4 + hlen;
        }
        memcpy(out, start, in - start);
        out[16] = (unsigned char)((headers + 1) >> 8);
        out[17] = (unsigned char)((headers + 1) & 0xFF);
        out += in - start;
        memcpy(out, header.buf, header.len);
        out += header.len;
    }
    if (in != end) goto none;
    goto done;
none:
    Py_XDECREF(result);
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&data);
    PyBuffer_Release(&header);
    return result;
}

/* ------------------------------------------------------------------ module -- */

static PyMethodDef methods[] = {
    {"scan_produce", (PyCFunction)(void (*)(void))scan_produce, METH_VARARGS | METH_KEYWORDS,
     "A JSON produce body as packed records per partition, or None (take the Python path)."},
    {"render_fetch", render_fetch, METH_VARARGS,
     "A whole fetch reply: the records, next_offset and end_offset; or None."},
    {"render_topic_records", render_topic_records, METH_VARARGS,
     "A group fetch's records of one partition with their topic, joined by commas; or None."},
    {"offsets_json", offsets_json, METH_VARARGS,
     "The JSON array of `count` consecutive offsets of one partition from `base`."},
    {"placed_offsets_json", placed_offsets_json, METH_VARARGS,
     "The JSON array of each record's partition and offset, for records over several."},
    {"compile_schema", compile_schema, METH_O,
     "A value schema's description (fast_types.Node) compiled for scan_produce's `schema`."},
    {"add_header", add_header, METH_VARARGS,
     "Packed records with one packed header appended to each record's headers; or None."},
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
        PyModule_AddIntConstant(m, "FMT_BINARY", FMT_BINARY) < 0 ||
        PyModule_AddStringConstant(m, "SCHEMA_ID_HEADER", SCHEMA_ID_HEADER) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
