// In-place optimizer updates, Keras's formulas, one thread per parameter (grid-stride loop).
// The scalars are those of nnengine/backends/optimizer_scalars.py, by the same names and in the
// same order (as in kernels/cpu/optim.py). Every kernel first applies decoupled weight decay as
// a factor: decay = 1 - lr * weight_decay (1 when there is none), i.e. param -= lr * wd * param.
#include "common.cuh"

// SGD. Without momentum: p -= lr g. With it: v = momentum v - lr g, then
// p += momentum v - lr g (nesterov) or p += v.
template <typename T>
__global__ void sgd_update(T* param, const T* grad, T* velocity, long long n, T lr, T momentum,
                           T decay, long long use_momentum, long long nesterov) {
    FOR_EACH_ELEMENT(i, n) {
        T p = param[i] * decay, g = grad[i];
        if (!use_momentum) {
            p -= lr * g;
        } else {
            T v = momentum * velocity[i] - lr * g;
            velocity[i] = v;
            p += nesterov ? momentum * v - lr * g : v;
        }
        param[i] = p;
    }
}

// Adam / AdamW (decay < 1) / AMSGrad. m += (1 - b1)(g - m); v += (1 - b2)(g^2 - v);
// with amsgrad v_max = max(v_max, v) replaces v in the step; p -= alpha m / (sqrt(v) + eps),
// where alpha = lr sqrt(1 - b2^t) / (1 - b1^t) folds both bias corrections (computed on the host).
template <typename T>
__global__ void adam_update(T* param, const T* grad, T* m, T* v, T* v_max, long long n, T alpha,
                            T one_minus_beta_1, T one_minus_beta_2, T epsilon, T decay,
                            long long amsgrad) {
    FOR_EACH_ELEMENT(i, n) {
        T g = grad[i];
        T mi = m[i] + one_minus_beta_1 * (g - m[i]);
        T vi = v[i] + one_minus_beta_2 * (g * g - v[i]);
        m[i] = mi;
        v[i] = vi;
        if (amsgrad) {
            vi = nan_max(v_max[i], vi);
            v_max[i] = vi;
        }
        param[i] = param[i] * decay - alpha * mi / (sqrt(vi) + epsilon);
    }
}

// RMSprop. ms = rho ms + (1 - rho) g^2; centered: mg = rho mg + (1 - rho) g and
// denominator = ms - mg^2 + eps, else ms + eps (eps INSIDE the root); step = lr g / sqrt(denominator);
// with momentum: vel = momentum vel + step, p -= vel; else p -= step.
template <typename T>
__global__ void rmsprop_update(T* param, const T* grad, T* mean_square, T* mean_grad, T* velocity,
                               long long n, T lr, T rho, T one_minus_rho, T momentum, T epsilon,
                               T decay, long long centered, long long use_momentum) {
    FOR_EACH_ELEMENT(i, n) {
        T g = grad[i];
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
        param[i] = param[i] * decay - step;
    }
}

// Adagrad. acc += g^2; p -= lr g / sqrt(acc + eps).
template <typename T>
__global__ void adagrad_update(T* param, const T* grad, T* accumulator, long long n, T lr,
                               T epsilon, T decay) {
    FOR_EACH_ELEMENT(i, n) {
        T g = grad[i];
        T acc = accumulator[i] + g * g;
        accumulator[i] = acc;
        param[i] = param[i] * decay - lr * g / sqrt(acc + epsilon);
    }
}
