pub mod msm;
pub mod prove;
