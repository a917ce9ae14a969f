// BN254 G1 multi-scalar multiplication kernels, compiled at run time by NVRTC.
//
// Field (fp.cu, prepended to this file): the BN254 base field in Montgomery form (R = 2^256)
// on eight 32-bit limbs, little-endian. Points: Jacobian (X, Y, Z) with x = X/Z^2, y = Y/Z^3; Z = 0 is infinity.
//
// The host sorts the signed window digits of the scalars by (window, bucket) into a CSR list
// (offsets, entries); entry = base index | sign << 31. Then:
//   to_montgomery   bases (canonical) into Montgomery form, in place;
//   bucket_sums     one thread per (window, bucket): the sum of its signed bases;
//   bucket_reduce   one thread per (window, segment of seg_len buckets): the segment's
//                   weighted sum Σ (b - lo + 1)·B_b and plain sum Σ B_b, written canonical.
// The host combines segments and windows (a few thousand points).
//
// The same source builds as host C++, so that the kernels can be tested on a machine without
// a GPU: the host test (host_check.rs) defines the CUDA keywords away and runs each kernel
// once per thread index.

#define GLOBAL_ID (blockIdx.x * blockDim.x + threadIdx.x)

// Jacobian point; z == 0 is infinity. (Fp and its arithmetic are in fp.cu.)
struct Jac {
    Fp x, y, z;
};

__device__ __forceinline__ Jac jac_infinity() {
    Jac r;
    r.x = fp_zero();
    r.y = fp_zero();
    r.z = fp_zero();
    return r;
}

__device__ __forceinline__ bool jac_is_infinity(const Jac& p) {
    return fp_is_zero(p.z);
}

// 2P for y^2 = x^3 + b (dbl-2009-l). Infinity stays infinity (Z3 = 2·Y·Z = 0).
__device__ Jac jac_double(const Jac& p) {
    Fp a = fp_sqr(p.x);
    Fp b = fp_sqr(p.y);
    Fp c = fp_sqr(b);
    Fp d = fp_sub(fp_sub(fp_sqr(fp_add(p.x, b)), a), c);
    d = fp_double(d);
    Fp e = fp_add(fp_double(a), a);
    Fp f = fp_sqr(e);
    Jac r;
    r.x = fp_sub(f, fp_double(d));
    Fp c8 = fp_double(fp_double(fp_double(c)));
    r.y = fp_sub(fp_mul(e, fp_sub(d, r.x)), c8);
    r.z = fp_double(fp_mul(p.y, p.z));
    return r;
}

// P + (x2, y2) for an affine point that is not infinity.
__device__ Jac jac_add_affine(const Jac& p, const Fp& x2, const Fp& y2) {
    if (jac_is_infinity(p)) {
        Jac r;
        r.x = x2;
        r.y = y2;
        r.z = fp_const(ONE_MONT);
        return r;
    }
    Fp z1z1 = fp_sqr(p.z);
    Fp u2 = fp_mul(x2, z1z1);
    Fp s2 = fp_mul(y2, fp_mul(p.z, z1z1));
    Fp h = fp_sub(u2, p.x);
    Fp rr = fp_sub(s2, p.y);
    if (fp_is_zero(h)) {
        return fp_is_zero(rr) ? jac_double(p) : jac_infinity();
    }
    Fp hh = fp_sqr(h);
    Fp hhh = fp_mul(h, hh);
    Fp v = fp_mul(p.x, hh);
    Jac r;
    r.x = fp_sub(fp_sub(fp_sqr(rr), hhh), fp_double(v));
    r.y = fp_sub(fp_mul(rr, fp_sub(v, r.x)), fp_mul(p.y, hhh));
    r.z = fp_mul(p.z, h);
    return r;
}

// P + Q, both Jacobian.
__device__ Jac jac_add(const Jac& p, const Jac& q) {
    if (jac_is_infinity(p)) return q;
    if (jac_is_infinity(q)) return p;
    Fp z1z1 = fp_sqr(p.z);
    Fp z2z2 = fp_sqr(q.z);
    Fp u1 = fp_mul(p.x, z2z2);
    Fp u2 = fp_mul(q.x, z1z1);
    Fp s1 = fp_mul(p.y, fp_mul(q.z, z2z2));
    Fp s2 = fp_mul(q.y, fp_mul(p.z, z1z1));
    Fp h = fp_sub(u2, u1);
    Fp rr = fp_sub(s2, s1);
    if (fp_is_zero(h)) {
        return fp_is_zero(rr) ? jac_double(p) : jac_infinity();
    }
    Fp hh = fp_sqr(h);
    Fp hhh = fp_mul(h, hh);
    Fp v = fp_mul(u1, hh);
    Jac r;
    r.x = fp_sub(fp_sub(fp_sqr(rr), hhh), fp_double(v));
    r.y = fp_sub(fp_mul(rr, fp_sub(v, r.x)), fp_mul(s1, hhh));
    r.z = fp_mul(fp_mul(p.z, q.z), h);
    return r;
}

__device__ __forceinline__ Jac jac_load(const u32* src) {
    Jac r;
    r.x = fp_load(src);
    r.y = fp_load(src + NL);
    r.z = fp_load(src + 2 * NL);
    return r;
}

__device__ __forceinline__ void jac_store(u32* dst, const Jac& p) {
    fp_store(dst, p.x);
    fp_store(dst + NL, p.y);
    fp_store(dst + 2 * NL, p.z);
}

// data: count field elements (8 limbs each), canonical -> Montgomery, in place.
extern "C" __global__ void to_montgomery(u32* data, u32 count) {
    u32 i = GLOBAL_ID;
    if (i >= count) return;
    fp_store(data + NL * i, fp_mul(fp_load(data + NL * i), fp_const(R2_MOD)));
}

// bases: affine (x, y) in Montgomery form, 16 limbs each. offsets: total_buckets + 1 entries.
// sums: total_buckets Jacobian points (24 limbs each), Montgomery form.
extern "C" __global__ void bucket_sums(const u32* bases, const u32* offsets, const u32* entries, u32* sums,
                                       u32 total_buckets) {
    u32 b = GLOBAL_ID;
    if (b >= total_buckets) return;
    Jac acc = jac_infinity();
    for (u32 k = offsets[b]; k < offsets[b + 1]; k++) {
        u32 e = entries[k];
        const u32* base = bases + 2 * NL * (e & 0x7fffffffu);
        Fp y = fp_load(base + NL);
        if (e >> 31) y = fp_neg(y);
        acc = jac_add_affine(acc, fp_load(base), y);
    }
    jac_store(sums + 3 * NL * b, acc);
}

// One thread per (window, segment): out gets (Σ (b - lo + 1)·B_b, Σ B_b) over the segment's
// buckets, canonical (48 limbs per thread).
extern "C" __global__ void bucket_reduce(const u32* sums, u32* out, u32 buckets_per_window, u32 windows, u32 seg_len) {
    u32 segs = (buckets_per_window + seg_len - 1) / seg_len;
    u32 t = GLOBAL_ID;
    if (t >= windows * segs) return;
    u32 w = t / segs;
    u32 lo = (t % segs) * seg_len;
    u32 hi = lo + seg_len < buckets_per_window ? lo + seg_len : buckets_per_window;
    Jac running = jac_infinity();
    Jac total = jac_infinity();
    for (u32 b = hi; b > lo; b--) {
        running = jac_add(running, jac_load(sums + 3 * NL * (w * buckets_per_window + b - 1)));
        total = jac_add(total, running);
    }
    u32* dst = out + 6 * NL * t;
    fp_store(dst, fp_from_mont(total.x));
    fp_store(dst + NL, fp_from_mont(total.y));
    fp_store(dst + 2 * NL, fp_from_mont(total.z));
    fp_store(dst + 3 * NL, fp_from_mont(running.x));
    fp_store(dst + 4 * NL, fp_from_mont(running.y));
    fp_store(dst + 5 * NL, fp_from_mont(running.z));
}
