// In-place optimizer updates, Keras's formulas, one thread per parameter (grid-stride loop).
// The scalars are those of nnengine/backends/optimizer_scalars.py, by the same names and in the
// same order (as in kernels/cpu/optim.py). Every kernel first applies decoupled weight decay as
// a factor: decay = 1 - lr * weight_decay (1 when there is none), i.e. param -= lr * wd * param.
#include "common.cuh"

// SGD. Without momentum: p -= lr g. With it: v = momentum v - lr g, then
// p += momentum v - lr g (nesterov) or p += v.
template <typename T>
__device__ __forceinline__ void sgd_element(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ velocity,
                                            long long i, T lr, T momentum, T decay, long long use_momentum,
                                            long long nesterov) {
    T p = param[i] * decay, g = grad[i], v_old = use_momentum ? velocity[i] : T(0);
    if (!use_momentum) {
        p -= lr * g;
    } else {
        T v = momentum * v_old - lr * g;
        velocity[i] = v;
        p += nesterov ? momentum * v - lr * g : v;
    }
    param[i] = p;
}

template <typename T>
__global__ void sgd_update(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ velocity, long long n,
                           T lr, T momentum, T decay, long long use_momentum, long long nesterov) {
    FOR_EACH_ELEMENT(i, n) sgd_element(param, grad, velocity, i, lr, momentum, decay, use_momentum, nesterov);
}

// Adam / AdamW (decay < 1) / AMSGrad. m += (1 - b1)(g - m); v += (1 - b2)(g^2 - v);
// with amsgrad v_max = max(v_max, v) replaces v in the step; p -= alpha m / (sqrt(v) + eps),
// where alpha = lr sqrt(1 - b2^t) / (1 - b1^t) folds both bias corrections (computed on the host).
// Every value is loaded before anything is stored, so the compiler need not fear aliasing.
template <typename T>
__device__ __forceinline__ void adam_element(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                                             T* __restrict__ v, T* __restrict__ v_max, long long i, T alpha,
                                             T one_minus_beta_1, T one_minus_beta_2, T epsilon, T decay,
                                             long long amsgrad) {
    T p = param[i], g = grad[i], mi = m[i], vi = v[i];
    T v_seen = amsgrad ? v_max[i] : T(0);
    mi += one_minus_beta_1 * (g - mi);
    vi += one_minus_beta_2 * (g * g - vi);
    m[i] = mi;
    v[i] = vi;
    if (amsgrad) {
        vi = nan_max(v_seen, vi);
        v_max[i] = vi;
    }
    param[i] = p * decay - alpha * mi / (sqrt(vi) + epsilon);
}

template <typename T>
__global__ void adam_update(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m, T* __restrict__ v,
                            T* __restrict__ v_max, long long n, T alpha, T one_minus_beta_1, T one_minus_beta_2,
                            T epsilon, T decay, long long amsgrad) {
    FOR_EACH_ELEMENT(i, n)
        adam_element(param, grad, m, v, v_max, i, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay, amsgrad);
}

// Multi-tensor apply: the arrays of up to GROUP_SIZE tensors in one launch. The table travels as a
// kernel parameter (by value: no upload, no allocation); array[a][t] is the device address of array
// a (0 param, 1 grad, then the optimizer's state in the order of its kernel) of tensor t, and tensor t
// owns the elements [start[t], start[t + 1]) of the launch's flat index space.
#define GROUP_SIZE 24
#define GROUP_ARRAYS 5
struct TensorGroup {
    unsigned long long array[GROUP_ARRAYS][GROUP_SIZE];
    long long start[GROUP_SIZE + 1];
    long long count;
};
// The Python side (optim.TENSOR_GROUP) packs the same bytes: eight-byte fields only, so no padding.
static_assert(sizeof(TensorGroup) == 8 * (GROUP_ARRAYS * GROUP_SIZE + GROUP_SIZE + 2), "TensorGroup has padding");

// The tensor that owns flat element k: the last t with start[t] <= k (binary search over <= 24 starts).
__device__ __forceinline__ int owning_tensor(const TensorGroup& group, long long k) {
    int low = 0, high = (int)group.count - 1;
    while (low < high) {
        int middle = (low + high + 1) / 2;
        if (group.start[middle] <= k) low = middle; else high = middle - 1;
    }
    return low;
}

template <typename T> __device__ __forceinline__ T* group_array(const TensorGroup& group, int a, int t) {
    return reinterpret_cast<T*>(group.array[a][t]);
}

// Adam on flat element k of a group: the element k - start[t] of its owning tensor t.
template <typename T>
__device__ __forceinline__ void adam_group_element(const TensorGroup& group, long long k, T alpha,
                                                   T one_minus_beta_1, T one_minus_beta_2, T epsilon, T decay,
                                                   long long amsgrad) {
    int t = owning_tensor(group, k);
    adam_element(group_array<T>(group, 0, t), group_array<T>(group, 1, t), group_array<T>(group, 2, t),
                 group_array<T>(group, 3, t), group_array<T>(group, 4, t), k - group.start[t], alpha,
                 one_minus_beta_1, one_minus_beta_2, epsilon, decay, amsgrad);
}

// Adam over every tensor of the group: arrays param, grad, m, v, v_max (v_max: the param again
// without AMSGrad, never read). One grid-stride loop over all their elements.
template <typename T>
__global__ void adam_update_many(TensorGroup group, T alpha, T one_minus_beta_1, T one_minus_beta_2, T epsilon,
                                 T decay, long long amsgrad) {
    FOR_EACH_ELEMENT(k, group.start[group.count])
        adam_group_element(group, k, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay, amsgrad);
}

// RMSprop. ms = rho ms + (1 - rho) g^2; centered: mg = rho mg + (1 - rho) g and
// denominator = ms - mg^2 + eps, else ms + eps (eps INSIDE the root); step = lr g / sqrt(denominator);
// with momentum: vel = momentum vel + step, p -= vel; else p -= step.
template <typename T>
__device__ __forceinline__ void rmsprop_element(T* __restrict__ param, const T* __restrict__ grad,
                                                T* __restrict__ mean_square, T* __restrict__ mean_grad,
                                                T* __restrict__ velocity, long long i, T lr, T rho, T one_minus_rho,
                                                T momentum, T epsilon, T decay, long long centered,
                                                long long use_momentum) {
    T g = grad[i], p = param[i];
    T ms = rho * mean_square[i] + one_minus_rho * g * g;
    mean_square[i] = ms;
    T denominator = ms + epsilon;
    if (centered) {
        T mg = rho * mean_grad[i] + one_minus_rho * g;
        mean_grad[i] = mg;
        denominator -= mg * mg;
    }
    T step = lr * g / sqrt(denominator);
    if (use_momentum) {
        step = momentum * velocity[i] + step;
        velocity[i] = step;
    }
    param[i] = p * decay - step;
}

template <typename T>
__global__ void rmsprop_update(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ mean_square,
                               T* __restrict__ mean_grad, T* __restrict__ velocity,
                               long long n, T lr, T rho, T one_minus_rho, T momentum, T epsilon,
                               T decay, long long centered, long long use_momentum) {
    FOR_EACH_ELEMENT(i, n)
        rmsprop_element(param, grad, mean_square, mean_grad, velocity, i, lr, rho, one_minus_rho, momentum, epsilon,
                        decay, centered, use_momentum);
}

// Adagrad. acc += g^2; p -= lr g / sqrt(acc + eps).
template <typename T>
__device__ __forceinline__ void adagrad_element(T* __restrict__ param, const T* __restrict__ grad,
                                                T* __restrict__ accumulator, long long i, T lr, T epsilon, T decay) {
    T g = grad[i], p = param[i];
    T acc = accumulator[i] + g * g;
    accumulator[i] = acc;
    param[i] = p * decay - lr * g / sqrt(acc + epsilon);
}

template <typename T>
__global__ void adagrad_update(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ accumulator,
                               long long n, T lr, T epsilon, T decay) {
    FOR_EACH_ELEMENT(i, n) adagrad_element(param, grad, accumulator, i, lr, epsilon, decay);
}

// Adamax. m += (1 - b1)(g - m); u = max(b2 u, |g|); p -= step_size m / (u + eps), step_size = lr / (1 - b1^t).
template <typename T>
__device__ __forceinline__ void adamax_element(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                                               T* __restrict__ u, long long i, T step_size, T one_minus_beta_1,
                                               T beta_2, T epsilon, T decay) {
    T g = grad[i];
    T mi = m[i] + (g - m[i]) * one_minus_beta_1;
    T ui = nan_max(u[i] * beta_2, fabs(g));
    m[i] = mi;
    u[i] = ui;
    param[i] = param[i] * decay - step_size * mi / (ui + epsilon);
}

template <typename T>
__global__ void adamax_update(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                              T* __restrict__ u, long long n, T step_size, T one_minus_beta_1, T beta_2, T epsilon,
                              T decay) {
    FOR_EACH_ELEMENT(i, n) adamax_element(param, grad, m, u, i, step_size, one_minus_beta_1, beta_2, epsilon, decay);
}

// Nadam (Keras's). m += (1 - b1)(g - m); v += (1 - b2)(g^2 - v);
// p -= (momentum_step m + gradient_step g) / (sqrt(v velocity_scale) + eps): the host folds lr and Nadam's
// momentum schedule into the two steps and 1 / (1 - b2^t) into velocity_scale (optimizer_scalars.nadam_scalars).
template <typename T>
__device__ __forceinline__ void nadam_element(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                                              T* __restrict__ v, long long i, T momentum_step, T gradient_step,
                                              T one_minus_beta_1, T one_minus_beta_2, T velocity_scale, T epsilon,
                                              T decay) {
    T p = param[i], g = grad[i], mi = m[i], vi = v[i];
    mi += (g - mi) * one_minus_beta_1;
    vi += (g * g - vi) * one_minus_beta_2;
    m[i] = mi;
    v[i] = vi;
    param[i] = p * decay - (momentum_step * mi + gradient_step * g) / (sqrt(vi * velocity_scale) + epsilon);
}

template <typename T>
__global__ void nadam_update(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m, T* __restrict__ v,
                             long long n, T momentum_step, T gradient_step, T one_minus_beta_1, T one_minus_beta_2,
                             T velocity_scale, T epsilon, T decay) {
    FOR_EACH_ELEMENT(i, n)
        nadam_element(param, grad, m, v, i, momentum_step, gradient_step, one_minus_beta_1, one_minus_beta_2,
                      velocity_scale, epsilon, decay);
}

// Lion. p -= lr sign(b1 m + (1 - b1) g) (0 at 0; NaN stays NaN); then m = b2 m + (1 - b2) g.
template <typename T>
__device__ __forceinline__ void lion_element(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                                             long long i, T lr, T beta_1, T one_minus_beta_1, T beta_2,
                                             T one_minus_beta_2, T decay) {
    T g = grad[i], mi = m[i];
    T blend = mi * beta_1 + g * one_minus_beta_1;
    T step = blend > T(0) ? lr : (blend < T(0) ? -lr : blend * T(0));
    param[i] = param[i] * decay - step;
    m[i] = mi * beta_2 + g * one_minus_beta_2;
}

template <typename T>
__global__ void lion_update(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m, long long n, T lr,
                            T beta_1, T one_minus_beta_1, T beta_2, T one_minus_beta_2, T decay) {
    FOR_EACH_ELEMENT(i, n)
        lion_element(param, grad, m, i, lr, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, decay);
}

// Adadelta. a = rho a + (1 - rho) g^2; d = -sqrt(s + eps) g / sqrt(a + eps) (s before this step);
// s = rho s + (1 - rho) d^2; p += lr d.
template <typename T>
__device__ __forceinline__ void adadelta_element(T* __restrict__ param, const T* __restrict__ grad,
                                                 T* __restrict__ accumulated_grad, T* __restrict__ accumulated_delta,
                                                 long long i, T lr, T rho, T one_minus_rho, T epsilon, T decay) {
    T g = grad[i], s = accumulated_delta[i];
    T a = rho * accumulated_grad[i] + one_minus_rho * (g * g);
    T delta = -(sqrt(s + epsilon) * g / sqrt(a + epsilon));
    accumulated_grad[i] = a;
    accumulated_delta[i] = rho * s + one_minus_rho * (delta * delta);
    param[i] = param[i] * decay + lr * delta;
}

template <typename T>
__global__ void adadelta_update(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ accumulated_grad,
                                T* __restrict__ accumulated_delta, long long n, T lr, T rho, T one_minus_rho,
                                T epsilon, T decay) {
    FOR_EACH_ELEMENT(i, n)
        adadelta_element(param, grad, accumulated_grad, accumulated_delta, i, lr, rho, one_minus_rho, epsilon, decay);
}

// FTRL-proximal (Keras's formula). q = p decay; n' = n + g^2; z += g + two_l2_shrinkage q - (n'^c - n^c) / lr q;
// p = (clip(z, -l1, l1) - z) / (n'^c / lr + two_l2); n = n'.
template <typename T>
__device__ __forceinline__ void ftrl_element(T* __restrict__ param, const T* __restrict__ grad,
                                             T* __restrict__ accumulator, T* __restrict__ linear, long long i, T lr,
                                             T power, T two_l2_shrinkage, T two_l2, T l1, T decay) {
    T g = grad[i], n = accumulator[i], q = param[i] * decay;
    T grown = n + g * g;
    T grown_power = pow(grown, power);
    T z = linear[i] + ((g + two_l2_shrinkage * q) - (grown_power - pow(n, power)) / lr * q);
    T clipped = z < -l1 ? -l1 : (z > l1 ? l1 : z);
    linear[i] = z;
    param[i] = (clipped - z) / (grown_power / lr + two_l2);
    accumulator[i] = grown;
}

template <typename T>
__global__ void ftrl_update(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ accumulator,
                            T* __restrict__ linear, long long n, T lr, T power, T two_l2_shrinkage, T two_l2, T l1,
                            T decay) {
    FOR_EACH_ELEMENT(i, n)
        ftrl_element(param, grad, accumulator, linear, i, lr, power, two_l2_shrinkage, two_l2, l1, decay);
}

// The same updates with their scalars read from device memory, s[0], s[1], ... in the order above
// (the fields of the step's optimizer_scalars tuple). A CUDA Graph freezes the arguments passed by
// value, so a graph's update reads each step's scalars from an array the host refreshes before every
// launch (nnengine/backends/cuda_graphs.py). The scalars are loaded once per thread.
template <typename T>
__global__ void sgd_update_at(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ velocity,
                              long long n, const T* __restrict__ s, long long use_momentum, long long nesterov) {
    T lr = s[0], momentum = s[1], decay = s[2];
    FOR_EACH_ELEMENT(i, n) sgd_element(param, grad, velocity, i, lr, momentum, decay, use_momentum, nesterov);
}

template <typename T>
__global__ void adam_update_at(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                               T* __restrict__ v, T* __restrict__ v_max, long long n, const T* __restrict__ s,
                               long long amsgrad) {
    T alpha = s[0], one_minus_beta_1 = s[1], one_minus_beta_2 = s[2], epsilon = s[3], decay = s[4];
    FOR_EACH_ELEMENT(i, n)
        adam_element(param, grad, m, v, v_max, i, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay, amsgrad);
}

template <typename T>
__global__ void adam_update_many_at(TensorGroup group, const T* __restrict__ s, long long amsgrad) {
    T alpha = s[0], one_minus_beta_1 = s[1], one_minus_beta_2 = s[2], epsilon = s[3], decay = s[4];
    FOR_EACH_ELEMENT(k, group.start[group.count])
        adam_group_element(group, k, alpha, one_minus_beta_1, one_minus_beta_2, epsilon, decay, amsgrad);
}

template <typename T>
__global__ void rmsprop_update_at(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ mean_square,
                                  T* __restrict__ mean_grad, T* __restrict__ velocity, long long n,
                                  const T* __restrict__ s, long long centered, long long use_momentum) {
    T lr = s[0], rho = s[1], one_minus_rho = s[2], momentum = s[3], epsilon = s[4], decay = s[5];
    FOR_EACH_ELEMENT(i, n)
        rmsprop_element(param, grad, mean_square, mean_grad, velocity, i, lr, rho, one_minus_rho, momentum, epsilon,
                        decay, centered, use_momentum);
}

template <typename T>
__global__ void adagrad_update_at(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ accumulator,
                                  long long n, const T* __restrict__ s) {
    T lr = s[0], epsilon = s[1], decay = s[2];
    FOR_EACH_ELEMENT(i, n) adagrad_element(param, grad, accumulator, i, lr, epsilon, decay);
}

template <typename T>
__global__ void adamax_update_at(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                                 T* __restrict__ u, long long n, const T* __restrict__ s) {
    T step_size = s[0], one_minus_beta_1 = s[1], beta_2 = s[2], epsilon = s[3], decay = s[4];
    FOR_EACH_ELEMENT(i, n) adamax_element(param, grad, m, u, i, step_size, one_minus_beta_1, beta_2, epsilon, decay);
}

template <typename T>
__global__ void nadam_update_at(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m,
                                T* __restrict__ v, long long n, const T* __restrict__ s) {
    T momentum_step = s[0], gradient_step = s[1], one_minus_beta_1 = s[2], one_minus_beta_2 = s[3];
    T velocity_scale = s[4], epsilon = s[5], decay = s[6];
    FOR_EACH_ELEMENT(i, n)
        nadam_element(param, grad, m, v, i, momentum_step, gradient_step, one_minus_beta_1, one_minus_beta_2,
                      velocity_scale, epsilon, decay);
}

template <typename T>
__global__ void lion_update_at(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ m, long long n,
                               const T* __restrict__ s) {
    T lr = s[0], beta_1 = s[1], one_minus_beta_1 = s[2], beta_2 = s[3], one_minus_beta_2 = s[4], decay = s[5];
    FOR_EACH_ELEMENT(i, n)
        lion_element(param, grad, m, i, lr, beta_1, one_minus_beta_1, beta_2, one_minus_beta_2, decay);
}

template <typename T>
__global__ void adadelta_update_at(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ accumulated_grad,
                                   T* __restrict__ accumulated_delta, long long n, const T* __restrict__ s) {
    T lr = s[0], rho = s[1], one_minus_rho = s[2], epsilon = s[3], decay = s[4];
    FOR_EACH_ELEMENT(i, n)
        adadelta_element(param, grad, accumulated_grad, accumulated_delta, i, lr, rho, one_minus_rho, epsilon, decay);
}

template <typename T>
__global__ void ftrl_update_at(T* __restrict__ param, const T* __restrict__ grad, T* __restrict__ accumulator,
                               T* __restrict__ linear, long long n, const T* __restrict__ s) {
    T lr = s[0], power = s[1], two_l2_shrinkage = s[2], two_l2 = s[3], l1 = s[4], decay = s[5];
    FOR_EACH_ELEMENT(i, n)
        ftrl_element(param, grad, accumulator, linear, i, lr, power, two_l2_shrinkage, two_l2, l1, decay);
}
