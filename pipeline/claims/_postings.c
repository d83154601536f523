/*
 * Posting sums of claim retrieval, compiled (pipeline.claims.index uses it when built).
 *
 * For each query, term at a time over the postings of its distinct terms (sorted), then
 * each term's texts in stored (text) order:
 *   shared[text] += term_weight[term]        (the IDF mass the query shares with a text)
 *   bm25[claim]  += post_bm25[posting]        (the BM25 of the text's claim for the query)
 * A pair (query, text) is kept when shared >= need[text]; it gets its claim's BM25.
 *
 * These are the additions, in the same order and in double precision, that the numpy
 * path's bincount makes (by query, term, text, starting from 0.0), so every sum is the
 * same to the bit; the numpy path stays in index.py as the reference the tests compare.
 *
 * Speed: the texts are taken a tile at a time (at most TILE texts, whole claims only: a
 * claim's texts are consecutive rows), every query in turn within a tile, with a cursor per
 * query term walking its list once, so a tile's accumulators, need and row_claim stay in
 * the L1/L2 cache; a claim's BM25 is complete when its tile is done (the order of its
 * additions is unchanged: by term, then text). Touched slots are listed without a branch
 * and reset after each query; the pairs are put in query order at the end. The loops are
 * small functions of their own (add_postings, mark_passing, emit_passing, clear_slots),
 * not inlined: inside gated_pairs the compiler kept the hot loop's pointers on the stack,
 * reloading several each posting; apart, they stay in registers (~16% less time at
 * 100,000 claims, ~20% at 10,000). With
 * first_stage, scoring's loose first-stage bound also drops pairs that cannot reach its
 * floor (with a margin: scoring applies its exact test to the rest).
 *
 * The tile buffers are module-level: the function holds the GIL throughout, so two
 * threads never use them at once.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define TILE 4096
static double tile_shared[TILE];   /* by text of the tile */
static double tile_bm25[TILE];     /* by claim of the tile */
static int32_t tile_touched[TILE]; /* texts of the tile the query reached */
static int32_t tile_claims[TILE];  /* claims of the tile the query reached */
static uint64_t tile_passing[TILE / 64]; /* a bit per passing text, zero between tiles */
static int64_t *cursor = NULL;     /* per query term: its next posting */
static Py_ssize_t cap_cursor = 0;
static int32_t *tile_start = NULL; /* the first text of each tile, then n_rows */
static Py_ssize_t cap_tiles = 0;
static int64_t *group_first = NULL; /* the first term of each query */
static Py_ssize_t cap_groups = 0;
static Py_ssize_t *by_query = NULL; /* where each query's pairs start in the output */
static Py_ssize_t cap_by_query = 0;

/* Output, grown as pairs are found. */
typedef struct {
    int64_t *q;
    int64_t *rows;
    double *shared;
    double *bm25;
    Py_ssize_t n;
    Py_ssize_t cap;
} Pairs;

static int
grow(void **buf, Py_ssize_t *cap, Py_ssize_t need, size_t item)
{
    if (need <= *cap)
        return 0;
    Py_ssize_t size = *cap ? *cap : 1024;
    while (size < need)
        size *= 2;
    void *fresh = realloc(*buf, (size_t)size * item);
    if (fresh == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    *buf = fresh;
    *cap = size;
    return 0;
}

static int
push(Pairs *out, int64_t q, int64_t row, double shared, double bm25)
{
    if (out->n == out->cap) {
        Py_ssize_t size = out->cap ? out->cap * 2 : 1024;
        int64_t *nq = realloc(out->q, (size_t)size * sizeof(int64_t));
        if (nq) out->q = nq;
        int64_t *nr = realloc(out->rows, (size_t)size * sizeof(int64_t));
        if (nr) out->rows = nr;
        double *ns = realloc(out->shared, (size_t)size * sizeof(double));
        if (ns) out->shared = ns;
        double *nb = realloc(out->bm25, (size_t)size * sizeof(double));
        if (nb) out->bm25 = nb;
        if (!(nq && nr && ns && nb)) {
            PyErr_NoMemory();
            return -1;
        }
        out->cap = size;
    }
    out->q[out->n] = q;
    out->rows[out->n] = row;
    out->shared[out->n] = shared;
    out->bm25[out->n] = bm25;
    out->n++;
    return 0;
}

/* ``out`` put in query order into ``sorted`` (``start[q]``: where query q's pairs go). */
static int
push_sorted(const Pairs *out, Pairs *sorted, Py_ssize_t *start)
{
    const Py_ssize_t n = out->n ? out->n : 1;
    sorted->q = malloc((size_t)n * sizeof(int64_t));
    sorted->rows = malloc((size_t)n * sizeof(int64_t));
    sorted->shared = malloc((size_t)n * sizeof(double));
    sorted->bm25 = malloc((size_t)n * sizeof(double));
    if (!(sorted->q && sorted->rows && sorted->shared && sorted->bm25)) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t k = 0; k < out->n; k++) {
        const Py_ssize_t at = start[out->q[k]]++;
        sorted->q[at] = out->q[k];
        sorted->rows[at] = out->rows[k];
        sorted->shared[at] = out->shared[k];
        sorted->bm25[at] = out->bm25[k];
    }
    sorted->n = sorted->cap = out->n;
    return 0;
}

typedef struct {
    Py_buffer view;
    int held;
} Arg;

static int
take(PyObject *obj, Arg *arg, Py_ssize_t itemsize, const char *kinds, const char *name)
{
    if (PyObject_GetBuffer(obj, &arg->view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return -1;
    arg->held = 1;
    const char *fmt = arg->view.format ? arg->view.format : "B";
    if (*fmt == '<' || *fmt == '=' || *fmt == '@')
        fmt++;
    if (arg->view.itemsize != itemsize || strchr(kinds, *fmt) == NULL || fmt[1] != '\0') {
        PyErr_Format(PyExc_TypeError, "%s: wrong item type '%s' (size %zd)", name,
                     arg->view.format ? arg->view.format : "B", arg->view.itemsize);
        return -1;
    }
    return 0;
}

static PyObject *
bytes_of(const void *data, Py_ssize_t n, size_t item)
{
    return PyByteArray_FromStringAndSize(n ? (const char *)data : "", n * (Py_ssize_t)item);
}

/* The loose first-stage bound of scoring, or none (masses == NULL). */
typedef struct {
    const double *masses;   /* per query */
    const double *row_mass; /* per text */
    double floor, base, w_claim, w_query, w_bm25, unknown_idf;
} FirstStage;

/* Whether a pair may reach the first stage's floor: its loose bound as scoring computes
   it, with a margin far above rounding (scoring applies the exact test to what is kept). */
static int
may_reach(const FirstStage *fs, double q_mass, int32_t r, double shared, double bm25)
{
    if (fs->masses == NULL)
        return 1;
    const double mass = fs->row_mass[r];
    const double x = bm25 / fs->unknown_idf;
    const double rest = fs->base + fs->w_claim * (mass > 0 ? shared / mass : 1.0)
                        + fs->w_query * (q_mass > 0 ? shared / q_mass : 0.0);
    /* log1p(x) <= x / sqrt(1 + x) for x >= 0: most pairs fall short even so */
    if (fs->w_bm25 >= 0 && x >= 0 && !(rest + fs->w_bm25 * (x / sqrt(1.0 + x))
                                       >= fs->floor - 1e-6))
        return 0;
    return rest + fs->w_bm25 * log1p(x) >= fs->floor - 1e-6;
}

/* One query term's postings in the tile [lo, hi) added into the tile's accumulators, from
   posting p (at most to p1); returns where the term's next tile starts. Touched slots are
   listed without a branch (every weight is positive, so a slot whose bits are still those
   of 0.0 is untouched; a sum is never -0.0): whether a text is new is a coin toss, and a
   mispredicted branch stalls the loads after it. Kept apart, with few live values, so the
   compiler keeps them all in registers. */
static __attribute__((noinline)) int64_t
add_postings(const int32_t *restrict post_rows, const int32_t *restrict post_claim,
             const double *restrict post_bm25, int64_t p, const int64_t p1, const int32_t lo,
             const int32_t hi, const int32_t c_lo, const int32_t c_span, const double w,
             double *restrict at, double *restrict ac, int32_t *restrict tt,
             int32_t *restrict tc, Py_ssize_t *n_touched, Py_ssize_t *n_claims, int *bad)
{
    const uint32_t span = (uint32_t)(hi - lo);
    Py_ssize_t nt = *n_touched, nc = *n_claims;
    for (; p < p1; p++) {
        const uint32_t local = (uint32_t)(post_rows[p] - lo);
        if (local >= span) {
            if (post_rows[p] < lo)  /* a damaged index */
                *bad = 1;
            break;
        }
        const uint32_t c = (uint32_t)(post_claim[p] - c_lo);
        if (c > (uint32_t)c_span) {  /* a damaged index */
            *bad = 1;
            break;
        }
        const double was = at[local], had = ac[c];
        uint64_t was_bits, had_bits;
        memcpy(&was_bits, &was, sizeof was_bits);
        memcpy(&had_bits, &had, sizeof had_bits);
        tt[nt] = (int32_t)local;
        nt += (was_bits == 0);
        at[local] = was + w;
        tc[nc] = (int32_t)c;
        nc += (had_bits == 0);
        ac[c] = had + post_bm25[p];
    }
    *n_touched = nt;
    *n_claims = nc;
    return p;
}

/* The touched texts tt[0 .. nt) of the tile whose shared mass reaches their need: a bit
   each in bits (set without a branch), to be read in text order. */
static __attribute__((noinline)) void
mark_passing(const int32_t *restrict tt, const Py_ssize_t nt, const double *restrict at,
             const double *restrict need, uint64_t *restrict bits)
{
    for (Py_ssize_t k = 0; k < nt; k++) {
        const int32_t local = tt[k];
        bits[local >> 6] |= (uint64_t)(at[local] >= need[local]) << (local & 63);
    }
}

/* Every slot acc[idx[k]] of k < n back to 0.0. */
static __attribute__((noinline)) void
clear_slots(const int32_t *restrict idx, const Py_ssize_t n, double *restrict acc)
{
    for (Py_ssize_t k = 0; k < n; k++)
        acc[idx[k]] = 0.0;
}

/* The passing texts of query qi in the tile starting at text lo (bits: a bit each, all
   cleared here, whatever happens), in text order, with their shared mass (at) and claim
   BM25 (ac), into out when they may reach the first stage's floor; none once bad. Returns
   bad: 0, 1 for a damaged index, 2 when out could not grow (the error set). */
static __attribute__((noinline)) int
emit_passing(uint64_t *restrict bits_of, const int32_t n_words, const int32_t lo,
             const int32_t c_lo, const int32_t c_span, const int32_t *restrict row_claim,
             const double *restrict at, const double *restrict ac, const FirstStage *fs,
             const int64_t qi, Pairs *out, int bad)
{
    const double q_mass = fs->masses ? fs->masses[qi] : 0.0;
    for (int32_t word = 0; word < n_words; word++) {
        uint64_t bits = bits_of[word];
        if (!bits)
            continue;
        bits_of[word] = 0;
        while (bits) {
            const int32_t local = word * 64 + __builtin_ctzll(bits);
            bits &= bits - 1;
            const int32_t c = row_claim[lo + local] - c_lo;
            if ((uint32_t)c > (uint32_t)c_span) {
                bad = 1;
                continue;
            }
            const double sh = at[local], b = ac[c];
            if (!bad && may_reach(fs, q_mass, lo + local, sh, b) &&
                push(out, qi, lo + local, sh, b) < 0)
                bad = 2;
        }
    }
    return bad;
}

PyDoc_STRVAR(gated_pairs_doc,
"gated_pairs(term_ids, owner, nq, indptr, post_rows, post_claim, post_bm25, term_weight,\n"
"            need, row_claim, first_stage=None) -> (q, rows, shared, bm25) or None\n\n"
"Every (query, text) pair whose shared IDF mass reaches need[text], sorted by query then\n"
"text, with the shared mass and the BM25 of the text's claim, as four bytearrays\n"
"(int64, int64, float64, float64). term_ids (int64) are each query's distinct term ids,\n"
"sorted, owner (int64, non-decreasing) says whose; indptr int64; post_rows, post_claim and\n"
"row_claim (sorted) int32; post_bm25, term_weight and need float64. None when a claim has\n"
"more texts than a tile holds (the caller sums in numpy).\n\n"
"first_stage = (masses, row_mass, floor, base, w_claim, w_query, w_bm25, unknown_idf) also\n"
"leaves out the pairs whose loose first-stage bound, base + w_claim * shared / row_mass\n"
"(1 for a text of no mass) + w_query * shared / masses[query] (0 for a query of no mass)\n"
"+ w_bm25 * log1p(bm25 / unknown_idf), is below floor - 1e-6 (masses per query, row_mass\n"
"per text, float64).");

static PyObject *
gated_pairs(PyObject *self, PyObject *args)
{
    PyObject *o_terms, *o_owner, *o_indptr, *o_rows, *o_claim, *o_bm25, *o_weight, *o_need,
        *o_row_claim, *o_first = Py_None;
    Py_ssize_t nq;
    if (!PyArg_ParseTuple(args, "OOnOOOOOOO|O", &o_terms, &o_owner, &nq, &o_indptr, &o_rows,
                          &o_claim, &o_bm25, &o_weight, &o_need, &o_row_claim, &o_first))
        return NULL;
    PyObject *o_masses = NULL, *o_row_mass = NULL;
    FirstStage fs = {NULL, NULL, 0, 0, 0, 0, 0, 1};
    if (o_first != Py_None &&
        !PyArg_ParseTuple(o_first, "OOdddddd", &o_masses, &o_row_mass, &fs.floor, &fs.base,
                          &fs.w_claim, &fs.w_query, &fs.w_bm25, &fs.unknown_idf))
        return NULL;
    Arg a[11];
    memset(a, 0, sizeof(a));
    Pairs out, sorted;
    memset(&out, 0, sizeof(out));
    memset(&sorted, 0, sizeof(sorted));
    PyObject *result = NULL;
    const char *ints = "qlL";
    if (take(o_terms, &a[0], 8, ints, "term_ids") < 0 ||
        take(o_owner, &a[1], 8, ints, "owner") < 0 ||
        take(o_indptr, &a[2], 8, ints, "indptr") < 0 ||
        take(o_rows, &a[3], 4, "il", "post_rows") < 0 ||
        take(o_claim, &a[4], 4, "il", "post_claim") < 0 ||
        take(o_bm25, &a[5], 8, "d", "post_bm25") < 0 ||
        take(o_weight, &a[6], 8, "d", "term_weight") < 0 ||
        take(o_need, &a[7], 8, "d", "need") < 0 ||
        take(o_row_claim, &a[8], 4, "il", "row_claim") < 0 ||
        (o_masses && (take(o_masses, &a[9], 8, "d", "masses") < 0 ||
                      take(o_row_mass, &a[10], 8, "d", "row_mass") < 0)))
        goto done;
    const int64_t *terms = a[0].view.buf;
    const int64_t *owner = a[1].view.buf;
    const int64_t *indptr = a[2].view.buf;
    const int32_t *post_rows = a[3].view.buf;
    const int32_t *post_claim = a[4].view.buf;
    const double *post_bm25 = a[5].view.buf;
    const double *weight = a[6].view.buf;
    const double *need = a[7].view.buf;
    const int32_t *row_claim = a[8].view.buf;
    const Py_ssize_t n_given = a[0].view.len / 8;
    const Py_ssize_t n_vocab = a[2].view.len / 8 - 1;
    const Py_ssize_t n_post = a[3].view.len / 4;
    const Py_ssize_t n_rows = a[7].view.len / 8;
    if (a[1].view.len / 8 != n_given || a[4].view.len / 4 != n_post ||
        a[5].view.len / 8 != n_post || a[6].view.len / 8 != n_vocab ||
        a[8].view.len / 4 != n_rows || n_vocab < 0 || n_rows >= INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "gated_pairs: array lengths do not agree");
        goto done;
    }
    if (o_masses) {
        fs.masses = a[9].view.buf;
        fs.row_mass = a[10].view.buf;
        if (a[9].view.len / 8 != nq || a[10].view.len / 8 != n_rows) {
            PyErr_SetString(PyExc_ValueError, "gated_pairs: first-stage lengths do not agree");
            goto done;
        }
    }
    /* the tiles: at most TILE texts each, ending where a claim ends */
    Py_ssize_t n_tiles = 0;
    if (grow((void **)&tile_start, &cap_tiles, n_rows + 2, sizeof(int32_t)) < 0)
        goto done;
    for (Py_ssize_t lo = 0; lo < n_rows;) {
        Py_ssize_t hi = lo + TILE;
        if (hi >= n_rows) {
            hi = n_rows;
        } else {
            while (hi > lo && row_claim[hi - 1] == row_claim[hi])
                hi--;
            if (hi == lo) {  /* a claim with more texts than a tile: numpy sums it */
                result = Py_None;
                Py_INCREF(result);
                goto done;
            }
        }
        if (row_claim[lo] < 0 || row_claim[hi - 1] < row_claim[lo] ||
            row_claim[hi - 1] - row_claim[lo] >= TILE) {
            PyErr_SetString(PyExc_ValueError, "gated_pairs: row_claim is not sorted");
            goto done;
        }
        tile_start[n_tiles++] = (int32_t)lo;
        lo = hi;
    }
    tile_start[n_tiles] = (int32_t)n_rows;
    if (grow((void **)&cursor, &cap_cursor, n_given, sizeof(int64_t)) < 0)
        goto done;

    /* the queries: group g has the terms group_first[g] .. group_first[g + 1] - 1 */
    Py_ssize_t n_groups = 0;
    if (grow((void **)&group_first, &cap_groups, n_given + 1, sizeof(int64_t)) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < n_given; i++) {
        const int64_t t = terms[i];
        if (owner[i] < 0 || owner[i] >= nq || (i > 0 && owner[i] < owner[i - 1])) {
            PyErr_SetString(PyExc_ValueError, "gated_pairs: owner out of range or order");
            goto done;
        }
        if (t < 0 || t >= n_vocab || indptr[t] < 0 || indptr[t] > indptr[t + 1] ||
            indptr[t + 1] > n_post) {
            PyErr_SetString(PyExc_ValueError, "gated_pairs: term id out of range");
            goto done;
        }
        if (i == 0 || owner[i] != owner[i - 1])
            group_first[n_groups++] = i;
        cursor[i] = indptr[t];
    }
    group_first[n_groups] = n_given;

    double *const at = tile_shared, *const ac = tile_bm25;
    int32_t *const tt = tile_touched, *const tc = tile_claims;
    uint64_t *const bits_of = tile_passing;
    int64_t *const cur = cursor;
    /* tile by tile, every query: the tile's need, row_claim and accumulators stay in the
       cache from query to query (the pairs come out by tile, then query, and are put in
       query order below) */
    for (Py_ssize_t tile = 0; tile < n_tiles; tile++) {
        const int32_t lo = tile_start[tile], hi = tile_start[tile + 1];
        const int32_t c_lo = row_claim[lo], c_hi = row_claim[hi - 1];
        for (Py_ssize_t g = 0; g < n_groups; g++) {
            const int64_t qi = owner[group_first[g]];
            Py_ssize_t nt = 0, nc = 0;
            int bad = 0;
            for (Py_ssize_t j = group_first[g]; j < group_first[g + 1]; j++) {
                const double w = weight[terms[j]];
                const int64_t p1 = indptr[terms[j] + 1];
                int64_t p = cur[j];
                p = add_postings(post_rows, post_claim, post_bm25, p, p1, lo, hi, c_lo,
                                 c_hi - c_lo, w, at, ac, tt, tc, &nt, &nc, &bad);
                cur[j] = p;
                if (bad)
                    break;
            }
            /* the passing texts, in text order: a bit each (set without a branch), read
               in order */
            mark_passing(tt, nt, at, need + lo, bits_of);
            bad = emit_passing(bits_of, (hi - lo + 63) >> 6, lo, c_lo, c_hi - c_lo,
                               row_claim, at, ac, &fs, qi, &out, bad);
            clear_slots(tt, nt, at);
            clear_slots(tc, nc, ac);
            if (bad == 1) {
                PyErr_SetString(PyExc_ValueError,
                                "gated_pairs: postings out of range (damaged index)");
                goto done;
            }
            if (bad)
                goto done;
        }
    }
    /* by query (stable: within a query, tiles and so texts stay in order) */
    if (grow((void **)&by_query, &cap_by_query, nq + 1, sizeof(Py_ssize_t)) < 0)
        goto done;
    memset(by_query, 0, (size_t)(nq + 1) * sizeof(Py_ssize_t));
    for (Py_ssize_t k = 0; k < out.n; k++)
        by_query[out.q[k] + 1]++;
    for (Py_ssize_t q = 0; q < nq; q++)
        by_query[q + 1] += by_query[q];
    if (push_sorted(&out, &sorted, by_query) < 0)
        goto done;
    {
        PyObject *q = bytes_of(sorted.q, sorted.n, sizeof(int64_t));
        PyObject *rows = bytes_of(sorted.rows, sorted.n, sizeof(int64_t));
        PyObject *shared = bytes_of(sorted.shared, sorted.n, sizeof(double));
        PyObject *bm25 = bytes_of(sorted.bm25, sorted.n, sizeof(double));
        if (q && rows && shared && bm25)
            result = PyTuple_Pack(4, q, rows, shared, bm25);
        Py_XDECREF(q);
        Py_XDECREF(rows);
        Py_XDECREF(shared);
        Py_XDECREF(bm25);
    }
done:
    for (int k = 0; k < 11; k++)
        if (a[k].held)
            PyBuffer_Release(&a[k].view);
    free(out.q);
    free(out.rows);
    free(out.shared);
    free(out.bm25);
    free(sorted.q);
    free(sorted.rows);
    free(sorted.shared);
    free(sorted.bm25);
    return result;
}

static PyMethodDef methods[] = {
    {"gated_pairs", gated_pairs, METH_VARARGS, gated_pairs_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_postings",
    "Posting sums of claim retrieval, compiled (see pipeline.claims.index).", -1, methods,
};

PyMODINIT_FUNC
PyInit__postings(void)
{
    return PyModule_Create(&module);
}
