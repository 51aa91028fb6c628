/* textrnn's generation kernel: whole runs of sampling steps for a stacked LSTM, GRU, vanilla
 * RNN, minGRU or minLSTM language model, with no Python and no PyTorch dispatch between steps.
 *
 * One call runs `steps` steps for B streams. Each step samples a token per stream from the
 * current logits (the same rule as sample.py's `sample_next`, driven by uniforms the caller drew
 * from its torch.Generator), then feeds those tokens through the layers and the head to get the
 * next logits. The work of a step is split by hidden unit (and by vocabulary row for the head)
 * over OpenMP threads, so each thread keeps reading the same slice of the weights; the threads
 * meet at one barrier per layer.
 *
 * Gate pre-activations use the same weights as torch.nn.LSTM/GRU/RNN (gate order i,f,g,o for
 * LSTM and r,z,n for GRU); sums run in a different order, so logits agree with PyTorch's to
 * about 1e-7, not bit for bit. minGRU and minLSTM (minrnn.py's MinStack) have no W_hh: each
 * layer is an RMSNorm of the residual stream, one projection of it into [k_z, k_h] or
 * [k_f, k_i, k_h], and h = a * h + b per unit; the stream adds h where the widths agree, and
 * a last RMSNorm feeds the head. fast.py compiles this file with the system C compiler, once per
 * machine, and falls back to the plain PyTorch path when it cannot.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#define MAX_LAYERS 16
enum { LSTM = 0, GRU = 1, RNN_TANH = 2, RNN_RELU = 3, MINGRU = 4, MINLSTM = 5 };

typedef struct {
    /* model; Hp and Vp are hidden and vocab rounded up to whole panels of 16 */
    int32_t cell, layers, hidden, embed, vocab, batch, threads, hidden_p, vocab_p;
    const float *table;                  /* V x G*Hp: embedding through layer 0's W_ih, + b_ih */
    const float *emb;                    /* V x E, used when table is NULL */
    const float *w_ih[MAX_LAYERS], *w_hh[MAX_LAYERS];  /* packed: G*Hp/16 panels each */
    const float *b_ih[MAX_LAYERS], *b_hh[MAX_LAYERS];  /* G*Hp */
    const float *w_out, *b_out;          /* packed: Vp/16 panels of H; Vp */
    /* minGRU and minLSTM: w_ih, b_ih hold each layer's projection (w_hh, b_hh unused) */
    const float *norm_w[MAX_LAYERS];     /* each layer's RMSNorm weight: E for layer 0, else H */
    const float *norm_out;               /* the RMSNorm before the head: H */
    float eps;                           /* the RMSNorms' epsilon */
    /* sampling */
    float temperature;                   /* 0 = argmax */
    int32_t top_k;                       /* 0 = off */
    double top_p;                        /* 1 = off */
    const int64_t *banned;
    int32_t n_banned;
    const uint8_t *allowed;              /* S x V: token v may follow UTF-8 state s; or NULL */
    const int8_t *next_state;            /* S x V: the UTF-8 state after token v from state s */
    int32_t *state;                      /* B: each stream's UTF-8 state, updated in place */
    /* state and scratch, allocated by the caller */
    float *h, *h_alt, *c;                /* L x B x H each; c only for LSTM */
    float *res;                          /* minGRU/minLSTM: 2 x B x H, the residual stream */
    float *gx, *gh;                      /* B x G*Hp (gh unused by minGRU and minLSTM) */
    float *logits, *logits_p;            /* B x V (in and out), B x Vp (scratch) */
} Net;

typedef float v8 __attribute__((vector_size(32)));

static inline v8 load8(const float *p) { v8 v; memcpy(&v, p, sizeof v); return v; }
static inline void store8(float *p, v8 v) { memcpy(p, &v, sizeof v); }
static inline v8 splat8(float f) { return (v8){f, f, f, f, f, f, f, f}; }

/* Weights are packed in panels of PANEL rows, each stored k-major (panel[k][i] = w[row i][k]),
 * so that one step of k reads PANEL consecutive floats (fast.py's `pack` builds them). A tile
 * multiplies one panel by BT inputs into 2 x BT vector accumulators: out[b][0..15] += panel[k]
 * * x[b][k], no horizontal sums, no transposes. */
#define PANEL 16

static inline __attribute__((always_inline)) void
tile(int BT, float *out, int ldo, const float *panel, const float *bias,
     const float *const *x, int n)
{
    v8 acc[6][2];
    for (int j = 0; j < BT; j++) acc[j][0] = acc[j][1] = (v8){0};
    for (int k = 0; k < n; k++) {
        v8 w0 = load8(panel + k * PANEL), w1 = load8(panel + k * PANEL + 8);
        for (int j = 0; j < BT; j++) {
            v8 xv = splat8(x[j][k]);
            acc[j][0] += w0 * xv;
            acc[j][1] += w1 * xv;
        }
    }
    v8 b0 = load8(bias), b1 = load8(bias + 8);
    for (int j = 0; j < BT; j++) {
        store8(out + (size_t)j * ldo, acc[j][0] + b0);
        store8(out + (size_t)j * ldo + 8, acc[j][1] + b1);
    }
}

/* One input: four independent accumulator pairs, so the adds do not wait on each other. */
static inline void tile1(float *out, const float *panel, const float *bias, const float *x, int n)
{
    v8 a[4][2];
    for (int u = 0; u < 4; u++) a[u][0] = a[u][1] = (v8){0};
    int k = 0;
    for (; k + 4 <= n; k += 4)
        for (int u = 0; u < 4; u++) {
            v8 xv = splat8(x[k + u]);
            a[u][0] += load8(panel + (k + u) * PANEL) * xv;
            a[u][1] += load8(panel + (k + u) * PANEL + 8) * xv;
        }
    for (; k < n; k++) {
        v8 xv = splat8(x[k]);
        a[0][0] += load8(panel + k * PANEL) * xv;
        a[0][1] += load8(panel + k * PANEL + 8) * xv;
    }
    store8(out, ((a[0][0] + a[1][0]) + (a[2][0] + a[3][0])) + load8(bias));
    store8(out + 8, ((a[0][1] + a[1][1]) + (a[2][1] + a[3][1])) + load8(bias + 8));
}

/* out[b * ldo + p * PANEL + i] = w[p * PANEL + i] . x[b] + bias[...] for panels p in [p0, p1):
 * a slice of x @ w.T + bias, with w packed in panels of n-long rows. */
static void gemm_panels(float *out, int ldo, const float *packed, const float *bias, int p0,
                        int p1, const float *const *x, int B, int n)
{
    for (int p = p0; p < p1; p++) {
        const float *panel = packed + (size_t)p * n * PANEL, *bp = bias + p * PANEL;
        float *o = out + p * PANEL;
        int b = 0;
        for (; b + 6 <= B; b += 6) tile(6, o + (size_t)b * ldo, ldo, panel, bp, x + b, n);
        switch (B - b) {
        case 5: tile(5, o + (size_t)b * ldo, ldo, panel, bp, x + b, n); break;
        case 4: tile(4, o + (size_t)b * ldo, ldo, panel, bp, x + b, n); break;
        case 3: tile(3, o + (size_t)b * ldo, ldo, panel, bp, x + b, n); break;
        case 2: tile(2, o + (size_t)b * ldo, ldo, panel, bp, x + b, n); break;
        case 1: tile1(o + (size_t)b * ldo, panel, bp, x[b], n); break;
        }
    }
}

/* exp for the gates: Cody-Waite range reduction and a degree-6 polynomial (the Cephes expf
 * coefficients), within 2 ulp of expf on [-87, 88] and written so that loops over it vectorise. */
static inline float exp_gate(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t e = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &e, sizeof scale);
    return p * scale;
}

static inline float sigmoid(float x) { return 1.0f / (1.0f + exp_gate(-x)); }
static inline float tanh_gate(float x) { return 1.0f - 2.0f / (exp_gate(2.0f * x) + 1.0f); }

static int gates_of(int cell) {
    return cell == LSTM ? 4 : cell == GRU || cell == MINLSTM ? 3 : cell == MINGRU ? 2 : 1;
}

static int is_min(int cell) { return cell == MINGRU || cell == MINLSTM; }

/* One layer for hidden units [j0, j1) of every stream: h_new (and c, in place) from gx, gh. */
static void cell_update(const Net *net, float *restrict h_new, const float *restrict h_old,
                        float *restrict c, int j0, int j1)
{
    const int H = net->hidden_p, G = gates_of(net->cell), GH = G * H, B = net->batch;
    const int Hs = net->hidden;  /* the state's own row length */
    for (int b = 0; b < B; b++) {
        const float *x = net->gx + (size_t)b * GH, *hh = net->gh + (size_t)b * GH;
        float *hn = h_new + (size_t)b * Hs;
        const float *ho = h_old + (size_t)b * Hs;
        if (net->cell == LSTM) {
            float *cb = c + (size_t)b * Hs;
            for (int j = j0; j < j1; j++) {
                float i = sigmoid(x[j] + hh[j]);
                float f = sigmoid(x[H + j] + hh[H + j]);
                float g = tanh_gate(x[2 * H + j] + hh[2 * H + j]);
                float o = sigmoid(x[3 * H + j] + hh[3 * H + j]);
                float cn = f * cb[j] + i * g;
                cb[j] = cn;
                hn[j] = o * tanh_gate(cn);
            }
        } else if (net->cell == GRU) {
            for (int j = j0; j < j1; j++) {
                float r = sigmoid(x[j] + hh[j]);
                float z = sigmoid(x[H + j] + hh[H + j]);
                float n = tanh_gate(x[2 * H + j] + r * hh[2 * H + j]);
                hn[j] = (1.0f - z) * n + z * ho[j];
            }
        } else if (net->cell == RNN_TANH) {
            for (int j = j0; j < j1; j++) hn[j] = tanh_gate(x[j] + hh[j]);
        } else {
            for (int j = j0; j < j1; j++) {
                float v = x[j] + hh[j];
                hn[j] = v > 0.0f ? v : 0.0f;
            }
        }
    }
}

/* torch.nn.RMSNorm of one row of n: x * rsqrt(mean(x^2) + eps) * w, the squares summed in 8
 * lanes (the order is fixed, so every thread gets the same row). */
static void rms_norm(float *restrict out, const float *restrict x, const float *restrict w,
                     int n, float eps)
{
    v8 acc = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8) acc += load8(x + i) * load8(x + i);
    float ss = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
    for (; i < n; i++) ss += x[i] * x[i];
    const float r = 1.0f / sqrtf(ss / (float)n + eps);
    for (i = 0; i < n; i++) out[i] = x[i] * r * w[i];
}

/* One minGRU or minLSTM layer for units [j0, j1) of every stream, from gx (its projection):
 * h_new = a * h_old + b (minrnn.py), and the residual stream's next value x_out = x_in + h_new
 * (or h_new alone where the layer changes the width). The loops vectorise. */
static void min_update(const Net *net, float *h_new, const float *h_old,
                       const float *const *x_in, float *x_out, int residual, int j0, int j1)
{
    const int H = net->hidden_p, G = gates_of(net->cell), GH = G * H, B = net->batch;
    const int Hs = net->hidden, gru = net->cell == MINGRU;
    for (int b = 0; b < B; b++) {
        const float *restrict k = net->gx + (size_t)b * GH, *restrict kh = k + (G - 1) * H;
        const float *restrict ho = h_old + (size_t)b * Hs;
        float *restrict hn = h_new + (size_t)b * Hs;
        if (gru)
            for (int j = j0; j < j1; j++) {
                float g = kh[j] >= 0.0f ? kh[j] + 0.5f : sigmoid(kh[j]);
                hn[j] = sigmoid(-k[j]) * ho[j] + sigmoid(k[j]) * g;
            }
        else
            for (int j = j0; j < j1; j++) {
                /* a = sigmoid(softplus(-k_i) - softplus(-k_f)) = (1 + e^v) / (2 + e^u + e^v),
                 * u = -k_f, v = -k_i; scaled by e^-m, m = max(u, v, 0), so no exp overflows;
                 * 1 - a, which scales the input, likewise */
                float u = -k[j], v = -k[H + j], m = u > v ? u : v;
                m = m > 0.0f ? m : 0.0f;
                float em = exp_gate(-m), eu = exp_gate(u - m), ev = exp_gate(v - m);
                float d = 1.0f / (2.0f * em + eu + ev);
                float g = kh[j] >= 0.0f ? kh[j] + 0.5f : sigmoid(kh[j]);
                hn[j] = (em + ev) * d * ho[j] + (em + eu) * d * g;
            }
        float *restrict xo = x_out + (size_t)b * Hs;
        const float *restrict xi = x_in[b];
        if (residual)
            for (int j = j0; j < j1; j++) xo[j] = xi[j] + hn[j];
        else
            memcpy(xo + j0, hn + j0, sizeof(float) * (j1 - j0));
    }
}

/* --- sampling: sample.py's sample_next, one row at a time --- */

typedef struct { float v; int32_t i; } Pair;

static int by_value_desc(const void *a, const void *b) {
    const Pair *p = a, *q = b;
    if (p->v != q->v) return p->v > q->v ? -1 : 1;
    return p->i - q->i;  /* ties keep index order, as a stable sort does */
}

/* The k-th largest of s[0..n) (k >= 1), by quickselect on a copy in tmp. */
static float kth_largest(const float *s, int n, int k, float *tmp) {
    memcpy(tmp, s, sizeof(float) * n);
    int lo = 0, hi = n - 1, want = k - 1;  /* position in descending order */
    while (lo < hi) {
        float pivot = tmp[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (tmp[i] > pivot) i++;
            while (tmp[j] < pivot) j--;
            if (i <= j) { float t = tmp[i]; tmp[i] = tmp[j]; tmp[j] = t; i++; j--; }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else return tmp[want];
    }
    return tmp[want];
}

/* Mask what may never be emitted: the banned ids, and (ok != NULL) the tokens whose bytes cannot
 * continue valid UTF-8 from the stream's pending bytes. */
static void mask(const Net *net, const uint8_t *ok, float *s)
{
    for (int i = 0; i < net->n_banned; i++) s[net->banned[i]] = -INFINITY;
    if (ok)
        for (int v = 0; v < net->vocab; v++)
            if (!ok[v]) s[v] = -INFINITY;
}

static int64_t sample_row(const Net *net, const float *z, double u, const uint8_t *ok, float *s,
                          double *e, Pair *pairs)
{
    const int V = net->vocab;
    if (net->temperature == 0.0f) {  /* argmax: the first of the largest, masked ids excluded */
        memcpy(s, z, sizeof(float) * V);
        mask(net, ok, s);
        int best = 0;
        for (int v = 1; v < V; v++)
            if (s[v] > s[best]) best = v;
        return best;
    }
    for (int v = 0; v < V; v++) s[v] = z[v];
    mask(net, ok, s);
    for (int v = 0; v < V; v++) s[v] = s[v] / net->temperature;
    if (net->top_k > 0 && net->top_k < V) {
        float kth = kth_largest(s, V, net->top_k, (float *)e);
        for (int v = 0; v < V; v++)
            if (s[v] < kth) s[v] = -INFINITY;
    }
    if (net->top_p < 1.0) {  /* keep the likeliest tokens until their mass reaches p */
        for (int v = 0; v < V; v++) pairs[v] = (Pair){s[v], v};
        qsort(pairs, V, sizeof(Pair), by_value_desc);
        double m = pairs[0].v, total = 0.0;
        for (int v = 0; v < V; v++) { e[v] = exp((double)pairs[v].v - m); total += e[v]; }
        double cum = 0.0;
        for (int v = 0; v < V; v++) {
            double p = e[v] / total;
            cum += p;
            if (cum - p >= net->top_p) s[pairs[v].i] = -INFINITY;
        }
    }
    float m = -INFINITY;
    for (int v = 0; v < V; v++)
        if (s[v] > m) m = s[v];
    double cum = 0.0;
    int last = 0;
    for (int v = 0; v < V; v++) {
        double p = s[v] == -INFINITY ? 0.0 : exp((double)s[v] - (double)m);
        if (p > 0.0) last = v;
        cum += p;
        e[v] = cum;
    }
    double target = u * cum;
    for (int v = 0; v < V; v++)
        if (e[v] > target) return v;
    return last;
}

/* --- one layer, for this thread's panels [p0, p1) of hidden units (units [j0, j1)) --- */

/* gx = x @ W_ih[l].T + b_ih[l] for this thread's panels of every gate group: from the folded
 * table for layer 0 where there is one, else from the rows xr (B of them, `in` long). */
static void project(const Net *net, int l, const int64_t *tok, const float *const *xr, int in,
                    int p0, int p1)
{
    const int Hp = net->hidden_p, G = gates_of(net->cell), GH = G * Hp, P = PANEL;
    if (l == 0 && net->table) {
        for (int b = 0; b < net->batch; b++)
            for (int g = 0; g < G; g++)
                memcpy(net->gx + (size_t)b * GH + g * Hp + p0 * P,
                       net->table + tok[b] * GH + g * Hp + p0 * P, 4 * (p1 - p0) * P);
        return;
    }
    for (int g = 0; g < G; g++)
        gemm_panels(net->gx + g * Hp, GH, net->w_ih[l] + (size_t)g * Hp * in,
                    net->b_ih[l] + g * Hp, p0, p1, xr, net->batch, in);
}

/* An LSTM, GRU or vanilla RNN layer: its input is the layer below's new state (layer 0: the
 * embedding), and its own old state goes through W_hh. */
static void classic_layer(const Net *net, int l, const int64_t *tok, const float *h_old,
                          float *h_new, const float *nxt, const float **xr, int p0, int p1)
{
    const int B = net->batch, H = net->hidden, Hp = net->hidden_p, G = gates_of(net->cell);
    const int in = l == 0 ? net->embed : H, j1 = p1 * PANEL < H ? p1 * PANEL : H;
    float *c = net->cell == LSTM ? net->c + (size_t)l * B * H : NULL;
    for (int b = 0; b < B; b++)
        xr[b] = l == 0 ? net->emb + tok[b] * in : nxt + ((size_t)(l - 1) * B + b) * H;
    project(net, l, tok, xr, in, p0, p1);
    for (int b = 0; b < B; b++) xr[b] = h_old + (size_t)b * H;
    for (int g = 0; g < G; g++)
        gemm_panels(net->gh + g * Hp, G * Hp, net->w_hh[l] + (size_t)g * Hp * H,
                    net->b_hh[l] + g * Hp, p0, p1, xr, B, H);
    cell_update(net, h_new, h_old, c, p0 * PANEL, j1);
}

/* A minGRU or minLSTM layer: its input is the residual stream x_l (layer 0: the embedding),
 * which lives in res[l & 1] while this layer writes x_{l+1} into res[(l + 1) & 1]. The RMSNorm
 * needs a whole row, so each thread normalises every row itself into its own xn (B x In): a
 * few hundred multiply-adds a row, and no barrier. xr and xi hold B row pointers each. */
static void min_layer(const Net *net, int l, const int64_t *tok, const float *h_old,
                      float *h_new, const float **xr, const float **xi, float *xn, int p0,
                      int p1)
{
    const int B = net->batch, H = net->hidden, in = l == 0 ? net->embed : H;
    const float *x = net->res + (size_t)(l & 1) * B * H;
    for (int b = 0; b < B; b++) xi[b] = l == 0 ? net->emb + tok[b] * in : x + (size_t)b * H;
    if (!(l == 0 && net->table))
        for (int b = 0; b < B; b++) {
            rms_norm(xn + (size_t)b * in, xi[b], net->norm_w[l], in, net->eps);
            xr[b] = xn + (size_t)b * in;
        }
    project(net, l, tok, xr, in, p0, p1);
    min_update(net, h_new, h_old, xi, net->res + (size_t)((l + 1) & 1) * B * H, in == H,
               p0 * PANEL, p1 * PANEL < H ? p1 * PANEL : H);
}

/* Run `steps` steps; tokens (steps x B) receives the samples; u (steps x B) holds uniforms in
 * [0, 1). On return net->h (and c) hold the state after the last token, net->logits the logits
 * that follow it. Returns 0, or -1 if scratch memory could not be allocated. */
int textrnn_run(Net *net, int steps, const double *u, int64_t *tokens)
{
    const int L = net->layers, H = net->hidden, Hp = net->hidden_p, B = net->batch;
    const int V = net->vocab, Vp = net->vocab_p, P = PANEL, NP = Hp / P, NPV = Vp / P;
    const int min = is_min(net->cell), width = net->embed > H ? net->embed : H;
    const size_t LBH = (size_t)L * B * H;
    int threads = net->threads > 0 ? net->threads : 1;
    if (threads > NP) threads = NP;
    float *buf[2] = {net->h, net->h_alt};
    float *lg = net->logits_p;
    int failed = 0;
    for (int b = 0; b < B; b++) memcpy(lg + (size_t)b * Vp, net->logits + (size_t)b * V, 4 * V);

#pragma omp parallel num_threads(threads)
    {
        int t = 0, nt = 1;
#ifdef _OPENMP
        t = omp_get_thread_num();
        nt = omp_get_num_threads();
#endif
        /* this thread's panels: of hidden units in every layer, and of the vocabulary */
        const int p0 = NP * t / nt, p1 = NP * (t + 1) / nt;
        const int q0 = NPV * t / nt, q1 = NPV * (t + 1) / nt;
        const float **xr = malloc(sizeof(float *) * 2 * B), **xi = xr + B;
        float *xn = min ? malloc(sizeof(float) * B * width) : NULL;
        float *s = malloc(sizeof(float) * V);
        double *e = malloc(sizeof(double) * V);
        Pair *pairs = malloc(sizeof(Pair) * V);
        if (!xr || (min && !xn) || !s || !e || !pairs) {
#pragma omp atomic write
            failed = 1;
        }
#pragma omp barrier
        for (int step = 0; step < steps && !failed; step++) {
            float *cur = buf[step & 1], *nxt = buf[(step + 1) & 1];
            int64_t *tok = tokens + (size_t)step * B;
            for (int b = t; b < B; b += nt) {
                const uint8_t *ok = net->allowed ? net->allowed + (size_t)net->state[b] * V
                                                 : NULL;
                tok[b] = sample_row(net, lg + (size_t)b * Vp, u[(size_t)step * B + b], ok,
                                    s, e, pairs);
                if (ok) {
                    /* NaN or infinite logits can leave every weight 0: take the first token
                     * the state allows (fast.py checks that every state allows one) */
                    if (!ok[tok[b]])
                        for (int v = 0; v < V; v++)
                            if (ok[v]) { tok[b] = v; break; }
                    int8_t next = net->next_state[(size_t)net->state[b] * V + tok[b]];
                    net->state[b] = next >= 0 ? next : 0;
                }
            }
#pragma omp barrier
            for (int l = 0; l < L; l++) {
                float *h_old = cur + (size_t)l * B * H, *h_new = nxt + (size_t)l * B * H;
                if (min)
                    min_layer(net, l, tok, h_old, h_new, xr, xi, xn, p0, p1);
                else
                    classic_layer(net, l, tok, h_old, h_new, nxt, xr, p0, p1);
#pragma omp barrier
            }
            for (int b = 0; b < B; b++) {  /* the head's input: the top layer's output */
                const float *top = min ? net->res + ((size_t)(L & 1) * B + b) * H
                                       : nxt + ((size_t)(L - 1) * B + b) * H;
                if (min) rms_norm(xn + (size_t)b * H, top, net->norm_out, H, net->eps);
                xr[b] = min ? xn + (size_t)b * H : top;
            }
            gemm_panels(lg, Vp, net->w_out, net->b_out, q0, q1, xr, B, H);
#pragma omp barrier
        }
        free(xr); free(xn); free(s); free(e); free(pairs);
    }
    if (failed) return -1;
    if (steps & 1) memcpy(net->h, net->h_alt, sizeof(float) * LBH);
    for (int b = 0; b < B; b++) memcpy(net->logits + (size_t)b * V, lg + (size_t)b * Vp, 4 * V);
    return 0;
}

/* The layout this file was compiled with, for fast.py to check against its copy of Net:
 * sizeof(Net), MAX_LAYERS, PANEL, the cell codes, then the offset of every field in order.
 * Writes at most n values; returns how many there are. */
int textrnn_layout(int64_t *out, int n)
{
    const int64_t v[] = {
        sizeof(Net), MAX_LAYERS, PANEL, LSTM, GRU, RNN_TANH, RNN_RELU, MINGRU, MINLSTM,
        offsetof(Net, cell), offsetof(Net, layers), offsetof(Net, hidden), offsetof(Net, embed),
        offsetof(Net, vocab), offsetof(Net, batch), offsetof(Net, threads),
        offsetof(Net, hidden_p), offsetof(Net, vocab_p), offsetof(Net, table), offsetof(Net, emb),
        offsetof(Net, w_ih), offsetof(Net, w_hh), offsetof(Net, b_ih), offsetof(Net, b_hh),
        offsetof(Net, w_out), offsetof(Net, b_out), offsetof(Net, norm_w),
        offsetof(Net, norm_out), offsetof(Net, eps), offsetof(Net, temperature),
        offsetof(Net, top_k), offsetof(Net, top_p), offsetof(Net, banned),
        offsetof(Net, n_banned), offsetof(Net, allowed), offsetof(Net, next_state),
        offsetof(Net, state), offsetof(Net, h), offsetof(Net, h_alt), offsetof(Net, c),
        offsetof(Net, res), offsetof(Net, gx), offsetof(Net, gh), offsetof(Net, logits),
        offsetof(Net, logits_p),
    };
    const int count = (int)(sizeof v / sizeof v[0]);
    for (int i = 0; i < count && i < n; i++) out[i] = v[i];
    return count;
}
