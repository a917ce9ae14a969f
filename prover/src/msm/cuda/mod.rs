//! The CUDA MSM backend. With feature `cuda`, [`CudaMsm`] drives kernels compiled at run time
//! by NVRTC through `cudarc` (no CUDA toolkit is needed to build); without it, a stub with the
//! same API returns [`crate::Error::CudaUnavailable`], so callers need no `#[cfg]`.
//!
//! # Status
//! The kernels (`fp.cu` and `msm.cu`, compiled as one source) are compile-checked with NVRTC
//! in CI and run on the CPU in the tests (the source also builds as host C++), which checks
//! their arithmetic and the host's plan and combination. The GPU path itself (driver calls, launches) has not run on a GPU yet:
//! treat it as unverified until its differential test passes on one.

#[cfg(feature = "cuda")]
mod device;
#[cfg(test)]
mod host_check;
#[cfg(any(feature = "cuda", test))]
mod plan;
#[cfg(not(feature = "cuda"))]
mod stub;

#[cfg(feature = "cuda")]
pub use device::CudaMsm;
#[cfg(not(feature = "cuda"))]
pub use stub::CudaMsm;

/// The kernels' CUDA C++ source.
#[cfg(any(feature = "cuda", test))]
pub(crate) const KERNELS: &str = concat!(include_str!("fp.cu"), include_str!("msm.cu"));
