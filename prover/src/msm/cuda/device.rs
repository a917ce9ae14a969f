//! The CUDA MSM (feature `cuda`): host plan, three kernel launches, host combination.

use std::sync::Arc;

use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, LaunchConfig, PushKernelArg};
use cudarc::nvrtc::{compile_ptx, Ptx};
use halo2_proofs::halo2curves::bn256::{Fr, G1Affine, G1};
use halo2_proofs::halo2curves::group::Group;

use super::plan::{finish, plan, Plan, SEGMENT};
use super::KERNELS;
use crate::error::{Error, Result};
use crate::msm::pippenger::drop_infinity;
use crate::msm::{check_lengths, MsmBackend};

/// Threads per block.
const BLOCK: u32 = 128;

/// The CUDA MSM on device 0. Unverified on a GPU (see the module docs).
pub struct CudaMsm {
    stream: Arc<CudaStream>,
    to_montgomery: CudaFunction,
    bucket_sums: CudaFunction,
    bucket_reduce: CudaFunction,
    _module: Arc<CudaModule>,
}

impl std::fmt::Debug for CudaMsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CudaMsm").finish_non_exhaustive()
    }
}

fn unavailable(reason: impl Into<String>) -> Error {
    Error::CudaUnavailable { reason: reason.into() }
}

fn cuda_err(stage: &'static str) -> impl Fn(cudarc::driver::DriverError) -> Error {
    move |e| Error::Cuda { stage, reason: e.to_string() }
}

impl CudaMsm {
    /// Opens device 0 and compiles the kernels. [`Error::CudaUnavailable`] (with the reason)
    /// when there is no driver, no GPU or no NVRTC: callers fall back to a CPU backend.
    pub fn new() -> Result<Self> {
        // SAFETY: only tries to dlopen the driver library (and closes it again).
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            return Err(unavailable("libcuda not found (no NVIDIA driver)"));
        }
        // cudarc panics where a library lacks a symbol it needs; report that as unavailable.
        let ctx = std::panic::catch_unwind(|| CudaContext::new(0))
            .map_err(|_| unavailable("the CUDA driver could not be initialised"))?
            .map_err(|e| unavailable(format!("no CUDA device: {e}")))?;
        let ptx = Self::compile_kernels()?;
        let module = ctx.load_module(ptx).map_err(cuda_err("module load"))?;
        let load = |name: &str| module.load_function(name).map_err(cuda_err("function load"));
        Ok(CudaMsm {
            stream: ctx.default_stream(),
            to_montgomery: load("to_montgomery")?,
            bucket_sums: load("bucket_sums")?,
            bucket_reduce: load("bucket_reduce")?,
            _module: module,
        })
    }

    /// Compiles the kernel source with NVRTC: [`Error::CudaUnavailable`] if libnvrtc cannot
    /// be loaded, [`Error::Cuda`] with NVRTC's log if it rejects the source.
    pub fn compile_kernels() -> Result<Ptx> {
        // SAFETY: only tries to dlopen libnvrtc (and closes it again).
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            return Err(unavailable("no libnvrtc on the library path; the nvidia-cuda-nvrtc-cu12 wheel has one in nvidia/cuda_nvrtc/lib"));
        }
        compile_ptx(KERNELS).map_err(|e| Error::Cuda { stage: "NVRTC compile", reason: format!("{e:?}") })
    }

    fn run(&self, plan: &Plan) -> Result<Vec<u32>> {
        let s = &self.stream;
        let mut bases = s.clone_htod(&plan.bases).map_err(cuda_err("copy to device"))?;
        let offsets = s.clone_htod(&plan.offsets).map_err(cuda_err("copy to device"))?;
        // An empty device buffer is not allowed: keep one dummy entry.
        let entries =
            s.clone_htod(if plan.entries.is_empty() { &[0u32][..] } else { &plan.entries }).map_err(cuda_err("copy to device"))?;
        let total = (plan.windows * plan.buckets) as u32;
        let mut sums = s.alloc_zeros::<u32>(total as usize * 24).map_err(cuda_err("alloc"))?;
        let mut out = s.alloc_zeros::<u32>(plan.reduce_threads() * 48).map_err(cuda_err("alloc"))?;
        let elements = (plan.bases.len() / 8) as u32;
        let (per_window, windows, seg) = (plan.buckets as u32, plan.windows as u32, SEGMENT as u32);
        let reduce_threads = plan.reduce_threads() as u32;
        // SAFETY: the argument lists match the kernels' signatures in msm.cu, every buffer is
        // as long as the kernels index (bases: elements·8, offsets: total+1, sums: total·24,
        // out: reduce_threads·48), and each kernel returns early past its thread count.
        unsafe {
            let mut b = s.launch_builder(&self.to_montgomery);
            b.arg(&mut bases).arg(&elements).launch(grid(elements)).map_err(cuda_err("launch to_montgomery"))?;
            let mut b = s.launch_builder(&self.bucket_sums);
            b.arg(&bases).arg(&offsets).arg(&entries).arg(&mut sums).arg(&total);
            b.launch(grid(total)).map_err(cuda_err("launch bucket_sums"))?;
            let mut b = s.launch_builder(&self.bucket_reduce);
            b.arg(&sums).arg(&mut out).arg(&per_window).arg(&windows).arg(&seg);
            b.launch(grid(reduce_threads)).map_err(cuda_err("launch bucket_reduce"))?;
        }
        s.clone_dtoh(&out).map_err(cuda_err("copy to host"))
    }
}

fn grid(threads: u32) -> LaunchConfig {
    LaunchConfig { grid_dim: (threads.div_ceil(BLOCK).max(1), 1, 1), block_dim: (BLOCK, 1, 1), shared_mem_bytes: 0 }
}

impl MsmBackend for CudaMsm {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn msm(&self, scalars: &[Fr], bases: &[G1Affine]) -> Result<G1> {
        check_lengths(scalars, bases)?;
        let (scalars, bases) = drop_infinity(scalars, bases);
        if scalars.is_empty() {
            return Ok(G1::identity());
        }
        let plan = plan(&scalars, &bases);
        Ok(finish(&plan, &self.run(&plan)?))
    }
}
