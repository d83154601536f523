/*
 * Posting sums of claim retrieval, compiled (pipeline.claims.index uses it when built).
 *
 * For each query of a block, term at a time over the postings of its distinct terms
 * (sorted), then each term's texts in stored order:
 *   shared[text] += term_weight[term]        (the IDF mass the query shares with a text)
 *   bm25[claim]  += post_bm25[posting]        (the BM25 of the text's claim for the query)
 * into dense accumulators reused from query to query (only the touched slots are reset).
 * A pair (query, text) is kept when shared >= need[text]; it gets its claim's BM25.
 *
 * These are the additions, in the same order and in double precision, that the numpy
 * path's bincount makes (by query, term, text, starting from 0.0), so every sum is the
 * same to the bit; the numpy path stays in index.py as the reference the tests compare.
 *
 * The accumulators are module-level buffers: the function holds the GIL throughout,
 * so two threads never use them at once.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* texts are summed a tile at a time: its accumulators stay in the L1/L2 cache */
#define TILE 4096
static double acc_text[TILE];
static int32_t touched_text[TILE];
static uint64_t passing[TILE / 64];  /* a bit per text of the tile, zero between tiles */
static int64_t *cursor = NULL;  /* per query term: its next posting */
static Py_ssize_t cap_cursor = 0;
static double *acc_claim = NULL;
static Py_ssize_t cap_claim = 0;
static int32_t *touched_claim = NULL;
static unsigned char *want_claim = NULL;  /* the claims of a query's passing texts */
static Py_ssize_t cap_touched_claim = 0;

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

/* Dense accumulators of n_claims claims, zeroed, and their marks. */
static int
workspace(Py_ssize_t n_claims)
{
    if (n_claims > cap_claim) {
        free(acc_claim);
        free(want_claim);
        acc_claim = calloc((size_t)n_claims, sizeof(double));
        want_claim = calloc((size_t)n_claims, 1);
        cap_claim = (acc_claim && want_claim) ? n_claims : 0;
        if (!cap_claim) {
            PyErr_NoMemory();
            return -1;
        }
    }
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

PyDoc_STRVAR(gated_pairs_doc,
"gated_pairs(term_ids, owner, nq, indptr, post_rows, post_claim, post_bm25, term_weight,\n"
"            need, row_claim) -> (q, rows, shared, bm25)\n\n"
"Every (query, text) pair whose shared IDF mass reaches need[text], sorted by query then\n"
"text, with the shared mass and the BM25 of the text's claim, as four bytearrays\n"
"(int64, int64, float64, float64). term_ids (int64) are each query's distinct term ids,\n"
"sorted, owner (int64, non-decreasing) says whose; indptr int64; post_rows, post_claim and\n"
"row_claim int32; post_bm25, term_weight and need float64.");

static PyObject *
gated_pairs(PyObject *self, PyObject *args)
{
    PyObject *o_terms, *o_owner, *o_indptr, *o_rows, *o_claim, *o_bm25, *o_weight, *o_need,
        *o_row_claim;
    Py_ssize_t nq;
    if (!PyArg_ParseTuple(args, "OOnOOOOOOO", &o_terms, &o_owner, &nq, &o_indptr, &o_rows,
                          &o_claim, &o_bm25, &o_weight, &o_need, &o_row_claim))
        return NULL;
    Arg a[9];
    memset(a, 0, sizeof(a));
    Pairs out;
    memset(&out, 0, sizeof(out));
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
        take(o_row_claim, &a[8], 4, "il", "row_claim") < 0)
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
    Py_ssize_t n_terms_given = a[0].view.len / 8;
    Py_ssize_t n_vocab = a[2].view.len / 8 - 1;
    Py_ssize_t n_post = a[3].view.len / 4;
    Py_ssize_t n_rows = a[7].view.len / 8;
    Py_ssize_t n_claims = 0;
    if (a[1].view.len / 8 != n_terms_given || a[4].view.len / 4 != n_post ||
        a[5].view.len / 8 != n_post || a[6].view.len / 8 != n_vocab ||
        a[8].view.len / 4 != n_rows || n_vocab < 0) {
        PyErr_SetString(PyExc_ValueError, "gated_pairs: array lengths do not agree");
        goto done;
    }
    /* row_claim is sorted: the claims are 0 .. its last item */
    if (n_rows > 0)
        n_claims = (Py_ssize_t)row_claim[n_rows - 1] + 1;
    if (workspace(n_claims) < 0)
        goto done;
    if (grow((void **)&cursor, &cap_cursor, n_terms_given, sizeof(int64_t)) < 0 ||
        grow((void **)&touched_claim, &cap_touched_claim, n_claims, sizeof(int32_t)) < 0)
        goto done;

    /* local pointers: the compiler need not reload them after each store */
    double *const at = acc_text, *const ac = acc_claim;
    int32_t *const tt = touched_text, *const wc = touched_claim;
    unsigned char *const want = want_claim;
    uint64_t *const bits_of = passing;
    int64_t *const cur = cursor;
    Py_ssize_t i = 0;
    while (i < n_terms_given) {
        const int64_t qi = owner[i];
        const Py_ssize_t first = i;
        if (qi < 0 || qi >= nq) {
            PyErr_SetString(PyExc_ValueError, "gated_pairs: owner out of range");
            goto done;
        }
        while (i < n_terms_given && owner[i] == qi) {
            const int64_t t = terms[i];
            if (t < 0 || t >= n_vocab || indptr[t] < 0 || indptr[t] > indptr[t + 1] ||
                indptr[t + 1] > n_post) {
                PyErr_SetString(PyExc_ValueError, "gated_pairs: term id out of range");
                goto done;
            }
            cur[i] = indptr[t];
            i++;
        }
        const Py_ssize_t out_first = out.n;
        Py_ssize_t nw = 0;
        int bad = 0;
        /* 1. tile by tile of TILE texts (each term's postings are in text order, so a
              cursor per term walks its list once), the shared mass of every text the
              query's terms reach, added term by term (each weight is positive: a slot
              still 0.0 is one this query has not touched) */
        for (Py_ssize_t lo = 0; lo < n_rows && !bad; lo += TILE) {
            const int32_t hi = (int32_t)(lo + TILE < n_rows ? lo + TILE : n_rows);
            Py_ssize_t nt = 0;
            for (Py_ssize_t j = first; j < i; j++) {
                const int64_t t = terms[j];
                const double w = weight[t];
                const int64_t p1 = indptr[t + 1];
                int64_t p = cur[j];
                for (; p < p1; p++) {
                    const int32_t r = post_rows[p];
                    if (r >= hi)
                        break;
                    const int32_t local = r - (int32_t)lo;
                    if (local < 0) {  /* not in text order: a damaged index */
                        bad = 1;
                        break;
                    }
                    /* appended without a branch: whether a text is new is a coin toss,
                       and a mispredicted branch stalls the loads after it */
                    const double was = at[local];
                    tt[nt] = local;
                    nt += (was == 0.0);
                    at[local] = was + w;
                }
                cur[j] = p;
                if (bad)
                    break;
            }
            /* 2. the texts that pass, in text order (a bit each, read in order), their
                  claims marked for step 3; every slot reset */
            for (Py_ssize_t k = 0; k < nt; k++) {
                const int32_t local = tt[k];
                if (at[local] >= need[lo + local])
                    bits_of[local >> 6] |= (uint64_t)1 << (local & 63);
                else
                    at[local] = 0.0;
            }
            for (Py_ssize_t word = 0; word < TILE / 64; word++) {
                uint64_t bits = bits_of[word];
                if (!bits)
                    continue;
                bits_of[word] = 0;
                while (bits) {
                    const int32_t local = (int32_t)(word * 64 + __builtin_ctzll(bits));
                    bits &= bits - 1;
                    const int32_t r = (int32_t)lo + local;
                    const int32_t c = row_claim[r];
                    if ((uint32_t)c >= (uint32_t)n_claims)
                        bad = 1;
                    else if (!want[c]) {
                        want[c] = 1;
                        wc[nw++] = c;
                    }
                    if (!bad && push(&out, qi, r, at[local], 0.0) < 0)
                        bad = 2;
                    at[local] = 0.0;
                }
            }
        }
        /* 3. the BM25 of the marked claims only, from the same postings in the same
              order (by term, then text) */
        if (nw && !bad) {
            for (Py_ssize_t j = first; j < i && !bad; j++) {
                const int64_t t = terms[j];
                const int64_t p1 = indptr[t + 1];
                for (int64_t p = indptr[t]; p < p1; p++) {
                    const int32_t c = post_claim[p];
                    if ((uint32_t)c >= (uint32_t)n_claims) {
                        bad = 1;
                        break;
                    }
                    if (want[c])
                        ac[c] += post_bm25[p];
                }
            }
            for (Py_ssize_t k = out_first; k < out.n && !bad; k++)
                out.bm25[k] = ac[row_claim[out.rows[k]]];
        }
        for (Py_ssize_t k = 0; k < nw; k++) {
            ac[wc[k]] = 0.0;
            want[wc[k]] = 0;
        }
        if (bad == 1) {
            PyErr_SetString(PyExc_ValueError, "gated_pairs: postings out of range (damaged index)");
            goto done;
        }
        if (bad)
            goto done;
    }
    {
        PyObject *q = bytes_of(out.q, out.n, sizeof(int64_t));
        PyObject *rows = bytes_of(out.rows, out.n, sizeof(int64_t));
        PyObject *shared = bytes_of(out.shared, out.n, sizeof(double));
        PyObject *bm25 = bytes_of(out.bm25, out.n, sizeof(double));
        if (q && rows && shared && bm25)
            result = PyTuple_Pack(4, q, rows, shared, bm25);
        Py_XDECREF(q);
        Py_XDECREF(rows);
        Py_XDECREF(shared);
        Py_XDECREF(bm25);
    }
done:
    for (int k = 0; k < 9; k++)
        if (a[k].held)
            PyBuffer_Release(&a[k].view);
    free(out.q);
    free(out.rows);
    free(out.shared);
    free(out.bm25);
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
