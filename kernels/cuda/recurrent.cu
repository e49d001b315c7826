// The recurrent layers' cells, one step per launch: the CUDA backend runs a sequence as a loop of (a product
// with the recurrent kernel through cuBLAS or gemm.cu, then one of these kernels over the step's n x u cells).
// The formulas and the layout are those of nnengine/backends/recurrent_reference.py, the specification:
//
//  * time-major arrays: p (steps, n, G*u) projected inputs, states (steps, n, u), cache (steps, n, B*u), and
//    the step-order gradients dz, dq (steps, n, G*u); a kernel gets whole arrays and the step it works on
//    (k: the step, t: the input step it reads, t = k or steps-1-k going backwards);
//  * q (n, G*u) is h' @ U for this step (h' the state before it, zero before step 0);
//  * one thread per cell (i, j), in a grid-stride loop over n * u; no atomics, so results are deterministic.
//
// Derivatives are written from the activation's output y, as Backend.activation_backward writes them.
#include "common.cuh"

template <typename T> __device__ __forceinline__ T activate(T v, long long code) {
    if (code == ACT_SIGMOID) return stable_sigmoid(v);
    if (code == ACT_TANH) return tanh(v);
    if (code == ACT_RELU) return relu_keep_nan(v);
    return v;
}

template <typename T> __device__ __forceinline__ T activation_grad(T y, T g, long long code) {
    if (code == ACT_SIGMOID) return g * y * (T(1) - y);
    if (code == ACT_TANH) return g * (T(1) - y * y);
    if (code == ACT_RELU) return y > T(0) ? g : T(0);
    return g;
}

#define FOR_EACH_CELL(n, u)                                                                         \
    for (long long cell = (long long)blockIdx.x * blockDim.x + threadIdx.x; cell < (n) * (u);      \
         cell += (long long)gridDim.x * blockDim.x)

// dL/dh of step k from outside the recurrence: grad[k] (every state's gradient) or, for the last step only,
// grad[0] (the last state's), plus what the step after sends back (dh_next, n x u).
template <typename T>
__device__ __forceinline__ T step_grad(const T* grad, const T* dh_next, long long cell, long long k, long long steps,
                                       long long n, long long u, long long all_steps) {
    T outside = all_steps ? grad[k * n * u + cell] : (k == steps - 1 ? grad[cell] : T(0));
    return outside + dh_next[cell];
}

// -- forward --------------------------------------------------------------------------------------------------
// states[k] = act(p[t] + q)
template <typename T>
__global__ void rnn_step(const T* __restrict__ p, const T* __restrict__ q, T* __restrict__ states, long long t,
                         long long k, long long n, long long u, long long activation) {
    FOR_EACH_CELL(n, u) {
        long long i = cell / u, j = cell % u;
        states[k * n * u + cell] = activate(p[(t * n + i) * u + j] + q[i * u + j], activation);
    }
}

// Gates i, f, g, o of p[t] + q; c = f * c' + i * g; h = o * act(c); cache [i f g o c act(c)]
template <typename T>
__global__ void lstm_step(const T* __restrict__ p, const T* __restrict__ q, T* __restrict__ cache,
                          T* __restrict__ states, long long t, long long k, long long n, long long u,
                          long long activation, long long recurrent_activation) {
    FOR_EACH_CELL(n, u) {
        long long i = cell / u, j = cell % u;
        const T* x = p + (t * n + i) * 4 * u;
        const T* r = q + i * 4 * u;
        T gate_i = activate(x[j] + r[j], recurrent_activation);
        T gate_f = activate(x[u + j] + r[u + j], recurrent_activation);
        T gate_g = activate(x[2 * u + j] + r[2 * u + j], activation);
        T gate_o = activate(x[3 * u + j] + r[3 * u + j], recurrent_activation);
        T c_prev = k > 0 ? cache[((k - 1) * n + i) * 6 * u + 4 * u + j] : T(0);
        T c = gate_f * c_prev + gate_i * gate_g;
        T squashed = activate(c, activation);
        T* row = cache + (k * n + i) * 6 * u;
        row[j] = gate_i; row[u + j] = gate_f; row[2 * u + j] = gate_g; row[3 * u + j] = gate_o;
        row[4 * u + j] = c; row[5 * u + j] = squashed;
        states[k * n * u + cell] = gate_o * squashed;
    }
}

// GRU with reset_after: x = p[t] (+ bias[0]), q (+ bias[1]); z, r = s(x + q) blocks; n = a(x_n + r * q_n);
// h = z * h' + (1 - z) * n; cache [z r n q_n]
template <typename T>
__global__ void gru_step(const T* __restrict__ p, const T* __restrict__ q, const T* __restrict__ bias,
                         T* __restrict__ cache, T* __restrict__ states, long long t, long long k, long long n,
                         long long u, long long has_bias, long long activation, long long recurrent_activation) {
    FOR_EACH_CELL(n, u) {
        long long i = cell / u, j = cell % u;
        const T* x = p + (t * n + i) * 3 * u;
        const T* r = q + i * 3 * u;
        T xs[3], qs[3];
        for (int b = 0; b < 3; ++b) {
            xs[b] = has_bias ? x[b * u + j] + bias[b * u + j] : x[b * u + j];
            qs[b] = has_bias ? r[b * u + j] + bias[3 * u + b * u + j] : r[b * u + j];
        }
        T gate_z = activate(xs[0] + qs[0], recurrent_activation);
        T gate_r = activate(xs[1] + qs[1], recurrent_activation);
        T candidate = activate(xs[2] + gate_r * qs[2], activation);
        T h_prev = k > 0 ? states[(k - 1) * n * u + cell] : T(0);
        T* row = cache + (k * n + i) * 4 * u;
        row[j] = gate_z; row[u + j] = gate_r; row[2 * u + j] = candidate; row[3 * u + j] = qs[2];
        states[k * n * u + cell] = gate_z * h_prev + (T(1) - gate_z) * candidate;
    }
}

// GRU without reset_after, first half: z, r = s(p[t] + q_zr) blocks (q_zr = h' @ U_zr, n x 2u); r * h' into
// reset_state (n x u) and the cache's last block
template <typename T>
__global__ void gru_gates_step(const T* __restrict__ p, const T* __restrict__ q, T* __restrict__ cache,
                               const T* __restrict__ states, T* __restrict__ reset_state, long long t, long long k,
                               long long n, long long u, long long recurrent_activation) {
    FOR_EACH_CELL(n, u) {
        long long i = cell / u, j = cell % u;
        const T* x = p + (t * n + i) * 3 * u;
        T gate_z = activate(x[j] + q[i * 2 * u + j], recurrent_activation);
        T gate_r = activate(x[u + j] + q[i * 2 * u + u + j], recurrent_activation);
        T h_prev = k > 0 ? states[(k - 1) * n * u + cell] : T(0);
        T* row = cache + (k * n + i) * 4 * u;
        row[j] = gate_z; row[u + j] = gate_r;
        row[3 * u + j] = reset_state[cell] = gate_r * h_prev;
    }
}

// ... second half: n = a(p[t]_n + product) with product = (r * h') @ U_n; h = z * h' + (1 - z) * n
template <typename T>
__global__ void gru_candidate_step(const T* __restrict__ p, const T* __restrict__ product, T* __restrict__ cache,
                                   T* __restrict__ states, long long t, long long k, long long n, long long u,
                                   long long activation) {
    FOR_EACH_CELL(n, u) {
        long long i = cell / u, j = cell % u;
        T* row = cache + (k * n + i) * 4 * u;
        T candidate = activate(p[(t * n + i) * 3 * u + 2 * u + j] + product[cell], activation);
        T gate_z = row[j];
        T h_prev = k > 0 ? states[(k - 1) * n * u + cell] : T(0);
        row[2 * u + j] = candidate;
        states[k * n * u + cell] = gate_z * h_prev + (T(1) - gate_z) * candidate;
    }
}

// -- backward through time ----------------------------------------------------------------------------------
// dz[k] = act'(h_k) (grad_k + dh_next)
template <typename T>
__global__ void rnn_step_backward(const T* __restrict__ states, const T* __restrict__ grad,
                                  const T* __restrict__ dh_next, T* __restrict__ dz, long long k, long long steps,
                                  long long n, long long u, long long all_steps, long long activation) {
    FOR_EACH_CELL(n, u) {
        T dh = step_grad(grad, dh_next, cell, k, steps, n, u, all_steps);
        dz[k * n * u + cell] = activation_grad(states[k * n * u + cell], dh, activation);
    }
}

// dz[k] (the four gates' blocks) from dh = grad_k + dh_next and dc_next, which becomes dc' = dc * f in place
template <typename T>
__global__ void lstm_step_backward(const T* __restrict__ cache, const T* __restrict__ grad,
                                   const T* __restrict__ dh_next, T* __restrict__ dc_next, T* __restrict__ dz,
                                   long long k, long long steps, long long n, long long u, long long all_steps,
                                   long long activation, long long recurrent_activation) {
    FOR_EACH_CELL(n, u) {
        long long i = cell / u, j = cell % u;
        const T* row = cache + (k * n + i) * 6 * u;
        T gate_i = row[j], gate_f = row[u + j], gate_g = row[2 * u + j], gate_o = row[3 * u + j];
        T squashed = row[5 * u + j];
        T dh = step_grad(grad, dh_next, cell, k, steps, n, u, all_steps);
        T dc = activation_grad(squashed, dh * gate_o, activation) + dc_next[cell];
        T c_prev = k > 0 ? cache[((k - 1) * n + i) * 6 * u + 4 * u + j] : T(0);
        T* out = dz + (k * n + i) * 4 * u;
        out[j] = activation_grad(gate_i, dc * gate_g, recurrent_activation);
        out[u + j] = activation_grad(gate_f, dc * c_prev, recurrent_activation);
        out[2 * u + j] = activation_grad(gate_g, dc * gate_i, activation);
        out[3 * u + j] = activation_grad(gate_o, dh * squashed, recurrent_activation);
        dc_next[cell] = dc * gate_f;
    }
}

// GRU with reset_after: dz[k] = dL/dx, dq[k] = dL/dq, direct = dL/dh' through h = z * h' + ...
template <typename T>
__global__ void gru_step_backward(const T* __restrict__ states, const T* __restrict__ cache,
                                  const T* __restrict__ grad, const T* __restrict__ dh_next, T* __restrict__ dz,
                                  T* __restrict__ dq, T* __restrict__ direct, long long k, long long steps,
                                  long long n, long long u, long long all_steps, long long activation,
                                  long long recurrent_activation) {
    FOR_EACH_CELL(n, u) {
        long long i = cell / u, j = cell % u;
        const T* row = cache + (k * n + i) * 4 * u;
        T gate_z = row[j], gate_r = row[u + j], candidate = row[2 * u + j], q_n = row[3 * u + j];
        T h_prev = k > 0 ? states[(k - 1) * n * u + cell] : T(0);
        T dh = step_grad(grad, dh_next, cell, k, steps, n, u, all_steps);
        T d_candidate = activation_grad(candidate, dh * (T(1) - gate_z), activation);
        T d_update = activation_grad(gate_z, dh * (h_prev - candidate), recurrent_activation);
        T d_reset = activation_grad(gate_r, d_candidate * q_n, recurrent_activation);
        T* x = dz + (k * n + i) * 3 * u;
        T* r = dq + (k * n + i) * 3 * u;
        x[j] = d_update; x[u + j] = d_reset; x[2 * u + j] = d_candidate;
        r[j] = d_update; r[u + j] = d_reset; r[2 * u + j] = d_candidate * gate_r;
        direct[cell] = dh * gate_z;
    }
}

// GRU without reset_after, first half: dz[k]'s z and n blocks, d_candidates (n x u: what (r * h') @ U_n got),
// direct
template <typename T>
__global__ void gru_candidate_step_backward(const T* __restrict__ states, const T* __restrict__ cache,
                                            const T* __restrict__ grad, const T* __restrict__ dh_next,
                                            T* __restrict__ dz, T* __restrict__ d_candidates,
                                            T* __restrict__ direct, long long k, long long steps, long long n,
                                            long long u, long long all_steps, long long activation,
                                            long long recurrent_activation) {
    FOR_EACH_CELL(n, u) {
        long long i = cell / u, j = cell % u;
        const T* row = cache + (k * n + i) * 4 * u;
        T gate_z = row[j], candidate = row[2 * u + j];
        T h_prev = k > 0 ? states[(k - 1) * n * u + cell] : T(0);
        T dh = step_grad(grad, dh_next, cell, k, steps, n, u, all_steps);
        T d_candidate = activation_grad(candidate, dh * (T(1) - gate_z), activation);
        T* x = dz + (k * n + i) * 3 * u;
        x[j] = activation_grad(gate_z, dh * (h_prev - candidate), recurrent_activation);
        x[2 * u + j] = d_candidates[cell] = d_candidate;
        direct[cell] = dh * gate_z;
    }
}

// ... second half, from d_reset_state = d_candidates @ U_n^T: dz[k]'s r block, and direct += d_reset_state * r
template <typename T>
__global__ void gru_reset_step_backward(const T* __restrict__ states, const T* __restrict__ cache,
                                        const T* __restrict__ d_reset_state, T* __restrict__ dz,
                                        T* __restrict__ direct, long long k, long long n, long long u,
                                        long long recurrent_activation) {
    FOR_EACH_CELL(n, u) {
        long long i = cell / u, j = cell % u;
        T gate_r = cache[(k * n + i) * 4 * u + u + j];
        T h_prev = k > 0 ? states[(k - 1) * n * u + cell] : T(0);
        dz[(k * n + i) * 3 * u + u + j] = activation_grad(gate_r, d_reset_state[cell] * h_prev, recurrent_activation);
        direct[cell] = direct[cell] + d_reset_state[cell] * gate_r;
    }
}
