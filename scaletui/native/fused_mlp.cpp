// Fused training of one-hidden-layer MLPs: forward, written-out backward and the optimiser in one pass per
// step, many steps per call, every model independent (scaletui/fused.py builds this file and calls it).
//
// Why a kernel of our own: a step of a small MLP is a few dozen tiny tensor operations, and in PyTorch each
// costs more in dispatch and in allocating its temporaries than in arithmetic. Here a model's weights,
// moments and a block of its points stay in L1 for all the steps of a call, and no step allocates.
//
// Why each model is computed alone, by one thread, in a fixed order: a model's numbers then depend only on
// the model (its width, its data, its step), never on how many models share the call or on which thread
// runs it, so a model trains bit for bit the same alone or in a sweep, and a call of k steps ends exactly
// where k calls of one step do (checkpoints resume bit for bit).
//
// Built with -ffast-math so that exp vectorises through glibc's libmvec and sums reassociate into vector
// lanes; finiteness is therefore tested on the bits, which that flag cannot optimise away.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

namespace {

enum Activation { SILU = 0, RELU = 1, TANH = 2, GELU = 3, SIGMOID = 4 };
enum Optimizer { ADAM = 0, SGD = 1 };

bool finite(double value) {
    uint64_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return (bits & 0x7ff0000000000000ULL) != 0x7ff0000000000000ULL;
}

bool finite(float value) {
    uint32_t bits;
    std::memcpy(&bits, &value, sizeof bits);
    return (bits & 0x7f800000U) != 0x7f800000U;
}

// Per activation: an auxiliary u(z) (the costly part, computed once per unit and point), then the value
// and the slope from z and u.
template <typename T, int A>
inline T aux(T z) {
    if constexpr (A == SILU || A == SIGMOID) return T(1) / (T(1) + std::exp(-z));
    if constexpr (A == TANH) return std::tanh(z);
    if constexpr (A == GELU) return T(0.5) * (T(1) + std::erf(z * T(0.70710678118654752440)));
    return z;  // RELU
}

template <typename T, int A>
inline T value(T z, T u) {
    if constexpr (A == SILU || A == GELU) return z * u;
    if constexpr (A == SIGMOID || A == TANH) return u;
    return z > T(0) ? z : T(0);  // RELU
}

template <typename T, int A>
inline T slope(T z, T u) {
    if constexpr (A == SILU) return u * (T(1) + z * (T(1) - u));
    if constexpr (A == SIGMOID) return u * (T(1) - u);
    if constexpr (A == TANH) return T(1) - u * u;
    if constexpr (A == GELU) return u + z * std::exp(T(-0.5) * z * z) * T(0.39894228040143267794);
    return z > T(0) ? T(1) : T(0);  // RELU
}

struct Shape {
    int64_t models, d, width, n;           // n: points per step (the batch)
    int64_t x_model, x_step, y_model, y_step;  // strides in elements; 0 where all models or steps share data
};

struct Schedule {
    int64_t steps, first_step, t0;  // t0: optimiser steps taken before this call
    const double* lr;               // one per step of the call
    int optimizer;
    double momentum;
};

// The flat buffer's four tensors, each model-major: W0 (models, d, W), b0 (models, 1, W), W1 (models, W, 1),
// b1 (models, 1, 1); the moments share the layout.
template <typename T>
struct Segments {
    T* at[4];
    int64_t size[4];
    Segments(T* base, const Shape& s, int64_t model) {
        const int64_t dw = s.d * s.width, w = s.width, m = s.models;
        int64_t offsets[4] = {model * dw, m * dw + model * w, m * (dw + w) + model * w, m * (dw + 2 * w) + model};
        int64_t sizes[4] = {dw, w, w, 1};
        for (int k = 0; k < 4; ++k) at[k] = base ? base + offsets[k] : nullptr, size[k] = sizes[k];
    }
};

template <typename T, int A>
class ModelTrainer {
  public:
    explicit ModelTrainer(const Shape& shape) : s(shape) {
        // Points per block: a block's pre-activations and auxiliaries fill about 32 KiB, whatever the batch.
        block = std::clamp<int64_t>(2048 / std::max<int64_t>(1, s.width), 8, 512);
        block = std::min(block, s.n);
        z.resize(s.width * block);
        u.resize(s.width * block);
        xt.resize(s.d * block);
        out.resize(block);
        g.resize(block);
        dz.resize(block);
        grad.resize(s.d * s.width + 2 * s.width + 1);
    }

    // One step of one model: the loss before the update, and the gradient in `grad` ([W0, b0, W1, b1]).
    T loss_and_gradient(const T* W0, const T* b0, const T* W1, const T* b1, const T* x, const T* y) {
        const int64_t W = s.width, d = s.d;
        T* gW0 = grad.data();
        T* gb0 = gW0 + d * W;
        T* gW1 = gb0 + W;
        T* gb1 = gW1 + W;
        std::fill(grad.begin(), grad.end(), T(0));
        const T scale = T(2) / T(s.n);
        T loss = 0;
        for (int64_t n0 = 0; n0 < s.n; n0 += block) {
            const int64_t nb = std::min(block, s.n - n0);
            for (int64_t i = 0; i < d; ++i)
                for (int64_t j = 0; j < nb; ++j) xt[i * block + j] = x[(n0 + j) * d + i];
            for (int64_t j = 0; j < nb; ++j) out[j] = b1[0];
            for (int64_t h = 0; h < W; ++h) {
                T* zh = z.data() + h * block;
                T* uh = u.data() + h * block;
                const T bias = b0[h], w1 = W1[h];
                for (int64_t j = 0; j < nb; ++j) zh[j] = bias;
                for (int64_t i = 0; i < d; ++i) {
                    const T w0 = W0[i * W + h];
                    const T* xi = xt.data() + i * block;
                    for (int64_t j = 0; j < nb; ++j) zh[j] += xi[j] * w0;
                }
                for (int64_t j = 0; j < nb; ++j) {
                    uh[j] = aux<T, A>(zh[j]);
                    out[j] += w1 * value<T, A>(zh[j], uh[j]);
                }
            }
            T gsum = 0;
            for (int64_t j = 0; j < nb; ++j) {
                const T r = out[j] - y[n0 + j];
                loss += r * r;
                g[j] = scale * r;
                gsum += g[j];
            }
            gb1[0] += gsum;
            for (int64_t h = 0; h < W; ++h) {
                const T* zh = z.data() + h * block;
                const T* uh = u.data() + h * block;
                const T w1 = W1[h];
                T sw1 = 0, sb0 = 0;
                for (int64_t j = 0; j < nb; ++j) {
                    sw1 += g[j] * value<T, A>(zh[j], uh[j]);
                    dz[j] = g[j] * w1 * slope<T, A>(zh[j], uh[j]);
                    sb0 += dz[j];
                }
                gW1[h] += sw1;
                gb0[h] += sb0;
                for (int64_t i = 0; i < d; ++i) {
                    const T* xi = xt.data() + i * block;
                    T sw0 = 0;
                    for (int64_t j = 0; j < nb; ++j) sw0 += xi[j] * dz[j];
                    gW0[i * W + h] += sw0;
                }
            }
        }
        return loss / T(s.n);
    }

    // Steps of one model; stops updating it at the first step whose loss is not finite.
    void train(int64_t model, T* params, T* m1, T* m2, const T* x, const T* y, const Schedule& sc, uint8_t* alive,
               int64_t* diverged, T* running) {
        if (!alive[model]) return;
        Segments<T> p(params, s, model), a(m1, s, model), b(m2, s, model);
        for (int64_t k = 0; k < sc.steps; ++k) {
            const T* xk = x + model * s.x_model + k * s.x_step;
            const T* yk = y + model * s.y_model + k * s.y_step;
            const T loss = loss_and_gradient(p.at[0], p.at[1], p.at[2], p.at[3], xk, yk);
            if (!finite(loss)) {
                alive[model] = 0;
                diverged[model] = sc.first_step + k;
                return;
            }
            if (running) running[model] += loss;
            update(p, a, b, sc, k);
        }
    }

  private:
    void update(Segments<T>& p, Segments<T>& m1, Segments<T>& m2, const Schedule& sc, int64_t k) {
        const double lr = sc.lr[k];
        const T* gr = grad.data();
        if (sc.optimizer == ADAM) {
            const double t = double(sc.t0 + k + 1);
            const T b1 = T(0.9), b2 = T(0.999), eps = T(1e-8);
            const T correction2 = T(1 - std::pow(0.999, t));
            const T step = T(lr / (1 - std::pow(0.9, t)));
            for (int seg = 0; seg < 4; ++seg) {
                T *w = p.at[seg], *m = m1.at[seg], *v = m2.at[seg];
                for (int64_t i = 0; i < p.size[seg]; ++i) {
                    m[i] = m[i] * b1 + gr[i] * (T(1) - b1);
                    v[i] = v[i] * b2 + gr[i] * gr[i] * (T(1) - b2);
                    w[i] -= m[i] / (std::sqrt(v[i] / correction2) + eps) * step;
                }
                gr += p.size[seg];
            }
        } else if (sc.momentum > 0) {
            const T mu = T(sc.momentum);
            for (int seg = 0; seg < 4; ++seg) {
                T *w = p.at[seg], *m = m1.at[seg];
                for (int64_t i = 0; i < p.size[seg]; ++i) {
                    m[i] = m[i] * mu + gr[i];
                    w[i] -= m[i] * T(lr);
                }
                gr += p.size[seg];
            }
        } else {
            for (int seg = 0; seg < 4; ++seg) {
                T* w = p.at[seg];
                for (int64_t i = 0; i < p.size[seg]; ++i) w[i] -= gr[i] * T(lr);
                gr += p.size[seg];
            }
        }
    }

    const Shape s;
    int64_t block;
    std::vector<T> z, u, xt, out, g, dz, grad;
};

// Models are handed out one at a time from a shared counter: no thread waits on another between steps, so
// a core taken by another process slows the call by its share of the work, not by a barrier per step.
template <typename T, int A>
void train_all(const Shape& s, const Schedule& sc, T* params, T* m1, T* m2, const T* x, const T* y,
               uint8_t* alive, int64_t* diverged, T* running, int threads) {
    std::atomic<int64_t> next{0};
    auto work = [&] {
        ModelTrainer<T, A> trainer(s);
        for (int64_t model = next++; model < s.models; model = next++)
            trainer.train(model, params, m1, m2, x, y, sc, alive, diverged, running);
    };
    const int64_t helpers = std::min<int64_t>(threads, s.models) - 1;
    std::vector<std::thread> pool;
    for (int64_t i = 0; i < helpers; ++i) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
}

template <typename T>
int dispatch(int activation, const Shape& s, const Schedule& sc, T* params, T* m1, T* m2, const T* x, const T* y,
             uint8_t* alive, int64_t* diverged, T* running, int threads) {
    switch (activation) {
        case SILU: train_all<T, SILU>(s, sc, params, m1, m2, x, y, alive, diverged, running, threads); return 0;
        case RELU: train_all<T, RELU>(s, sc, params, m1, m2, x, y, alive, diverged, running, threads); return 0;
        case TANH: train_all<T, TANH>(s, sc, params, m1, m2, x, y, alive, diverged, running, threads); return 0;
        case GELU: train_all<T, GELU>(s, sc, params, m1, m2, x, y, alive, diverged, running, threads); return 0;
        case SIGMOID: train_all<T, SIGMOID>(s, sc, params, m1, m2, x, y, alive, diverged, running, threads); return 0;
        default: return 1;
    }
}

}  // namespace

#define SCALETUI_ENTRY(NAME, T)                                                                                    \
    extern "C" __attribute__((visibility("default"))) int NAME(T* params, T* m1, T* m2, const int64_t* shape, const T* x, const T* y, int64_t steps,    \
                        int64_t first_step, int64_t t0, const double* lr, int optimizer, double momentum,          \
                        int activation, uint8_t* alive, int64_t* diverged, T* running, int threads) {              \
        const Shape s{shape[0], shape[1], shape[2], shape[3], shape[4], shape[5], shape[6], shape[7]};             \
        const Schedule sc{steps, first_step, t0, lr, optimizer, momentum};                                         \
        return dispatch<T>(activation, s, sc, params, m1, m2, x, y, alive, diverged, running, threads);           \
    }

SCALETUI_ENTRY(scaletui_train_f64, double)
SCALETUI_ENTRY(scaletui_train_f32, float)
