// BN254 base field for the MSM kernels (fp.cu, then msm.cu, are compiled as one source by
// NVRTC): Montgomery form (R = 2^256) on eight 32-bit limbs, little-endian, always below p.

typedef unsigned int u32;
typedef unsigned long long u64;

#define NL 8

struct Fp {
    u32 v[NL];
};

// The modulus p.
__device__ __constant__ u32 P_MOD[NL] = {0xd87cfd47, 0x3c208c16, 0x6871ca8d, 0x97816a91,
                                         0x8181585d, 0xb85045b6, 0xe131a029, 0x30644e72};
// R^2 mod p, to enter Montgomery form.
__device__ __constant__ u32 R2_MOD[NL] = {0x538afa89, 0xf32cfc5b, 0xd44501fb, 0xb5e71911,
                                          0x0a417ff6, 0x47ab1eff, 0xcab8351f, 0x06d89f71};
// R mod p: one in Montgomery form.
__device__ __constant__ u32 ONE_MONT[NL] = {0xc58f0d9d, 0xd35d438d, 0xf5c70b3d, 0x0a78eb28,
                                            0x7879462c, 0x666ea36f, 0x9a07df2f, 0x0e0a77c1};
// -p^-1 mod 2^32.
#define INV32 0xe4866389u

__device__ __forceinline__ Fp fp_zero() {
    Fp r;
#pragma unroll
    for (int i = 0; i < NL; i++) r.v[i] = 0;
    return r;
}

__device__ __forceinline__ Fp fp_const(const u32* c) {
    Fp r;
#pragma unroll
    for (int i = 0; i < NL; i++) r.v[i] = c[i];
    return r;
}

__device__ __forceinline__ bool fp_is_zero(const Fp& a) {
    u32 acc = 0;
#pragma unroll
    for (int i = 0; i < NL; i++) acc |= a.v[i];
    return acc == 0;
}

__device__ __forceinline__ bool fp_eq(const Fp& a, const Fp& b) {
    u32 acc = 0;
#pragma unroll
    for (int i = 0; i < NL; i++) acc |= a.v[i] ^ b.v[i];
    return acc == 0;
}

// a >= p
__device__ __forceinline__ bool fp_geq_p(const Fp& a) {
    for (int i = NL - 1; i >= 0; i--) {
        if (a.v[i] > P_MOD[i]) return true;
        if (a.v[i] < P_MOD[i]) return false;
    }
    return true;
}

// a - p over 256 bits (assumes a >= p, or a carry bit above a).
__device__ __forceinline__ Fp fp_sub_p(const Fp& a) {
    Fp r;
    u64 borrow = 0;
#pragma unroll
    for (int i = 0; i < NL; i++) {
        u64 d = (u64)a.v[i] - P_MOD[i] - borrow;
        r.v[i] = (u32)d;
        borrow = (d >> 32) & 1;
    }
    return r;
}

__device__ __forceinline__ Fp fp_add(const Fp& a, const Fp& b) {
    // a, b < p < 2^254: the sum fits in 256 bits.
    Fp r;
    u64 carry = 0;
#pragma unroll
    for (int i = 0; i < NL; i++) {
        u64 s = (u64)a.v[i] + b.v[i] + carry;
        r.v[i] = (u32)s;
        carry = s >> 32;
    }
    return fp_geq_p(r) ? fp_sub_p(r) : r;
}

__device__ __forceinline__ Fp fp_sub(const Fp& a, const Fp& b) {
    Fp r;
    u64 borrow = 0;
#pragma unroll
    for (int i = 0; i < NL; i++) {
        u64 d = (u64)a.v[i] - b.v[i] - borrow;
        r.v[i] = (u32)d;
        borrow = (d >> 32) & 1;
    }
    if (borrow) {
        u64 carry = 0;
#pragma unroll
        for (int i = 0; i < NL; i++) {
            u64 s = (u64)r.v[i] + P_MOD[i] + carry;
            r.v[i] = (u32)s;
            carry = s >> 32;
        }
    }
    return r;
}

__device__ __forceinline__ Fp fp_neg(const Fp& a) {
    return fp_sub(fp_zero(), a);
}

__device__ __forceinline__ Fp fp_double(const Fp& a) {
    return fp_add(a, a);
}

// Montgomery multiplication a·b/R mod p (CIOS, 32-bit words, 64-bit accumulators).
__device__ Fp fp_mul(const Fp& a, const Fp& b) {
    u32 t[NL + 2];
#pragma unroll
    for (int i = 0; i < NL + 2; i++) t[i] = 0;
#pragma unroll
    for (int i = 0; i < NL; i++) {
        u64 c = 0;
#pragma unroll
        for (int j = 0; j < NL; j++) {
            u64 s = (u64)t[j] + (u64)a.v[j] * b.v[i] + c;
            t[j] = (u32)s;
            c = s >> 32;
        }
        u64 s = (u64)t[NL] + c;
        t[NL] = (u32)s;
        t[NL + 1] = (u32)(s >> 32);
        u32 m = t[0] * INV32;
        s = (u64)t[0] + (u64)m * P_MOD[0];
        c = s >> 32;
#pragma unroll
        for (int j = 1; j < NL; j++) {
            s = (u64)t[j] + (u64)m * P_MOD[j] + c;
            t[j - 1] = (u32)s;
            c = s >> 32;
        }
        s = (u64)t[NL] + c;
        t[NL - 1] = (u32)s;
        t[NL] = t[NL + 1] + (u32)(s >> 32);
    }
    Fp r;
#pragma unroll
    for (int i = 0; i < NL; i++) r.v[i] = t[i];
    // The result is below 2p; t[NL] is its bit 256.
    return (t[NL] != 0 || fp_geq_p(r)) ? fp_sub_p(r) : r;
}

__device__ __forceinline__ Fp fp_sqr(const Fp& a) {
    return fp_mul(a, a);
}

__device__ __forceinline__ Fp fp_load(const u32* src) {
    Fp r;
#pragma unroll
    for (int i = 0; i < NL; i++) r.v[i] = src[i];
    return r;
}

__device__ __forceinline__ void fp_store(u32* dst, const Fp& a) {
#pragma unroll
    for (int i = 0; i < NL; i++) dst[i] = a.v[i];
}

// Out of Montgomery form: multiply by 1.
__device__ __forceinline__ Fp fp_from_mont(const Fp& a) {
    Fp one = fp_zero();
    one.v[0] = 1;
    return fp_mul(a, one);
}
